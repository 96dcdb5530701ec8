// SecureLink: the promise-free path (node:crypto) and the promise path (WebCrypto, rekey epochs) keep record
// order when they alternate; headroom for room mode; a sealer that runs out of counters or cannot seal closes
// the link with a code that says so (not ZKS_ERR_DECRYPT).
import { describe, expect, it } from 'vitest';
import { createChannel, type RecordOptions } from '../../src/crypto/record';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import type { CryptoBackend } from '../../src/crypto/types';
import { SecureLink, type MessageSocket } from '../../src/link/secure-link';
import { echoStream } from './echo-stream';
import { CloseCode } from '../../src/protocol/constants';
import type { ZksError } from '../../src/errors/zks-error';
import { decodeSidMessage, encodeSidMessage, sidHeadroomPayload, SID_HEADER_SIZE } from '../../src/protocol/room-wire';
import { inPlaceAeadAvailable } from '../../src/native/datapath';

const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const SID = new Uint8Array(32);

interface Pair { client: SecureLink; server: SecureLink; closes: Array<{ code: number; reason: string }>; clientErr: Promise<ZksError | null> }

interface InPlaceStats { owned: number; buffers: Set<ArrayBufferLike>; plainSends: number }

async function pair(
  cb: CryptoBackend, sb: CryptoBackend,
  opts: { record?: RecordOptions; serverHeadroom?: number; inPlace?: InPlaceStats } = {},
): Promise<Pair> {
  const c = await createChannel(cb, { suite: 'aes-256-gcm', sendKey: K1, recvKey: K2, sessionId: SID }, opts.record);
  const s = await createChannel(sb, { suite: 'aes-256-gcm', sendKey: K2, recvKey: K1, sessionId: SID }, opts.record);
  const closes: Pair['closes'] = [];
  let client: SecureLink | null = null;
  const headroom = opts.serverHeadroom ?? 0;
  const serverSocket: MessageSocket = {
    headroom,
    // Room mode as the exit peer does it: the sid goes into the headroom, the room strips it again.
    send: (d) => {
      const framed = headroom ? encodeSidMessage(9, sidHeadroomPayload(d)) : d;
      if (headroom) expect(framed.buffer).toBe(d.buffer); // framed in place, not copied
      const payload = headroom ? (decodeSidMessage(framed) as { payload: Uint8Array }).payload : framed;
      setImmediate(() => client?.receive(payload.slice()));
    },
    close: () => {},
  };
  const ip = opts.inPlace;
  if (ip) {
    // As a socket does: the bytes are copied (to the kernel) a turn later, then `written`. Were the buffer reused
    // before `written`, the copy would hold another record's bytes and the peer would refuse it.
    serverSocket.sendOwned = (d, written) => {
      ip.owned++;
      ip.buffers.add(d.buffer);
      const framed = headroom ? encodeSidMessage(9, sidHeadroomPayload(d)) : d;
      if (headroom) expect(framed.buffer).toBe(d.buffer);
      const payload = headroom ? (decodeSidMessage(framed) as { payload: Uint8Array }).payload : framed;
      setImmediate(() => {
        const wire = payload.slice();
        written();
        client?.receive(wire);
      });
    };
    (serverSocket as { ownsReceived?: boolean }).ownsReceived = true;
  }
  const server = new SecureLink(serverSocket, s.sealer, s.opener, {
    role: 'server',
    scheduleFlush: (fn) => void setImmediate(fn),
    onStream: echoStream,
  });
  let settle: (e: ZksError | null) => void = () => {};
  const clientErr = new Promise<ZksError | null>((r) => (settle = r));
  const clientSocket: MessageSocket = {
    send: (d) => {
      if (ip) ip.plainSends++;
      setImmediate(() => server.receive(d.slice()));
    },
    close: (code, reason) => closes.push({ code, reason }),
    ...(ip
      ? {
          ownsReceived: true,
          sendOwned: (d: Uint8Array, written: () => void) => {
            ip.owned++;
            ip.buffers.add(d.buffer);
            setImmediate(() => {
              const wire = d.slice();
              written();
              server.receive(wire);
            });
          },
        }
      : {}),
  };
  client = new SecureLink(
    clientSocket,
    c.sealer, c.opener, { role: 'client', scheduleFlush: (fn) => void setImmediate(fn), onClose: (e) => settle(e) },
  );
  return { client, server, closes, clientErr };
}

/** Echoes `total` bytes of a counting pattern through one stream; resolves with what came back. */
function echo(link: SecureLink, total: number): Promise<Uint8Array> {
  const sent = new Uint8Array(total).map((_, i) => (i * 7) & 0xff);
  const back = new Uint8Array(total);
  let got = 0;
  return new Promise((resolve, reject) => {
    const stream = link.mux.openStream({ host: 'example.com', port: 443 });
    stream.onData = (chunk) => {
      back.set(chunk, got);
      got += chunk.length;
      stream.consume(chunk.length);
    };
    stream.onClose = (err) => (err ? reject(err) : resolve(back.subarray(0, got)));
    stream.onResult = () => {
      let off = 0;
      const pump = () => {
        while (off < total) {
          const n = Math.min(5000, total - off);
          const ok = stream.write(sent.subarray(off, off + n));
          off += n;
          if (!ok) return;
        }
        stream.end();
      };
      stream.onDrain = pump;
      pump();
    };
  }).then((b) => (expect(Buffer.from(b as Uint8Array).equals(Buffer.from(sent))).toBe(true), b as Uint8Array));
}

describe('SecureLink record order across the synchronous and the promise paths', () => {
  it.each([
    ['node ↔ node', nodeCrypto, nodeCrypto],
    ['node ↔ webcrypto', nodeCrypto, webCrypto],
    ['webcrypto ↔ node', webCrypto, nodeCrypto],
  ] as const)('%s, rekeying every 5 records, 2 MB echoed intact', async (_n, cb, sb) => {
    const { client } = await pair(cb, sb, { record: { rekeyRecords: 5 } });
    await echo(client, 2_000_000);
  });

  it('room mode: the exit end seals with headroom and the session id is framed in place', async () => {
    const { client } = await pair(nodeCrypto, nodeCrypto, { serverHeadroom: SID_HEADER_SIZE, record: { rekeyRecords: 7 } });
    await echo(client, 1_000_000);
  });
});

describe.skipIf(!inPlaceAeadAvailable())('SecureLink sealing in place (datapath addon)', () => {
  it.each([
    ['node ↔ node', nodeCrypto, nodeCrypto, 0],
    ['node ↔ node, room headroom', nodeCrypto, nodeCrypto, SID_HEADER_SIZE],
    ['node ↔ webcrypto', nodeCrypto, webCrypto, 0],
  ] as const)('%s: 8 MB echoed intact through reused buffers, rekeying every 40 records', async (_n, cb, sb, headroom) => {
    const inPlace: InPlaceStats = { owned: 0, buffers: new Set(), plainSends: 0 };
    const { client } = await pair(cb, sb, { record: { rekeyRecords: 40 }, serverHeadroom: headroom, inPlace });
    await echo(client, 8_000_000);
    expect(inPlace.owned).toBeGreaterThan(30);
    expect(inPlace.buffers.size).toBeLessThan(inPlace.owned * 0.9); // buffers come back after `written` and are reused
    // A rekey in flight is the one moment a record takes the copying path (the next key is still being derived).
    expect(inPlace.plainSends).toBeLessThan(inPlace.owned / 4);
  });
});

describe('SecureLink sealing failures', () => {
  it('counter exhaustion closes the link with ZKS_ERR_NONCE_EXHAUSTED (close 4003), not ZKS_ERR_DECRYPT', async () => {
    const { client, closes, clientErr } = await pair(nodeCrypto, nodeCrypto, { record: { firstCounter: Number.MAX_SAFE_INTEGER - 1 } });
    client.mux.ping(); // a record of its own at the last counter: still sealed
    client.mux.openStream({ host: 'example.com', port: 443 }); // the next record has no counter left
    expect((await clientErr)?.code).toBe('ZKS_ERR_NONCE_EXHAUSTED');
    expect(closes).toEqual([{ code: CloseCode.DECRYPT_FAILED, reason: 'ZKS_ERR_NONCE_EXHAUSTED' }]);
  });

  it('the same on the promise path (WebCrypto)', async () => {
    const { client, closes, clientErr } = await pair(webCrypto, webCrypto, { record: { firstCounter: Number.MAX_SAFE_INTEGER } });
    client.mux.ping();
    expect((await clientErr)?.code).toBe('ZKS_ERR_NONCE_EXHAUSTED');
    expect(closes).toEqual([{ code: CloseCode.DECRYPT_FAILED, reason: 'ZKS_ERR_NONCE_EXHAUSTED' }]);
  });
});
