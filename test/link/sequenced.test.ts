// Sequenced records (PROTOCOL.md §2.5a): the header, the replay queue, the acknowledgement policy (pure), and
// SecureLink running them end to end between two real links over a wire the test controls (it can hold, repeat
// or drop a message): data arrives intact, acknowledgements empty the queue, a full queue stops the writers until
// acknowledgements come, a repeated record is dropped, a missing one or a forged acknowledgement ends the link.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChannel, type RecordOptions } from '../../src/crypto/record';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import type { CryptoBackend } from '../../src/crypto/types';
import { SecureLink, type MessageSocket } from '../../src/link/secure-link';
import { AckPolicy, readSeq, ReplayQueue, SEQ_HEADER_SIZE, writeSeq } from '../../src/link/sequenced';
import { CloseCode } from '../../src/protocol/constants';
import type { ZksError } from '../../src/errors/zks-error';
import { inPlaceAeadAvailable } from '../../src/native/datapath';
import vector from '../vectors/handshake.json';

const unhex = (x: string) => new Uint8Array(Buffer.from(x, 'hex'));

describe('sequence header', () => {
  it('round-trips every number up to 2^53 - 1, big endian', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (seq) => {
      const buf = new Uint8Array(SEQ_HEADER_SIZE + 2);
      writeSeq(buf, 1, seq);
      expect(readSeq(buf, 1)).toBe(seq);
      expect(Buffer.from(buf.subarray(1, 9)).readBigUInt64BE()).toBe(BigInt(seq));
    }));
  });

  it('a number above 2^53 - 1 reads as -1', () => {
    const buf = new Uint8Array(8);
    Buffer.from(buf.buffer).writeBigUInt64BE(2n ** 53n);
    expect(readSeq(buf, 0)).toBe(-1);
    buf.fill(0xff);
    expect(readSeq(buf, 0)).toBe(-1);
  });
});

describe('ReplayQueue', () => {
  it('keeps records until acknowledged, releases each once, refuses an acknowledgement of the unsent', () => {
    const q = new ReplayQueue(250);
    const released: number[] = [];
    for (let seq = 0; seq < 5; seq++) q.add(seq, new Uint8Array(60), () => released.push(seq));
    expect(q.bytes).toBe(300);
    expect(q.full).toBe(true);
    expect(q.ack(6, 5)).toBe(false); // seq 5 was never sent
    expect(q.ack(2, 5)).toBe(true);
    expect(released).toEqual([0, 1]);
    expect(q.full).toBe(false);
    expect(q.ack(1, 5)).toBe(true); // older: ignored
    expect(q.unacknowledged().length).toBe(3);
    q.clear();
    expect(released).toEqual([0, 1, 2, 3, 4]);
    expect(q.bytes).toBe(0);
  });

  it('bytes always equal what is held, whatever the order of adds and acks', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 500 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
      const q = new ReplayQueue(1_000);
      let sent = 0;
      const held = new Map<number, number>();
      for (const op of ops) {
        if (op > 0) {
          q.add(sent, new Uint8Array(op));
          held.set(sent++, op);
        } else {
          const next = Math.floor(sent / 2) + (sent % 3);
          q.ack(Math.min(next, sent), sent);
          for (const s of [...held.keys()]) if (s < q.acked) held.delete(s);
        }
        expect(q.bytes).toBe([...held.values()].reduce((a, b) => a + b, 0));
        expect(q.length).toBe(held.size);
      }
    }));
  });
});

describe('AckPolicy', () => {
  it('acknowledges at once after a quarter of the budget, else owes one; a pure acknowledgement owes nothing', () => {
    const p = new AckPolicy(1_000);
    expect(p.record(0, 400, false)).toBe(false);
    expect(p.owed).toBe(true);
    expect(p.record(1, 700, false)).toBe(true);
    expect(p.acking()).toBe(2);
    expect(p.owed).toBe(false);
    expect(p.record(2, 2_000, true)).toBe(false); // ack-only: never acknowledged by itself
    expect(p.owed).toBe(false);
    expect(p.record(3, 10, false)).toBe(true); // a real record: owed, and the bytes since the last ack are past the mark
    expect(p.acking()).toBe(4);
  });
});

// ---- two real links ----

const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const SID = new Uint8Array(32);

/** One direction of the wire: messages pass a turn later unless the test holds, repeats or drops them. */
class Wire {
  held: Uint8Array[] | null = null;
  messages = 0;
  /** Applied to the next message only: 'repeat' delivers it twice, 'drop' loses it. */
  next: 'repeat' | 'drop' | null = null;
  constructor(private readonly deliver: (m: Uint8Array) => void) {}
  push(m: Uint8Array): void {
    this.messages++;
    const copy = m.slice();
    const fate = this.next;
    this.next = null;
    if (fate === 'drop') return;
    if (this.held) return void this.held.push(copy);
    setImmediate(() => {
      this.deliver(copy);
      if (fate === 'repeat') this.deliver(copy.slice());
    });
  }
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const m of held) this.deliver(m);
  }
}

interface Pair {
  client: SecureLink; server: SecureLink; up: Wire; down: Wire;
  closes: Array<{ code: number; reason: string }>; clientErr: Promise<ZksError | null>;
}

async function pair(
  cb: CryptoBackend, sb: CryptoBackend,
  opts: { record?: RecordOptions; budget?: number; inPlace?: boolean; sequenced?: [boolean, boolean] } = {},
): Promise<Pair> {
  const c = await createChannel(cb, { suite: 'aes-256-gcm', sendKey: K1, recvKey: K2, sessionId: SID }, opts.record);
  const s = await createChannel(sb, { suite: 'aes-256-gcm', sendKey: K2, recvKey: K1, sessionId: SID }, opts.record);
  const [cSeq, sSeq] = opts.sequenced ?? [true, true];
  const closes: Pair['closes'] = [];
  let client: SecureLink | null = null;
  let server: SecureLink | null = null;
  const up = new Wire((m) => server?.receive(m));
  const down = new Wire((m) => client?.receive(m));
  const socket = (wire: Wire, onClose?: (code: number, reason: string) => void): MessageSocket => ({
    send: (d) => wire.push(d),
    ...(opts.inPlace
      ? { ownsReceived: true, sendOwned: (d: Uint8Array, written: () => void) => setImmediate(() => (wire.push(d), written())) }
      : {}),
    close: (code, reason) => onClose?.(code, reason),
  });
  server = new SecureLink(socket(down), s.sealer, s.opener, {
    role: 'server', sequencedRecords: sSeq, replayBudget: opts.budget, scheduleFlush: (fn) => void setImmediate(fn),
    onStream: (stream) => {
      stream.accept();
      stream.onData = (chunk) => (stream.write(chunk), stream.consume(chunk.length)); // echo
      stream.onEnd = () => stream.end();
    },
  });
  let settle: (e: ZksError | null) => void = () => {};
  const clientErr = new Promise<ZksError | null>((r) => (settle = r));
  client = new SecureLink(socket(up, (code, reason) => closes.push({ code, reason })), c.sealer, c.opener, {
    role: 'client', sequencedRecords: cSeq, replayBudget: opts.budget, scheduleFlush: (fn) => void setImmediate(fn), onClose: (e) => settle(e),
  });
  return { client, server, up, down, closes, clientErr };
}

/** Echoes `total` bytes through one stream; `beforeWrite` runs once it is open. Resolves once all came back intact. */
function echo(link: SecureLink, total: number, beforeWrite?: () => void): Promise<void> {
  const sent = new Uint8Array(total).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
  const back = new Uint8Array(total);
  let got = 0;
  return new Promise<void>((resolve, reject) => {
    const stream = link.mux.openStream({ host: 'example.com', port: 443 });
    stream.onData = (chunk) => {
      back.set(chunk, got);
      got += chunk.length;
      stream.consume(chunk.length);
    };
    stream.onClose = (err) => (err ? reject(err) : resolve());
    stream.onResult = () => {
      beforeWrite?.();
      let off = 0;
      const pump = () => {
        while (off < total) {
          const n = Math.min(16_000, total - off);
          const ok = stream.write(sent.subarray(off, off + n));
          off += n;
          if (!ok || !stream.writable) return; // as socket-bridge.ts: the session's hold is advisory
        }
        stream.end();
      };
      stream.onDrain = pump;
      pump();
    };
  }).then(() => {
    expect(got).toBe(total);
    expect(Buffer.from(back).equals(Buffer.from(sent))).toBe(true);
  });
}

/** Resolves once `cond()` holds, checking after every acknowledgement-sized pause (bounded: fails after 10 s). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`never reached: ${what}`);
}

describe('sequenced record vectors (test/vectors/handshake.json "sequenced", from @noble primitives)', () => {
  it.each([['node', nodeCrypto], ['webcrypto', webCrypto]] as const)('%s: a client link sends record 0 as the vector says and takes the exit\'s records 0 and 1', async (_n, b) => {
    const q = vector.sequenced;
    const ch = await createChannel(b, { suite: 'aes-256-gcm', sendKey: unhex(q.seqKC2S), recvKey: unhex(q.seqKS2C), sessionId: SID });
    // The vector's client record 0 opens under the record layer (its number stripped) to the vector's PING.
    expect(readSeq(unhex(q.recordC2S0), 0)).toBe(0);
    const check = await createChannel(b, { suite: 'aes-256-gcm', sendKey: unhex(q.seqKS2C), recvKey: unhex(q.seqKC2S), sessionId: SID });
    expect(Buffer.from(await check.opener.open(unhex(q.recordC2S0).subarray(SEQ_HEADER_SIZE))).toString('hex')).toBe(q.plainC2S0);
    const sent: Uint8Array[] = [];
    let err: ZksError | null = null;
    const link = new SecureLink({ send: (d) => sent.push(d.slice()), close: () => {} }, ch.sealer, ch.opener, {
      role: 'client', sequencedRecords: true, scheduleFlush: (fn) => fn(), onClose: (e) => (err = e),
    });
    link.mux.ping(); // record 0: PING with a random opaque, so compare its shape, not its bytes
    await until(() => sent.length === 1 && (b === nodeCrypto || link.replay!.length === 1), 'record 0 sent');
    expect(sent[0].length).toBe(unhex(q.recordC2S0).length);
    expect(readSeq(sent[0], 0)).toBe(0);
    link.receive(unhex(q.recordS2C0)); // the PONG (not ours: ignored)
    link.receive(unhex(q.recordS2C1)); // PATH_ACK(1): our record 0 arrived
    await until(() => link.replay!.length === 0, 'record 0 acknowledged');
    expect(link.replay!.acked).toBe(1);
    expect(err).toBeNull();
  });
});

describe('SecureLink with sequenced records', () => {
  it.each([
    ['node ↔ node', nodeCrypto, nodeCrypto, false],
    ['node ↔ webcrypto (promise path), rekeying every 5 records', nodeCrypto, webCrypto, false],
    ...(inPlaceAeadAvailable() ? [['node ↔ node, sealed in place', nodeCrypto, nodeCrypto, true] as const] : []),
  ] as const)('%s: 6 MB echoed intact; acknowledgements empty both replay queues', async (_n, cb, sb, inPlace) => {
    const { client, server } = await pair(cb, sb, { inPlace, record: cb === sb ? undefined : { rekeyRecords: 5 } });
    await echo(client, 6_000_000);
    // Only records that carry nothing but a PATH_ACK may stay unacknowledged (nothing acknowledges them by itself):
    // 8 (number) + 9 (frame header) + 8 (next) + 16 (tag) bytes each.
    const onlyAcks = (l: SecureLink) => l.replay!.unacknowledged().every((m) => m.length === 41);
    await until(() => onlyAcks(client) && onlyAcks(server), 'every record but pure acknowledgements acknowledged');
    expect(client.duplicatesDropped + server.duplicatesDropped).toBe(0);
  });

  it('a full replay queue stops the writers until acknowledgements come; nothing is lost', async () => {
    const budget = 256 * 1024;
    const { client, up } = await pair(nodeCrypto, nodeCrypto, { budget });
    await echo(client, 100_000); // the stream machinery is warm; the queue is acknowledged
    // Once the stream is open the server stops receiving: no acknowledgement can come back.
    const transfer = echo(client, 3_000_000, () => (up.held = []));
    await until(() => client.mux.sendPaused, 'the writers held by the full queue');
    // At most the budget plus the record that filled it (records are flushed at 128 KiB).
    expect(client.replay!.bytes).toBeGreaterThanOrEqual(budget);
    expect(client.replay!.bytes).toBeLessThan(budget + 160 * 1024);
    expect(up.held!.length).toBeGreaterThan(0);
    up.release();
    await transfer;
    expect(client.mux.sendPaused).toBe(false);
  });

  it('a record that arrives twice is dropped and counted; the stream is intact', async () => {
    const { client, server, up } = await pair(nodeCrypto, nodeCrypto);
    up.next = 'repeat';
    await echo(client, 500_000);
    expect(server.duplicatesDropped).toBe(1);
  });

  it('a missing record ends the link with ZKS_ERR_SEQUENCE (close 4001)', async () => {
    const { client, down, closes, clientErr } = await pair(nodeCrypto, nodeCrypto);
    await echo(client, 10_000);
    down.next = 'drop';
    const stream = client.mux.openStream({ host: 'example.com', port: 443 }); // its CONNECT_RESULT is lost
    stream.onClose = () => {};
    client.mux.ping(); // the PONG comes in the record after it
    const err = await clientErr;
    expect(err?.code).toBe('ZKS_ERR_SEQUENCE');
    expect(err?.message).toMatch(/a record is missing/);
    expect(closes).toEqual([{ code: CloseCode.PROTOCOL_ERROR, reason: 'ZKS_ERR_SEQUENCE' }]);
  });

  it('an acknowledgement of records never sent ends the link with ZKS_ERR_SEQUENCE', async () => {
    const { client, server, clientErr } = await pair(nodeCrypto, nodeCrypto);
    await echo(client, 10_000);
    server.mux.sendPathAck(client.replay!.acked + 1_000_000);
    const err = await clientErr;
    expect(err?.code).toBe('ZKS_ERR_SEQUENCE');
    expect(err?.message).toMatch(/acknowledged records up to \d+, but only \d+ were sent/);
  });

  it('a PATH_ACK on a session without sequenced records is a protocol error (ZKS_ERR_UNSUPPORTED_FRAME)', async () => {
    const { client, server, clientErr } = await pair(nodeCrypto, nodeCrypto, { sequenced: [false, false] });
    await echo(client, 10_000);
    expect(client.replay).toBeNull();
    server.mux.sendPathAck(1);
    expect((await clientErr)?.code).toBe('ZKS_ERR_UNSUPPORTED_FRAME');
  });
});
