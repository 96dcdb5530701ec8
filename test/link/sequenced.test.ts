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
import { echoStream, echoThrough } from './echo-stream';
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
    for (let seq = 0; seq < 5; seq++) q.add(seq, new Uint8Array(60), { retain: () => {}, release: () => void released.push(seq) });
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
// Waiting on events, never on time: every message a wire carries, every record a link keeps or has acknowledged
// and every link that ends calls notify(), and each until() rechecks its condition then.
const waiters = new Set<() => void>();
function notify(): void {
  for (const check of [...waiters]) check();
}

/** Resolves once `cond()` holds (`what` says what is awaited, for whoever reads a timed-out test). */
function until(cond: () => boolean, what: string): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!cond()) return;
      waiters.delete(check);
      resolve();
    };
    Object.defineProperty(check, 'name', { value: what });
    waiters.add(check);
  });
}

/** Makes a sequenced link's replay queue report each record kept and each acknowledgement (the states awaited). */
function watch(link: SecureLink): SecureLink {
  const replay = link.replay;
  if (!replay) return link;
  const add = replay.add.bind(replay);
  const ack = replay.ack.bind(replay);
  replay.add = (...a) => (add(...a), notify());
  replay.ack = (...a) => {
    const ok = ack(...a);
    notify();
    return ok;
  };
  return link;
}

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
    queueMicrotask(notify); // after the sender's own bookkeeping for this message
    if (fate === 'drop') return;
    if (this.held) return void this.held.push(copy);
    setImmediate(() => {
      this.deliver(copy);
      if (fate === 'repeat') this.deliver(copy.slice());
      notify();
    });
  }
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const m of held) this.deliver(m);
    notify();
  }
}

interface Pair {
  client: SecureLink; server: SecureLink; up: Wire; down: Wire;
  /** The second path's wires (opts.secondPath): client → server and back, path id 1 on both links. */
  up1: Wire; down1: Wire;
  closes: Array<{ code: number; reason: string }>; clientErr: Promise<ZksError | null>;
}

async function pair(
  cb: CryptoBackend, sb: CryptoBackend,
  opts: {
    record?: RecordOptions; budget?: number; serverBudget?: number; inPlace?: boolean; sequenced?: [boolean, boolean]; secondPath?: boolean;
    onServerClose?: (err: ZksError | null) => void;
  } = {},
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
  const up1 = new Wire((m) => server?.receive(m));
  const down1 = new Wire((m) => client?.receive(m));
  server = new SecureLink(socket(down), s.sealer, s.opener, {
    role: 'server', sequencedRecords: sSeq, replayBudget: opts.serverBudget ?? opts.budget, scheduleFlush: (fn) => void setImmediate(fn),
    onClose: (e) => (opts.onServerClose?.(e), notify()),
    onStream: echoStream,
  });
  let settle: (e: ZksError | null) => void = () => {};
  const clientErr = new Promise<ZksError | null>((r) => (settle = r));
  client = new SecureLink(socket(up, (code, reason) => closes.push({ code, reason })), c.sealer, c.opener, {
    role: 'client', sequencedRecords: cSeq, replayBudget: opts.budget, scheduleFlush: (fn) => void setImmediate(fn), onClose: (e) => settle(e),
  });
  watch(client);
  watch(server);
  if (opts.secondPath) {
    expect(client.addPath(socket(up1))).toBe(1);
    expect(server.addPath(socket(down1))).toBe(1);
  }
  return { client, server, up, down, up1, down1, closes, clientErr };
}

/** Echoes `total` bytes through one stream; `beforeWrite` runs once it is open. Resolves once all came back intact. */
function echo(link: SecureLink, total: number, beforeWrite?: () => void, atOffset?: (offset: number) => Promise<void>): Promise<void> {
  return echoThrough(link, total, { beforeWrite, atOffset });
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
    const link = watch(new SecureLink({ send: (d) => sent.push(d.slice()), close: () => {} }, ch.sealer, ch.opener, {
      role: 'client', sequencedRecords: true, scheduleFlush: (fn) => fn(), onClose: (e) => (err = e),
    }));
    link.mux.ping(); // record 0: PING with a random opaque, so compare its shape, not its bytes
    await until(() => link.replay!.length === 1, 'record 0 sent and kept');
    expect(sent).toHaveLength(1);
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
    const onlyAcks = (l: SecureLink) => l.replay!.unacknowledged().every((e) => e.message.length === 41);
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

/** Echo with the writer stopping at each of `stops` (byte offsets) until resume(): the test sets the scene there. */
function steppedEcho(link: SecureLink, total: number, stops: number[]) {
  let resume: () => void = () => {};
  let arrived: (offset: number) => void = () => {};
  const atStop: Promise<number>[] = [];
  const waits: Array<() => Promise<void>> = [];
  for (let i = 0; i < stops.length; i++) {
    atStop.push(new Promise<number>((r) => {
      const prev = arrived;
      arrived = (o) => (o === stops[i] ? r(o) : prev(o));
    }));
    waits.push(() => new Promise<void>((r) => (resume = r)));
  }
  let stop = 0;
  const done = echo(link, total, undefined, async (offset) => {
    if (stop < stops.length && offset >= stops[stop]) {
      const wait = waits[stop]();
      arrived(stops[stop++]);
      await wait;
    }
  });
  return { done, reached: (i: number) => atStop[i], resume: () => resume() };
}

describe('SecureLink over two paths (docs/design/paths.md)', () => {
  it('switching paths while the old one still carries records: the newer ones wait and are put back in order; intact', async () => {
    const { client, server, up, down, up1 } = await pair(nodeCrypto, nodeCrypto, { secondPath: true, inPlace: inPlaceAeadAvailable() });
    const t = steppedEcho(client, 4_000_000, [1_000_000, 2_000_000]);
    await t.reached(0);
    await until(() => client.bytesIn > 1_000_000, 'the first megabyte echoed back, with the credit it returns');
    up.held = []; // from here path 0 is slow: what it carries arrives only later
    down.held = [];
    t.resume();
    await t.reached(1);
    await until(() => up.held!.length > 3, 'the second megabyte stuck on path 0');
    client.usePath(1); // new records take path 1 and overtake it
    server.usePath(1);
    t.resume();
    await until(() => server.recordsReordered > 3, 'later records waiting for the earlier ones');
    up.release();
    down.release();
    await t.done;
    expect([client.activePath, server.activePath]).toEqual([1, 1]);
    expect(up1.messages).toBeGreaterThan(3);
    expect(client.recordsResent + server.recordsResent + client.duplicatesDropped + server.duplicatesDropped).toBe(0);
  });

  it('the path in use is lost with records in flight: path 0 sends them again, duplicates are dropped; intact', async () => {
    const { client, server, up1, down1 } = await pair(nodeCrypto, nodeCrypto, { secondPath: true, inPlace: inPlaceAeadAvailable() });
    client.usePath(1);
    server.usePath(1);
    const t = steppedEcho(client, 4_000_000, [2_000_000]);
    await t.reached(0);
    up1.held = []; // what is sent from now on is in flight when the path dies
    down1.held = [];
    t.resume();
    await until(() => up1.held!.length > 3, 'records stuck on path 1');
    // Two of them did arrive before the cut: the server will see them again, as duplicates.
    for (const m of up1.held!.splice(0, 2)) server.receive(m);
    up1.held = [];
    down1.held = [];
    client.pathLost(1);
    server.pathLost(1);
    await t.done;
    expect([client.activePath, server.activePath]).toEqual([0, 0]);
    expect(client.recordsResent).toBeGreaterThan(3);
    expect(server.duplicatesDropped).toBeGreaterThanOrEqual(2);
  });

  it.each([['copied', false], ['sealed in place', true]] as const)('a path that dies inside send() (%s): the record being sent goes again over path 0; intact', async (_n, inPlace) => {
    const { client, server, up1 } = await pair(nodeCrypto, nodeCrypto, { secondPath: true, inPlace: inPlace && inPlaceAeadAvailable() });
    client.usePath(1);
    server.usePath(1);
    // The 20th message the client hands to path 1 finds it dead: the socket reports the loss at once, re-entrantly
    // (as a DataChannel that throws on send does), and the message is gone.
    const push = up1.push.bind(up1);
    let sends = 0;
    up1.push = (m) => {
      if (++sends !== 20) return push(m);
      client.pathLost(1);
      server.pathLost(1);
    };
    await echo(client, 4_000_000);
    expect(sends).toBeGreaterThanOrEqual(20);
    expect([client.activePath, server.activePath]).toEqual([0, 0]);
    expect(client.recordsResent).toBeGreaterThan(0);
  });

  it('a path lost after a switch away from it, with records still on it: they are sent again too; intact', async () => {
    const { client, server, up1, down1 } = await pair(nodeCrypto, nodeCrypto, { secondPath: true, inPlace: inPlaceAeadAvailable() });
    client.usePath(1);
    server.usePath(1);
    const t = steppedEcho(client, 4_000_000, [1_000_000, 2_000_000]);
    await t.reached(0);
    await until(() => client.bytesIn > 1_000_000, 'the first megabyte echoed back, with the credit it returns');
    up1.held = []; // path 1 stalls: the next megabyte sits on it
    down1.held = [];
    t.resume();
    await t.reached(1);
    await until(() => up1.held!.length > 3, 'records stuck on path 1');
    client.usePath(0); // back to path 0 (make-before-break) while path 1 still holds records...
    server.usePath(0);
    t.resume();
    await until(() => server.recordsReordered > 0, 'newer records waiting for the stuck ones');
    up1.held = []; // ...and then path 1 dies with them
    down1.held = [];
    client.pathLost(1);
    server.pathLost(1);
    await t.done;
    expect(client.recordsResent).toBeGreaterThan(3);
  });

  it('records that keep waiting for a lost one past the budget end the link (ZKS_ERR_SEQUENCE)', async () => {
    let serverErr: ZksError | null = null;
    const { client, up } = await pair(nodeCrypto, nodeCrypto, { secondPath: true, serverBudget: 256 * 1024, onServerClose: (e) => (serverErr = e) });
    const t = steppedEcho(client, 2_000_000, [500_000]);
    await t.reached(0);
    up.next = 'drop'; // lost on path 0, while the path stays up: the server waits for it
    t.resume();
    await until(() => serverErr !== null, 'the server gives up');
    expect(serverErr!.code).toBe('ZKS_ERR_SEQUENCE');
    expect(serverErr!.message).toMatch(/bytes of later records wait for record \d+: a path lost it/);
    void t.done.catch(() => {}); // the client's stream ends when its link notices; not this test's concern
  });

  it('a hold set by a backed-up path follows the path in use: carried over, lifted, and gone with the path', async () => {
    const { client } = await pair(nodeCrypto, nodeCrypto);
    const held = { send: () => {}, close: () => {}, isHeld: true };
    const free = { send: () => {}, close: () => {}, isHeld: false };
    const [a, b] = [client.addPath(held), client.addPath(free)];
    client.usePath(a);
    expect(client.mux.sendPaused).toBe(true); // writers wait while the path in use is backed up
    client.usePath(b);
    expect(client.mux.sendPaused).toBe(false); // a switch away lifts it: nobody would lift it later
    client.usePath(a);
    client.pathLost(a); // back on path 0, which has no queue of its own
    expect(client.activePath).toBe(0);
    expect(client.mux.sendPaused).toBe(false);
  });

  it('a second path needs sequenced records', async () => {
    const { client } = await pair(nodeCrypto, nodeCrypto, { sequenced: [false, false] });
    expect(() => client.addPath({ send: () => {}, close: () => {} })).toThrow(/sequenced records/);
  });
});
