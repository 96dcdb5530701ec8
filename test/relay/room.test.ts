// Blind relay rooms through the real Worker in workerd: access control in the Worker (token, room id, path),
// then the ZksRoom Durable Object pairing raw `ws` clients with a raw exit peer (src/protocol/room-wire.ts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { createClientHello, encodeBase64Url } from '../../src/crypto/handshake';
import { decodeBase64Url } from '../../src/crypto/bytes';
import { nodeCrypto } from '../../src/crypto/node';
import { RoomRole } from '../../src/crypto/room';
import { decodeSidMessage, encodeRoomControl, encodeSidMessage, RoomCloseCode, ROOM_SUBPROTOCOL } from '../../src/protocol/room-wire';
import { joinClient, joinExit, newInstance, newRoomId, proofFor, roomProtocols, roomUrl, upgrade, type Peer } from './peers';

const key = new Uint8Array(randomBytes(32));
let worker: DevWorker;
const peers: Peer[] = [];
const track = <T extends Peer>(p: T): T => (peers.push(p), p);

beforeAll(async () => {
  worker = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0 });
});
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});
afterAll(async () => {
  await worker?.dispose();
});

const exitOf = async (roomId: Uint8Array) => track(await joinExit(worker.url, key, roomId));
const clientOf = async (roomId: Uint8Array) => track(await joinClient(worker.url, key, roomId));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Open { t: 'open'; sid: number; entropy: string }

/**
 * A client joins, the exit reads its `open`, and the two swap a HELLO- and a REPLY-sized record, as every real
 * session starts. (Also needed by the tests: local workerd keeps the TCP connection of a WebSocket that never
 * sent a message open after the close handshake, so `ws` would report the close only after its 30 s timeout.)
 */
async function session(exit: Peer, roomId: Uint8Array): Promise<{ client: Peer; open: Open }> {
  const client = await clientOf(roomId);
  const open = await exit.nextJson<Open>();
  expect(open.t).toBe('open');
  const hello = new Uint8Array(randomBytes(91));
  client.send(hello);
  expect(await exit.nextBinary()).toEqual(Buffer.from(encodeSidMessage(open.sid, hello)));
  const reply = new Uint8Array(randomBytes(98));
  exit.send(encodeSidMessage(open.sid, reply));
  expect(await client.nextBinary()).toEqual(Buffer.from(reply));
  return { client, open };
}

async function refusal(url: string, protocols: string[]): Promise<{ status: number; body: string }> {
  const r = await upgrade(url, protocols);
  if ('peer' in r) {
    r.peer.close();
    throw new Error('the upgrade was accepted');
  }
  return r;
}

describe('room access is checked by the Worker', () => {
  it('no token, a token of another Worker key, another room, or the wrong path → the one 401, no WebSocket', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const url = roomUrl(worker.url, roomId);
    expect(await refusal(url, [ROOM_SUBPROTOCOL])).toEqual({ status: 401, body: 'Unauthorized' });
    expect(await refusal(url, [ROOM_SUBPROTOCOL, 'zks1r.AAAA'])).toEqual({ status: 401, body: 'Unauthorized' });
    const otherKey = new Uint8Array(randomBytes(32));
    expect((await refusal(url, await roomProtocols(otherKey, roomId, RoomRole.CLIENT))).status).toBe(401);
    expect((await refusal(url, await roomProtocols(key, await newRoomId(), RoomRole.CLIENT))).status).toBe(401);
    // A direct-mode HELLO never opens a room, and a room path never falls through to direct mode.
    const { hello } = await createClientHello(nodeCrypto, key);
    expect((await refusal(url, ['zks1', `zks1.${encodeBase64Url(hello)}`])).status).toBe(401);

    const good = await roomProtocols(key, roomId, RoomRole.CLIENT);
    const b64 = encodeBase64Url(roomId);
    for (const path of [`${b64}x`, b64.slice(0, 21), `${b64}/`, '', `${b64.slice(0, 21)}!`, `${b64.slice(0, 21)}B`]) {
      expect((await refusal(roomUrl(worker.url, path), good)).status, path).toBe(401);
    }
    expect(await exit.quiet()).toBe(true); // the room never heard of any of them
  });

  it('direct mode is unchanged: 401 without a key proof, 101 with zks1 for a valid HELLO', async () => {
    expect((await refusal(worker.url, ['zks1'])).status).toBe(401);
    const { hello } = await createClientHello(nodeCrypto, key);
    const r = await upgrade(`${worker.url}/any/path`, ['zks1', `zks1.${encodeBase64Url(hello)}`]);
    expect('peer' in r && r.protocol).toBe('zks1');
    if ('peer' in r) {
      expect((await r.peer.nextBinary()).length).toBe(98); // the handshake REPLY
      r.peer.close();
    }
  });

  it('a client before any exit gets 503 "exit peer offline" at once', async () => {
    const roomId = await newRoomId();
    expect(await refusal(roomUrl(worker.url, roomId), await roomProtocols(key, roomId, RoomRole.CLIENT)))
      .toEqual({ status: 503, body: 'exit peer offline' });
  });

  it('the role comes from the token alone: a forged internal role header changes nothing', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const r = await upgrade(roomUrl(worker.url, roomId), await roomProtocols(key, roomId, RoomRole.CLIENT), {
      'X-Zks-Room-Role': 'exit',
    });
    if ('status' in r) throw new Error(`refused: ${r.status}`);
    track(r.peer);
    expect(await exit.nextJson()).toMatchObject({ t: 'open' }); // joined as a client; the exit was not replaced
    expect(exit.ws.readyState).toBe(exit.ws.OPEN);
  });

  it('the room selects the zks1r subprotocol', async () => {
    const roomId = await newRoomId();
    track(await exitOf(roomId));
    const r = await upgrade(roomUrl(worker.url, roomId), await roomProtocols(key, roomId, RoomRole.CLIENT));
    expect('peer' in r && r.protocol).toBe(ROOM_SUBPROTOCOL);
    if ('peer' in r) track(r.peer);
  });
});

describe('forwarding between clients and the exit', () => {
  it('each client gets its own sid and fresh entropy; replies reach only their client; bytes are untouched', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const a = await session(exit, roomId);
    const b = await session(exit, roomId);
    expect(a.open.sid).not.toBe(b.open.sid);
    for (const o of [a.open, b.open]) {
      expect(Number.isInteger(o.sid) && o.sid > 0 && o.sid <= 0xffffffff).toBe(true);
      expect(decodeBase64Url(o.entropy)?.length).toBe(32);
    }
    expect(a.open.entropy).not.toBe(b.open.entropy);

    const helloA = new Uint8Array(randomBytes(200));
    const helloB = new Uint8Array(randomBytes(300));
    a.client.send(helloA);
    b.client.send(helloB);
    const got = new Map<number, Buffer>();
    for (let i = 0; i < 2; i++) {
      const d = decodeSidMessage(new Uint8Array(await exit.nextBinary()));
      if (d instanceof Error) throw d;
      got.set(d.sid, Buffer.from(d.payload));
    }
    expect(got.get(a.open.sid)).toEqual(Buffer.from(helloA));
    expect(got.get(b.open.sid)).toEqual(Buffer.from(helloB));

    const replyB = new Uint8Array(randomBytes(98));
    exit.send(encodeSidMessage(b.open.sid, replyB));
    expect(await b.client.nextBinary()).toEqual(Buffer.from(replyB));
    expect(await a.client.quiet()).toBe(true);

    // 1 MiB both ways, byte for byte (a sealed record is at most 1 MiB + 16).
    const big = new Uint8Array(randomBytes(1024 * 1024 + 16));
    a.client.send(big);
    const up = decodeSidMessage(new Uint8Array(await exit.nextBinary()));
    if (up instanceof Error) throw up;
    expect(up.sid).toBe(a.open.sid);
    expect(up.payload.length).toBe(big.length);
    expect(sha(up.payload)).toBe(sha(big));
    exit.send(encodeSidMessage(a.open.sid, big));
    const down = await a.client.nextBinary();
    expect(down.length).toBe(big.length);
    expect(sha(down)).toBe(sha(big));
    // An empty record is forwarded too.
    b.client.send(new Uint8Array(0));
    expect(await exit.nextBinary()).toEqual(Buffer.from(encodeSidMessage(b.open.sid, new Uint8Array(0))));
  });

  it('many messages in a row keep their order', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const { client, open } = await session(exit, roomId);
    for (let i = 0; i < 200; i++) client.send(new Uint8Array([i >> 8, i & 0xff]));
    for (let i = 0; i < 200; i++) {
      expect(await exit.nextBinary()).toEqual(Buffer.from(encodeSidMessage(open.sid, new Uint8Array([i >> 8, i & 0xff]))));
    }
    for (let i = 0; i < 200; i++) exit.send(encodeSidMessage(open.sid, new Uint8Array([i & 0xff])));
    for (let i = 0; i < 200; i++) expect(await client.nextBinary()).toEqual(Buffer.from([i & 0xff]));
  });

  it('exit closes a sid → that client gets SESSION_CLOSED and 4011; the other is unaffected', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const a = await session(exit, roomId);
    const b = await session(exit, roomId);
    exit.send(encodeRoomControl({ t: 'close', sid: a.open.sid, reason: 'handshake failed' }));
    const err = await a.client.nextJson();
    expect(err).toMatchObject({ t: 'error', code: 'SESSION_CLOSED' });
    expect(String(err.message)).toContain('handshake failed');
    expect((await a.client.closeEvent()).code).toBe(RoomCloseCode.SESSION_CLOSED);
    b.client.send(new Uint8Array([1, 2, 3]));
    expect(await exit.nextBinary()).toEqual(Buffer.from(encodeSidMessage(b.open.sid, new Uint8Array([1, 2, 3]))));
    exit.send(encodeSidMessage(b.open.sid, new Uint8Array([4])));
    expect(await b.client.nextBinary()).toEqual(Buffer.from([4]));
    // Records for the closed sid are answered with a close, not delivered anywhere.
    exit.send(encodeSidMessage(a.open.sid, new Uint8Array([9])));
    expect(await exit.nextJson()).toMatchObject({ t: 'close', sid: a.open.sid });
    expect(await b.client.quiet()).toBe(true);
  });

  it('a client that leaves → the exit gets close for its sid', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const a = await session(exit, roomId);
    const b = await session(exit, roomId);
    a.client.ws.close(1000, 'bye');
    expect(await exit.nextJson()).toMatchObject({ t: 'close', sid: a.open.sid });
    expect((await a.client.closeEvent()).code).toBe(1000); // the room answers the close handshake
    b.client.close(); // no close handshake at all
    expect(await exit.nextJson()).toMatchObject({ t: 'close', sid: b.open.sid });
  });

  it('an unknown sid from the exit is answered with close', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    exit.send(encodeSidMessage(12345, new Uint8Array([1])));
    expect(await exit.nextJson()).toMatchObject({ t: 'close', sid: 12345 });
  });
});

describe('the exit peer comes and goes', () => {
  it('exit disconnects → every client gets EXIT_GONE and 4010; a new exit serves new clients', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const a = await session(exit, roomId);
    const b = await session(exit, roomId);
    exit.close();
    for (const c of [a.client, b.client]) {
      expect(await c.nextJson()).toEqual({ t: 'error', code: 'EXIT_GONE', message: 'the exit peer disconnected' });
      expect((await c.closeEvent()).code).toBe(RoomCloseCode.EXIT_OFFLINE);
    }
    const r = await upgrade(roomUrl(worker.url, roomId), await roomProtocols(key, roomId, RoomRole.CLIENT));
    expect(r).toEqual({ status: 503, body: 'exit peer offline' });

    const exit2 = await exitOf(roomId);
    const c = await session(exit2, roomId);
    c.client.send(new Uint8Array([7]));
    expect(await exit2.nextBinary()).toEqual(Buffer.from(encodeSidMessage(c.open.sid, new Uint8Array([7]))));
  });

  it('a clean exit close (1000) ends the sessions the same way', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const a = await session(exit, roomId);
    exit.ws.close(1000, 'shutting down');
    expect(await a.client.nextJson()).toMatchObject({ code: 'EXIT_GONE' });
    expect((await a.client.closeEvent()).code).toBe(4010);
    expect((await exit.closeEvent()).code).toBe(1000);
  });

  it('a second exit with the secret is refused 4014 while the first is alive; the first keeps its clients', async () => {
    const roomId = await newRoomId();
    const exit1 = await exitOf(roomId);
    const a = await session(exit1, roomId);
    const r = await upgrade(roomUrl(worker.url, roomId), await roomProtocols(key, roomId, RoomRole.EXIT));
    if ('status' in r) throw new Error(`refused: ${r.status}`);
    const exit2 = track(r.peer);
    exit2.send(await proofFor(roomId, await exit2.nextText(), newInstance()));
    expect((await exit2.closeEvent()).code).toBe(RoomCloseCode.EXIT_BUSY);
    a.client.send(new Uint8Array([1]));
    expect(await exit1.nextBinary()).toEqual(Buffer.from(encodeSidMessage(a.open.sid, new Uint8Array([1]))));
  });

  it('the same exit instance reconnecting replaces its old connection: old exit and its clients closed with 4012', async () => {
    const roomId = await newRoomId();
    const instance = newInstance();
    const exit1 = track(await joinExit(worker.url, key, roomId, instance));
    const a = await session(exit1, roomId);
    const exit2 = track(await joinExit(worker.url, key, roomId, instance));
    expect(await a.client.nextJson()).toMatchObject({ t: 'error', code: 'EXIT_REPLACED' });
    expect((await a.client.closeEvent()).code).toBe(RoomCloseCode.EXIT_REPLACED);
    expect((await exit1.closeEvent()).code).toBe(RoomCloseCode.EXIT_REPLACED);
    // The old exit's close must not end the new exit's sessions. exit1's close event came after it answered the
    // room's close frame, so the room's close handler for exit1 is queued before b's upgrade and messages (one
    // Durable Object runs its events in arrival order): the round trips below run after it.
    const b = await session(exit2, roomId);
    b.client.send(new Uint8Array([1]));
    expect(await exit2.nextBinary()).toEqual(Buffer.from(encodeSidMessage(b.open.sid, new Uint8Array([1]))));
    exit2.send(encodeSidMessage(b.open.sid, new Uint8Array([2])));
    expect(await b.client.nextBinary()).toEqual(Buffer.from([2]));
  });

  for (const [name, bad] of [
    ['a binary message shorter than a sid', new Uint8Array([0, 1])],
    ['text that is not JSON', 'hello'],
    ['an unknown control type', JSON.stringify({ t: 'hack', sid: 1 })],
    ['an open from the exit', encodeRoomControl({ t: 'open', sid: 1, entropy: 'AAAA' })],
    ['a close without sid', JSON.stringify({ t: 'close' })],
  ] as const) {
    it(`malformed exit input (${name}) → exit closed 4013, its clients EXIT_GONE; a new exit works`, async () => {
      const roomId = await newRoomId();
      const exit = await exitOf(roomId);
      const a = await session(exit, roomId);
      exit.send(bad);
      expect((await exit.closeEvent()).code).toBe(RoomCloseCode.BAD_MESSAGE);
      expect(await a.client.nextJson()).toMatchObject({ code: 'EXIT_GONE' });
      expect((await a.client.closeEvent()).code).toBe(RoomCloseCode.EXIT_OFFLINE);
      const exit2 = await exitOf(roomId);
      const b = await session(exit2, roomId);
      b.client.send(new Uint8Array([5]));
      expect(await exit2.nextBinary()).toEqual(Buffer.from(encodeSidMessage(b.open.sid, new Uint8Array([5]))));
    });
  }

  it('a client that sends text is closed 4013 and the exit gets close', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const a = await session(exit, roomId);
    a.client.send('not a record');
    expect((await a.client.closeEvent()).code).toBe(RoomCloseCode.BAD_MESSAGE);
    expect(await exit.nextJson()).toMatchObject({ t: 'close', sid: a.open.sid });
  });
});

describe('rooms are isolated', () => {
  it('two rooms, two exits: messages never cross', async () => {
    const [roomA, roomB] = [await newRoomId(), await newRoomId()];
    const exitA = await exitOf(roomA);
    const exitB = await exitOf(roomB);
    const a = await session(exitA, roomA);
    const b = await session(exitB, roomB);
    a.client.send(new Uint8Array([0xaa]));
    b.client.send(new Uint8Array([0xbb]));
    expect(await exitA.nextBinary()).toEqual(Buffer.from(encodeSidMessage(a.open.sid, new Uint8Array([0xaa]))));
    expect(await exitB.nextBinary()).toEqual(Buffer.from(encodeSidMessage(b.open.sid, new Uint8Array([0xbb]))));
    // Exit B addressing room A's sid reaches nobody in room A.
    exitB.send(encodeSidMessage(a.open.sid, new Uint8Array([0xcc])));
    expect(await exitB.nextJson()).toMatchObject({ t: 'close', sid: a.open.sid });
    expect(await a.client.quiet()).toBe(true);
    expect(await exitA.quiet()).toBe(true);
    // One room losing its exit leaves the other alone.
    exitA.close();
    expect(await a.client.nextJson()).toMatchObject({ code: 'EXIT_GONE' });
    exitB.send(encodeSidMessage(b.open.sid, new Uint8Array([1])));
    expect(await b.client.nextBinary()).toEqual(Buffer.from([1]));
  });
});

describe('keepalive', () => {
  it('"ping" from a client or the exit is answered "pong"', async () => {
    const roomId = await newRoomId();
    const exit = await exitOf(roomId);
    const { client } = await session(exit, roomId);
    client.send('ping');
    expect(await client.nextText()).toBe('pong');
    exit.send('ping');
    expect(await exit.nextText()).toBe('pong');
    expect(await exit.quiet()).toBe(true); // the exit did not hear the client's ping
  });
});
