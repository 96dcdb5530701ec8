// Issue 14, rooms: regressions against the real Worker in workerd with a real `ExitPeer` and real clients
// (TunnelConnection), plus raw `ws` peers playing the intruder. Each test is named after what broke:
// a key holder taking over a room, one oversized message resetting every session, and the room's limits.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { generateExitKeypair, generateKey } from '../../src/cli/args';
import { TunnelConnection } from '../../src/client/connection';
import { decodeBase64Url, encodeBase64Url } from '../../src/crypto/bytes';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys, type RoomKeys } from '../../src/crypto/room';
import { ExitPeer } from '../../src/exit';
import { ZksError } from '../../src/errors/zks-error';
import { ConnectResult } from '../../src/protocol/constants';
import { encodeRoomControl, encodeSidMessage, RoomCloseCode } from '../../src/protocol/room-wire';
import { openStream, roundTrip, sha256, startEcho, waitFor, type EchoServer } from '../exit/room-stand-in';
import { joinClient, joinExit, joinExitUnproven, newRoomId, type Peer } from './peers';

const key = new Uint8Array(randomBytes(32));
let worker: DevWorker;
let echo: EchoServer;
let secret: string;
let room: RoomKeys;
let logs: string[];
const exits: ExitPeer[] = [];
const conns: TunnelConnection[] = [];
const peers: Peer[] = [];
const track = <T extends Peer>(p: T): T => (peers.push(p), p);

beforeAll(async () => {
  // A low client rate (the default, 16 000/s, is above what a local room processes on a busy machine): the flood
  // test must overrun it for sure; everything else here stays far below it.
  worker = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, bindings: { ZKS_ROOM_CLIENT_RATE: '1000' } });
  echo = await startEcho();
});
beforeEach(async () => {
  secret = generateKey();
  room = await deriveRoomKeys(nodeCrypto, secret);
  logs = [];
});
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const c of conns.splice(0)) c.terminate();
  for (const e of exits.splice(0)) await e.close();
});
afterAll(async () => {
  await echo?.close();
  await worker?.dispose();
});

async function startExit(tag = '', exitKey?: Uint8Array): Promise<ExitPeer> {
  const exit = await ExitPeer.start({ relay: worker.url, key, roomSecret: secret, exitKey, allowLan: true, log: (l) => logs.push(`${tag}${l}`) });
  exits.push(exit);
  return exit;
}

async function client(exitId?: Uint8Array): Promise<TunnelConnection> {
  const c = await TunnelConnection.open({ url: worker.url, key, room: { roomId: room.roomId, psk: room.psk, exitId } });
  conns.push(c);
  return c;
}

/** A stream through the room and the exit peer to the echo target: 200 kB there and back, hash-checked. */
async function echoes(c: TunnelConnection): Promise<void> {
  const { code, stream } = await openStream(c.mux, '127.0.0.1', echo.port);
  expect(code).toBe(ConnectResult.OK);
  const data = new Uint8Array(randomBytes(200_000));
  expect((await roundTrip(stream, data)).sha).toBe(sha256(data));
}

const badProof = (exitPublic: Uint8Array) => encodeRoomControl({
  t: 'prove', key: encodeBase64Url(exitPublic), instance: encodeBase64Url(randomBytes(16)), mac: encodeBase64Url(randomBytes(32)),
});

describe('room takeover: the Worker key and the room id are not enough to be the exit', () => {
  it('a rogue exit with the Worker key and the room id is refused (4015); the real exit peer keeps serving', async () => {
    const exit = await startExit();
    const c = await client();
    await echoes(c);

    // What an intruder who read the room id in a log can do: upgrade as exit, then answer the challenge somehow.
    const rogue = track(await joinExitUnproven(worker.url, key, room.roomId));
    expect(JSON.parse(await rogue.nextText())).toMatchObject({ t: 'challenge' });
    rogue.send(badProof(randomBytes(32)));
    expect((await rogue.closeEvent()).code).toBe(RoomCloseCode.EXIT_PROOF_FAILED);
    // Even knowing the exit's public key (the relay sees it) does not help without the secret.
    const rogue2 = track(await joinExitUnproven(worker.url, key, room.roomId));
    await rogue2.nextText();
    rogue2.send(badProof(room.exitKey.publicKey));
    expect((await rogue2.closeEvent()).code).toBe(RoomCloseCode.EXIT_PROOF_FAILED);
    // Or skipping the proof and speaking as an exit right away.
    const rogue3 = track(await joinExitUnproven(worker.url, key, room.roomId));
    await rogue3.nextText();
    rogue3.send(encodeSidMessage(1, new Uint8Array([1, 2, 3])));
    expect((await rogue3.closeEvent()).code).toBe(RoomCloseCode.BAD_MESSAGE);

    await echoes(c); // the old session still runs through the real exit
    await echoes(await client()); // and new clients reach it too
    expect(exit.attached).toBe(true);
    expect(logs).toEqual([`exit peer attached to the room on ${worker.url}`]); // never displaced, never reconnected
  });

  it('a rogue exit that never answers the challenge is closed (4015) after 10 s', async () => {
    await startExit();
    const rogue = track(await joinExitUnproven(worker.url, key, room.roomId));
    expect(JSON.parse(await rogue.nextText())).toMatchObject({ t: 'challenge' });
    // A keepalive is not an answer. (It also makes local workerd report the close at once: see session() in room.test.ts.)
    rogue.send('ping');
    expect(await rogue.nextText()).toBe('pong');
    expect((await rogue.closeEvent(15_000)).code).toBe(RoomCloseCode.EXIT_PROOF_FAILED);
    await echoes(await client());
  }, 20_000);

  it('a second exit peer with the secret stands by (4014), keeps retrying, and takes over when the first leaves', async () => {
    const first = await startExit('first: ');
    const second = await startExit('second: ');
    expect(second.attached).toBe(false);
    expect(logs).toContainEqual(expect.stringMatching(/^second: another exit peer holding this room secret is attached.*standing by.*retrying in 8000 ms$/));
    await echoes(await client()); // served by the first, undisturbed
    await first.close();
    await waitFor(() => second.attached, 'the standby to attach', 15_000);
    expect(logs.at(-1)).toBe(`second: exit peer attached to the room on ${worker.url}`);
    await echoes(await client());
  }, 25_000);
});

describe('room limits close only the sender', () => {
  it('a 2 MiB room message closes only its sender (4016); another session of the same room keeps working', async () => {
    const exit = await startExit();
    const c = await client();
    await echoes(c);
    const rogue = track(await joinClient(worker.url, key, room.roomId));
    rogue.send(new Uint8Array(2 * 1024 * 1024));
    expect(await rogue.nextJson()).toMatchObject({ t: 'error', code: 'MESSAGE_TOO_LARGE' });
    expect((await rogue.closeEvent()).code).toBe(RoomCloseCode.MESSAGE_TOO_LARGE);
    await echoes(c);
    expect(exit.attached).toBe(true);
    expect(logs.filter((l) => /lost the room connection/.test(l))).toEqual([]);
  });

  it('a client flooding messages is closed with 4017 (RATE_LIMITED); the exit gets close for its sid', async () => {
    const roomId = await newRoomId();
    const exit = track(await joinExit(worker.url, key, roomId));
    const flood = track(await joinClient(worker.url, key, roomId));
    const { sid } = await exit.nextJson<{ sid: number }>();
    const one = new Uint8Array(1);
    for (let i = 0; i < 40_000; i++) flood.send(one);
    expect(await flood.nextJson()).toMatchObject({ t: 'error', code: 'RATE_LIMITED' });
    // The client's close reply waits behind the rest of its flood, which the room still reads (and drops).
    expect((await flood.closeEvent(30_000)).code).toBe(RoomCloseCode.RATE_LIMITED);
    let forwarded = 0;
    for (;;) {
      const m = await exit.next();
      if (typeof m === 'string') {
        expect(JSON.parse(m)).toMatchObject({ t: 'close', sid, reason: expect.stringMatching(/more messages per second/) });
        break;
      }
      forwarded++;
    }
    expect(forwarded).toBeLessThan(40_000);
  });

  it('a fast client is not rate limited at the default limits: 8 000 records back to back all reach the exit', async () => {
    // Regression: a client limit of 1 000/s (bursts of 2 000) closed a plain bulk upload through the room (4017).
    const defaults = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0 });
    try {
      const roomId = await newRoomId();
      const exit = track(await joinExit(defaults.url, key, roomId));
      const fast = track(await joinClient(defaults.url, key, roomId));
      await exit.nextJson(); // open
      const record = new Uint8Array(1024);
      for (let i = 0; i < 8_000; i++) fast.send(record);
      for (let forwarded = 0; forwarded < 8_000; forwarded++) {
        const m = await exit.next(30_000);
        expect(typeof m, `message ${forwarded + 1} at the exit`).not.toBe('string'); // a 'close' for the sid
      }
    } finally {
      for (const p of peers.splice(0)) p.close();
      await defaults.dispose();
    }
  }, 60_000);

  it('a full room answers ROOM_FULL (4018), which the client reports as ZKS_ERR_ROOM_REFUSED', async () => {
    await startExit();
    const sessions = await Promise.all(Array.from({ length: 256 }, () => joinClient(worker.url, key, room.roomId)));
    for (const s of sessions) track(s);
    const err = await client().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_ROOM_REFUSED');
    expect((err as ZksError).message).toMatch(/as many sessions as it accepts \(256\).*ROOM_FULL, close 4018/);
  }, 30_000);
});

describe('static exit keys: a leaked room secret alone is not a man-in-the-middle', () => {
  it('a client pinning the exit id refuses an impostor that holds the room secret; the real exit serves it', async () => {
    const { exitKey, exitId } = await generateExitKeypair();
    const real = await startExit('real: ', decodeBase64Url(exitKey)!);
    await echoes(await client(decodeBase64Url(exitId)!));
    // The real exit goes away; someone else with the room secret (and the Worker key) attaches in its place.
    await real.close();
    // (It answers the handshake with an exit key of its own: an exit with none would only refuse the session.)
    const impostor = await startExit('impostor: ', decodeBase64Url((await generateExitKeypair()).exitKey)!);
    expect(impostor.attached).toBe(true);
    const err = await client(decodeBase64Url(exitId)!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_AUTH');
    expect((err as ZksError).message).toMatch(/could not prove the pinned exit key/);
    await echoes(await client()); // what pinning protects against: an unpinned client is served by the impostor
  });
});
