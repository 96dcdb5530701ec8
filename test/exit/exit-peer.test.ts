// The exit peer against a stand-in relay room on 127.0.0.1 (room-stand-in.ts), with the test as the clients
// speaking the real handshake, records and mux. Targets are loopback TCP servers; names resolve from a fixed
// map, so nothing leaves the machine.

import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ExitPeer, type ExitPeerOptions } from '../../src/exit/index';
import { FORBIDDEN_MESSAGE } from '../../src/exit/connect';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys } from '../../src/crypto/room';
import { generateKey } from '../../src/cli/args';
import { ConnectResult } from '../../src/protocol/constants';
import { RoomCloseCode } from '../../src/protocol/room-wire';
import type { ZksError } from '../../src/errors/zks-error';
import {
  connectClient,
  fixedLookup,
  freePort,
  openStream,
  roundTrip,
  sha256,
  startEcho,
  StandInRoom,
  waitFor,
  type EchoServer,
} from './room-stand-in';

const ROOM_SECRET = generateKey();
const HOSTS = {
  localhost: ['127.0.0.1'],
  'loopback.test': ['127.0.0.1'], // a public-looking name that resolves to loopback (rebinding)
  'mixed.test': ['93.184.215.14', '127.0.0.1'], // one private answer among public ones: refused before any connect
  'v6.test': ['::1'],
};

let workerKey: Uint8Array;
let psk: Uint8Array;
let roomId: Uint8Array;
let room: StandInRoom;
let echo: EchoServer;
let peer: ExitPeer | null;
let logs: string[];

beforeAll(async () => {
  workerKey = new Uint8Array(randomBytes(32));
  ({ psk, roomId } = await deriveRoomKeys(nodeCrypto, ROOM_SECRET));
});

beforeEach(async () => {
  room = await StandInRoom.start({ workerKey, roomId });
  echo = await startEcho();
  peer = null;
  logs = [];
});

afterEach(async () => {
  await peer?.close();
  await room.close();
  await echo.close();
  expect(room.violations).toEqual([]);
});

async function startPeer(extra: Partial<ExitPeerOptions> = {}): Promise<ExitPeer> {
  peer = await ExitPeer.start({
    relay: room.url,
    key: workerKey,
    roomSecret: ROOM_SECRET,
    allowLan: true,
    lookup: fixedLookup(HOSTS),
    log: (line) => logs.push(line),
    ...extra,
  });
  await room.waitForExit();
  return peer;
}

describe('sessions and streams', () => {
  it('handshakes through the room and carries 10 MB each way to a TCP target, sha256-checked', async () => {
    await startPeer();
    const client = await connectClient(room, psk);
    expect(peer!.sessions).toBe(1);
    const { code, stream } = await openStream(client.mux, '127.0.0.1', echo.port);
    expect(code).toBe(ConnectResult.OK);
    const data = new Uint8Array(randomBytes(10 * 1024 * 1024));
    const back = await roundTrip(stream, data);
    expect(back.length).toBe(data.length);
    expect(back.sha).toBe(sha256(data)); // download: what the client got back
    await waitFor(() => echo.received.length === 1, 'target to see the FIN');
    expect(echo.received[0]).toBe(sha256(data)); // upload: what the target received
  });

  it('serves 20 concurrent streams over 3 sessions', async () => {
    await startPeer();
    const clients = await Promise.all([0, 1, 2].map(() => connectClient(room, psk)));
    expect(peer!.sessions).toBe(3);
    const jobs = Array.from({ length: 20 }, async (_, i) => {
      const { code, stream } = await openStream(clients[i % 3].mux, 'localhost', echo.port);
      expect(code).toBe(ConnectResult.OK);
      const data = new Uint8Array(randomBytes(100_000 + i * 7919));
      const back = await roundTrip(stream, data, 16 * 1024);
      expect(back.sha).toBe(sha256(data));
      return sha256(data);
    });
    const sent = await Promise.all(jobs);
    await waitFor(() => echo.received.length === 20, 'every target connection to finish');
    expect([...echo.received].sort()).toEqual([...sent].sort());
  });

  it('a target that speaks first and closes is delivered whole (half-close towards the client)', async () => {
    await startPeer();
    const { createServer } = await import('node:net');
    const banner = new Uint8Array(randomBytes(300_000));
    const srv = createServer((s) => s.end(banner));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const client = await connectClient(room, psk);
      const { code, stream } = await openStream(client.mux, '127.0.0.1', (srv.address() as { port: number }).port);
      expect(code).toBe(ConnectResult.OK);
      const back = await roundTrip(stream, new Uint8Array(0));
      expect(back.sha).toBe(sha256(banner));
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe('target policy (--allow-lan)', () => {
  it('off: loopback literals, localhost and names resolving to private addresses are FORBIDDEN, before any connect', async () => {
    const lookup = fixedLookup(HOSTS);
    await startPeer({ allowLan: false, lookup });
    const client = await connectClient(room, psk);
    for (const host of ['127.0.0.1', 'localhost', '::1', 'loopback.test', 'mixed.test', 'v6.test', '10.1.2.3', '169.254.1.1', '::ffff:127.0.0.1']) {
      const r = await openStream(client.mux, host, echo.port);
      expect([host, r.code]).toEqual([host, ConnectResult.FORBIDDEN]);
      expect(r.message).toBe(FORBIDDEN_MESSAGE);
    }
    // Literals and "localhost" are refused without a lookup; the other names after it (DNS rebinding).
    expect(lookup.calls).toEqual(['loopback.test', 'mixed.test', 'v6.test']);
    expect(echo.connections).toBe(0);
  });

  it('on: loopback by name, IPv4 and IPv6 literal is allowed', async () => {
    const echo6 = await startEcho('::1');
    try {
      await startPeer({ allowLan: true });
      const client = await connectClient(room, psk);
      for (const [host, port] of [['localhost', echo.port], ['127.0.0.1', echo.port], ['::1', echo6.port], ['v6.test', echo6.port]] as const) {
        const { code, stream } = await openStream(client.mux, host, port);
        expect([host, code]).toEqual([host, ConnectResult.OK]);
        const data = new Uint8Array(randomBytes(1000));
        expect((await roundTrip(stream, data)).sha).toBe(sha256(data));
      }
      expect(echo6.connections).toBe(2);
    } finally {
      await echo6.close();
    }
  });
});

describe('connect failures', () => {
  it('maps a refused port to REFUSED and an unknown name to HOST_UNREACHABLE', async () => {
    await startPeer();
    const client = await connectClient(room, psk);
    const refused = await openStream(client.mux, '127.0.0.1', await freePort());
    expect(refused.code).toBe(ConnectResult.REFUSED);
    const unknown = await openStream(client.mux, 'no-such-host.invalid', 443);
    expect(unknown.code).toBe(ConnectResult.HOST_UNREACHABLE);
    expect(unknown.message).toMatch(/no-such-host\.invalid: no such host/);
    // The session is unharmed.
    const ok = await openStream(client.mux, '127.0.0.1', echo.port);
    expect(ok.code).toBe(ConnectResult.OK);
    ok.stream.reset();
  });

  it('answers TIMEOUT when the target does not resolve or connect within connectTimeoutMs', async () => {
    const never = () => new Promise<never>(() => {});
    await startPeer({ lookup: never, connectTimeoutMs: 150 });
    const client = await connectClient(room, psk);
    const t0 = Date.now();
    const r = await openStream(client.mux, 'slow.test', 80);
    expect(r.code).toBe(ConnectResult.TIMEOUT);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('never connects when the client resets the stream while the name is still resolving', async () => {
    let answer!: (v: Array<{ address: string; family: number }>) => void;
    const slow = () => new Promise<Array<{ address: string; family: number }>>((r) => (answer = r));
    await startPeer({ lookup: slow });
    const client = await connectClient(room, psk);
    const stream = client.mux.openStream({ host: 'late.test', port: echo.port });
    await waitFor(() => answer !== undefined, 'the lookup to start');
    stream.reset();
    // The session handles frames in order: once a stream opened after the RST is answered, the exit has the RST.
    const before = await openStream(client.mux, '127.0.0.1', echo.port);
    expect(before.code).toBe(ConnectResult.OK);
    await roundTrip(before.stream, new Uint8Array(10));
    expect(echo.connections).toBe(1);
    answer([{ address: '127.0.0.1', family: 4 }]);
    // A connect for the late answer would start right after it, before the exit even reads the next OPEN: by the
    // time a stream opened now has echoed its bytes, the echo server would have accepted that connection first.
    const after = await openStream(client.mux, '127.0.0.1', echo.port);
    await roundTrip(after.stream, new Uint8Array(10));
    expect(echo.connections).toBe(2);
  });
});

describe('session isolation', () => {
  it('a HELLO with another room secret gets a close for its sid only', async () => {
    await startPeer();
    const good = await connectClient(room, psk);
    const other = await deriveRoomKeys(nodeCrypto, generateKey());
    await expect(connectClient(room, other.psk)).rejects.toThrow(/closed: exit closed: HELLO authentication failed/);
    expect(room.controls).toEqual([{ sid: 2, reason: expect.stringMatching(/HELLO authentication failed/) }]);
    expect(logs.some((l) => /session 2: HELLO authentication failed/.test(l))).toBe(true);
    const { code, stream } = await openStream(good.mux, '127.0.0.1', echo.port);
    expect(code).toBe(ConnectResult.OK);
    const data = new Uint8Array(randomBytes(50_000));
    expect((await roundTrip(stream, data)).sha).toBe(sha256(data));
    expect(peer!.sessions).toBe(1);
  });

  it('garbage after the handshake ends that session; a transfer on another session continues', async () => {
    await startPeer();
    const a = await connectClient(room, psk);
    const b = await connectClient(room, psk);
    const { stream } = await openStream(a.mux, '127.0.0.1', echo.port);
    const data = new Uint8Array(randomBytes(4 * 1024 * 1024));
    const transfer = roundTrip(stream, data);
    b.session.send(new Uint8Array(randomBytes(200))); // not a record sealed with b's key
    expect(await b.session.closed).toBe('exit closed: ZKS_ERR_DECRYPT');
    expect(b.mux.isClosed).toBe(true);
    expect((await transfer).sha).toBe(sha256(data));
    expect(peer!.sessions).toBe(1);
  });

  it('the room closing a session resets its target connections', async () => {
    await startPeer();
    const a = await connectClient(room, psk);
    const { stream } = await openStream(a.mux, '127.0.0.1', echo.port);
    stream.write(new Uint8Array(10));
    await waitFor(() => echo.sockets.size === 1, 'the target connection');
    a.session.close('client went away');
    await waitFor(() => echo.sockets.size === 0, 'the target connection to be torn down');
    expect(peer!.sessions).toBe(0);
  });

  it('refuses an open whose entropy is not 32 bytes of base64url', async () => {
    await startPeer();
    const s = room.openSession('AAAA');
    expect(await s.closed).toBe('exit closed: bad entropy in open');
    expect(peer!.sessions).toBe(0);
  });
});

describe('room connection', () => {
  it('reconnects with backoff after the room WebSocket drops, and serves new sessions', async () => {
    await startPeer();
    const old = await connectClient(room, psk);
    const { stream } = await openStream(old.mux, '127.0.0.1', echo.port);
    const closed = new Promise<ZksError | null>((r) => (stream.onClose = r));
    room.dropExit();
    expect((await closed)?.code).toBe('ZKS_ERR_CONNECTION_LOST'); // the client side sees its streams end
    await room.waitForExit(2);
    await waitFor(() => peer!.attached, 'the exit to re-attach');
    expect(logs).toEqual([
      `exit peer attached to the room on ${room.url}`,
      expect.stringMatching(/^lost the room connection: .*; retrying in 250 ms$/),
      `exit peer attached to the room on ${room.url}`,
    ]);
    await waitFor(() => echo.sockets.size === 0, 'the old target connection to be torn down');
    const fresh = await connectClient(room, psk);
    const r = await openStream(fresh.mux, '127.0.0.1', echo.port);
    expect(r.code).toBe(ConnectResult.OK);
    r.stream.reset();
  });

  it('an exit peer displaced by another exit (4012) does not stop: it says why, retries and attaches again', async () => {
    await startPeer();
    room.closeExit(RoomCloseCode.EXIT_REPLACED, 'replaced by a new exit peer');
    await room.waitForExit(2);
    await waitFor(() => peer!.attached, 'the exit to re-attach');
    expect(logs).toEqual([
      `exit peer attached to the room on ${room.url}`,
      'the room was taken over: 4012 (another exit peer holding the room secret took over this room); retrying in 250 ms',
      `exit peer attached to the room on ${room.url}`,
    ]);
    const client = await connectClient(room, psk);
    const r = await openStream(client.mux, '127.0.0.1', echo.port);
    expect(r.code).toBe(ConnectResult.OK);
    r.stream.reset();
  });

  it('backs off to the longest interval when the relay starts refusing the key', async () => {
    await startPeer();
    room.setWorkerKey(new Uint8Array(randomBytes(32)));
    room.dropExit();
    await waitFor(() => logs.some((l) => /retrying in 8000 ms/.test(l)), 'the 401 back-off', 3000);
    expect(logs.find((l) => /retrying in 8000 ms/.test(l))).toMatch(/^cannot attach to the room: the relay refused the Worker key.*; retrying in 8000 ms$/);
    expect(room.refusedUpgrades).toBe(1);
    expect(peer!.attached).toBe(false);
  });

  it('rejects start with ZKS_ERR_AUTH when the relay refuses the Worker key, without retrying', async () => {
    const lines: string[] = [];
    const err = await ExitPeer.start({ relay: room.url, key: new Uint8Array(randomBytes(32)), roomSecret: ROOM_SECRET, log: (l) => lines.push(l) })
      .catch((e: ZksError) => e);
    expect((err as ZksError).code).toBe('ZKS_ERR_AUTH');
    expect((err as ZksError).message).toMatch(/the relay refused the Worker key/);
    // Every retry is logged as it is scheduled ("retrying in N ms"), and a peer that never attached has no room
    // connection whose close could schedule one later.
    expect(lines).toEqual([]);
    expect(room.refusedUpgrades).toBe(1);
  });

  it('rejects start with ZKS_ERR_TIMEOUT, saying to redeploy, when the relay never challenges; no retries follow', async () => {
    room.challenges = false; // a Worker from before exit proofs
    const lines: string[] = [];
    const err = await ExitPeer.start({ relay: room.url, key: workerKey, roomSecret: ROOM_SECRET, log: (l) => lines.push(l) })
      .catch((e: ZksError) => e);
    expect((err as ZksError).code).toBe('ZKS_ERR_TIMEOUT');
    expect((err as ZksError).message).toMatch(/did not attach this exit peer within 10000 ms .*redeploy/);
    // The room sees its socket close; a peer that never attached schedules nothing (it would log "retrying").
    await waitFor(() => room.upgrades === 1 && room.openSockets === 0, 'the socket to close');
    expect(lines).toEqual([]);
  }, 20_000);

  it('rejects start with ZKS_ERR_RELAY_UNREACHABLE when nothing listens, and ZKS_ERR_CONFIG for bad options', async () => {
    const port = await freePort();
    const err = await ExitPeer.start({ relay: `ws://127.0.0.1:${port}`, key: workerKey, roomSecret: ROOM_SECRET }).catch((e: ZksError) => e);
    expect((err as ZksError).code).toBe('ZKS_ERR_RELAY_UNREACHABLE');
    expect((err as ZksError).message).not.toContain('/room/'); // the room id is not printed
    for (const bad of [{ relay: 'ftp://x' }, { key: new Uint8Array(16) }, { roomSecret: 'short' }]) {
      const e = await ExitPeer.start({ relay: room.url, key: workerKey, roomSecret: ROOM_SECRET, ...bad }).catch((x: ZksError) => x);
      expect((e as ZksError).code).toBe('ZKS_ERR_CONFIG');
    }
  });

  it('pings the room every interval and needs no other traffic to stay attached', async () => {
    await startPeer({ pingIntervalMs: 40 });
    await waitFor(() => room.pings >= 5, 'five pings');
    expect(peer!.attached).toBe(true);
    expect(room.exitConnections).toBe(1);
  });

  it('drops and replaces a room connection that goes silent for two intervals + 5 s', async () => {
    await startPeer({ pingIntervalMs: 100 });
    room.answerPings = false;
    await waitFor(() => room.exitConnections === 2, 'the exit to reconnect', 8000); // 2 × 100 ms + 5 s of silence
    await waitFor(() => peer!.attached, 'the exit to re-attach');
    expect(logs[1]).toMatch(/^lost the room connection: nothing received from the relay for \d+ ms; retrying in 250 ms$/);
  }, 15_000);

  it('close() resets every stream, closes each session at the room, and stops reconnecting', async () => {
    await startPeer();
    const a = await connectClient(room, psk);
    const b = await connectClient(room, psk);
    const { stream } = await openStream(a.mux, '127.0.0.1', echo.port);
    const streamClosed = new Promise<ZksError | null>((r) => (stream.onClose = r));
    stream.write(new Uint8Array(10));
    await waitFor(() => echo.sockets.size === 1, 'the target connection');
    await peer!.close();
    expect((await streamClosed)?.code).toBe('ZKS_ERR_CONNECTION_LOST'); // GOAWAY from the exit
    expect(a.mux.isClosed && b.mux.isClosed).toBe(true);
    expect(room.controls.map((c) => c.sid).sort()).toEqual([1, 2]);
    await waitFor(() => echo.sockets.size === 0 && room.exit === null, 'target and room connections to close');
    expect(peer!.attached).toBe(false);
    expect(peer!.sessions).toBe(0);
    // close() resolved after the room connection's close was handled: a reconnect would have been scheduled (and
    // logged as "retrying in N ms") by then.
    expect(logs.filter((l) => /retrying/.test(l))).toEqual([]);
    expect(room.exitConnections).toBe(1);
  });
});
