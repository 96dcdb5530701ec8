// TunnelConnection against a relay stand-in speaking the real handshake (relay-stand-in.ts). Regressions:
// - a record right behind the REPLY (one TCP write) ran finishClientHandshake a second time ("handshake state
//   already used") while createChannel was awaited, failing a good connection; a second REPLY did the same;
// - a rejected createChannel was dropped (an unhandled rejection, then a handshake timeout);
// - the relay's close code was lost to a race: the client cut the socket on the relay's GOAWAY (1006) before the
//   relay's own close frame (4001) could arrive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TunnelConnection } from '../../src/client/connection';
import { ZksError } from '../../src/errors/zks-error';
import { CloseCode, FrameType, ResetCode } from '../../src/protocol/constants';
import type { DecodedFrame } from '../../src/protocol/frames';
import { sealFrames, startRelayStandIn, wsBinaryFrame, wsCloseFrame, type RelayStandIn } from './relay-stand-in';

const key = new Uint8Array(32).fill(0x5a);
const opaque = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const isPongTo = (o: Uint8Array) => (f: DecodedFrame) => f.type === FrameType.PONG && Buffer.from(f.opaque).equals(Buffer.from(o));

let relay: RelayStandIn;
beforeAll(async () => {
  relay = await startRelayStandIn(key);
});
afterAll(async () => {
  await relay?.close();
});

/** Opens a connection whose close (error or null) is reported through the returned promise. */
function open(extra: Partial<Parameters<typeof TunnelConnection.open>[0]> = {}) {
  let reportClose!: (err: ZksError | null) => void;
  const closed = new Promise<ZksError | null>((r) => (reportClose = r));
  const conn = TunnelConnection.open({ url: relay.url, key, ...extra, onClose: (_c, err) => reportClose(err) });
  return { conn, closed };
}

describe('TunnelConnection: messages that arrive while the REPLY is being processed', () => {
  it('a record in the same TCP write as the REPLY reaches the link: the handshake runs once', async () => {
    const { conn } = open();
    const side = await relay.next();
    const ping = await sealFrames(side, [{ type: FrameType.PING, stream: 0, opaque }]);
    side.raw.write(Buffer.concat([wsBinaryFrame(side.reply), wsBinaryFrame(ping)]));
    const c = await conn;
    await side.waitForFrame(isPongTo(opaque)); // the client's mux answered the record that followed the REPLY
    expect(c.closed).toBe(false);
    c.close();
    expect(await side.closed).toBe(1000);
  });

  it('several records right behind the REPLY are delivered in order', async () => {
    const { conn } = open();
    const side = await relay.next();
    const opaques = [1, 2, 3].map((n) => new Uint8Array(8).fill(n));
    const records = [];
    for (const o of opaques) records.push(await sealFrames(side, [{ type: FrameType.PING, stream: 0, opaque: o }]));
    side.raw.write(Buffer.concat([wsBinaryFrame(side.reply), ...records.map(wsBinaryFrame)]));
    const c = await conn;
    // PONGs are coalesced (PROTOCOL.md §7): the newest PING is answered. Each record opens only under its own
    // counter nonce, so a lost or reordered one would have ended the link with ZKS_ERR_DECRYPT instead.
    await side.waitForFrame(isPongTo(opaques[2]));
    expect(c.closed).toBe(false);
    c.close();
    await side.closed;
  });

  it('the REPLY sent twice: the copy is a record that fails authentication, the link ends with ZKS_ERR_DECRYPT', async () => {
    const { conn, closed } = open();
    const side = await relay.next();
    side.raw.write(Buffer.concat([wsBinaryFrame(side.reply), wsBinaryFrame(side.reply)]));
    await conn; // the first REPLY completed the handshake; the second never reached finishClientHandshake
    expect(await closed).toMatchObject({ code: 'ZKS_ERR_DECRYPT' });
    expect(await side.closed).toBe(CloseCode.DECRYPT_FAILED);
  });
});

describe('TunnelConnection: failures are reported, never dropped', () => {
  it('a createChannel that rejects (an invalid record option) fails open() with its error and drops the socket', async () => {
    const { conn } = open({ record: { rekeyRecords: 0 }, handshakeTimeoutMs: 30_000 });
    const side = await relay.next();
    side.ws.send(side.reply);
    const err = await conn.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).message).toMatch(/rekeyRecords must be a positive integer/);
    expect(await side.closed).toBe(1006);
  });

  it('a record option both ends share works across key epochs (rekey every 2 records)', async () => {
    const rekeying = await startRelayStandIn(key, { rekeyRecords: 2 });
    try {
      const conn = TunnelConnection.open({ url: rekeying.url, key, record: { rekeyRecords: 2 } });
      const side = await rekeying.next();
      side.ws.send(side.reply);
      const c = await conn;
      for (let n = 10; n < 15; n++) {
        const o = new Uint8Array(8).fill(n);
        side.ws.send(await sealFrames(side, [{ type: FrameType.PING, stream: 0, opaque: o }]));
        await side.waitForFrame(isPongTo(o));
      }
      expect(c.closed).toBe(false);
      c.close();
      await side.closed;
    } finally {
      await rekeying.close();
    }
  });

  it("the relay's close code survives its GOAWAY being processed first (4001, not 1006)", async () => {
    const { conn, closed } = open();
    const side = await relay.next();
    side.ws.send(side.reply);
    const c = await conn;
    const code = new Promise<number>((r) => c.ws.on('close', (n) => r(n)));
    side.ws.send(await sealFrames(side, [{ type: FrameType.GOAWAY, stream: 0, code: ResetCode.PROTOCOL, message: 'bad frame' }]));
    // The client has handled the GOAWAY; only now does the relay's close frame leave (the busy-machine order).
    expect(await closed).toMatchObject({ code: 'ZKS_ERR_CONNECTION_LOST', message: 'bad frame' });
    side.raw.write(wsCloseFrame(CloseCode.PROTOCOL_ERROR, 'ZKS_ERR_MALFORMED_FRAME'));
    expect(await code).toBe(CloseCode.PROTOCOL_ERROR);
  });

  it('a relay that stops answering is declared dead by the keepalive, and says so', async () => {
    const { conn, closed } = open({ pingIntervalMs: 50 });
    const side = await relay.next();
    side.ws.send(side.reply);
    await conn;
    // The stand-in never answers a PING: from the client, the path has gone silent.
    expect(await closed).toMatchObject({ code: 'ZKS_ERR_CONNECTION_LOST', message: expect.stringMatching(/^nothing received from the relay for \d+ ms$/) });
  });
});
