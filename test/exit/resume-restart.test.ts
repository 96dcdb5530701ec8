// Resume across a restart of the relay Worker itself (PROTOCOL.md §11.7): workerd goes away in the middle of a
// transfer — every WebSocket drops, the room (a Durable Object) is gone with its state — and comes back on the same
// port. The exit peer attaches again to a fresh room, keeping its sessions; the client resumes; the transfer
// completes with every byte. Real workerd (stopped and started), real exit peer, real pool, real TCP echo server.
import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { encodeBase64Url } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys } from '../../src/crypto/room';
import { generateKey } from '../../src/cli/args';
import { ExitPeer } from '../../src/exit/index';
import { TunnelPool } from '../../src/client/pool';
import { ZksError } from '../../src/errors/zks-error';
import { until } from '../integration/harness';

let echo: Server;
let echoPort = 0;
beforeAll(async () => {
  echo = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => echo.close(() => r())));

describe('resume across a Worker restart', () => {
  it('workerd stopped and started again mid-transfer: 24 MB echoed intact, the session resumed', async () => {
    const key = new Uint8Array(randomBytes(32));
    const start = (port: number) => startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port, allowPrivateTargets: true });
    let worker: DevWorker = await start(0);
    const port = Number(new URL(worker.url).port);
    const lines: string[] = [];
    const waiting = new Set<() => void>();
    const log = (line: string) => {
      lines.push(line);
      for (const w of [...waiting]) w();
    };
    const secret = generateKey();
    const exit = await ExitPeer.start({ relay: worker.url, key, roomSecret: secret, allowLan: true, log });
    const pool = new TunnelPool({ url: worker.url, key, room: await deriveRoomKeys(nodeCrypto, secret), log });
    try {
      const conn = await pool.anyConnection();
      if (conn instanceof ZksError) throw conn;
      await conn.link.mux.datagrams.peerCapabilities();
      const opened = await pool.open({ host: '127.0.0.1', port: echoPort });
      if (!opened.ok) throw new Error(opened.message);
      const stream = opened.stream;
      const total = 24 * 1024 * 1024;
      const sent = new Uint8Array(total).map((_, i) => (i * 13 + (i >> 12)) & 0xff);
      const back = new Uint8Array(total);
      let got = 0;
      let restart: Promise<void> | null = null;
      const done = new Promise<void>((resolve, reject) => {
        stream.onData = (chunk) => {
          back.set(chunk, got);
          got += chunk.length;
          stream.consume(chunk.length);
          if (got === total) resolve();
        };
        stream.onClose = (err) => (err ? reject(err) : undefined);
      });
      let off = 0;
      const pump = () => {
        while (off < total && stream.writable) {
          stream.write(sent.subarray(off, off + 64 * 1024));
          off += 64 * 1024;
          if (!restart && off >= 6 * 1024 * 1024) {
            restart = (async () => {
              await worker.dispose(); // every WebSocket drops, the room with them
              worker = await start(port);
            })();
          }
        }
        if (off === total) stream.end();
      };
      stream.onDrain = pump;
      pump();
      await done;
      await restart;
      expect(Buffer.from(back).equals(Buffer.from(sent))).toBe(true);
      expect(conn.resumes).toBeGreaterThanOrEqual(1);
      expect(lines.some((l) => /exit peer attached to the room/.test(l))).toBe(true);
      expect(lines.some((l) => /session resumed after \d+ ms/.test(l))).toBe(true);
    } finally {
      await pool.stop();
      await exit.close();
      await worker.dispose();
    }
  }, 120_000);

  it('while a session resumes, new streams wait for the Worker instead of failing; once resumed, no back-off is left', async () => {
    const key = new Uint8Array(randomBytes(32));
    const start = (port: number) => startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port, allowPrivateTargets: true });
    let worker: DevWorker = await start(0);
    const port = Number(new URL(worker.url).port);
    const secret = generateKey();
    const exit = await ExitPeer.start({ relay: worker.url, key, roomSecret: secret, allowLan: true });
    const room = await deriveRoomKeys(nodeCrypto, secret);
    // One stream per WebSocket: every new stream needs a new WebSocket, which fails while workerd is away. `waits`
    // has the default 10 s for a stream to find a connection, `quick` only 300 ms (its asks fail during the outage).
    const waits = new TunnelPool({ url: worker.url, key, room, maxStreamsPerConnection: 1 });
    const quickLines: string[] = [];
    const quick = new TunnelPool({ url: worker.url, key, room, maxStreamsPerConnection: 1, connectTimeoutMs: 300, log: (l) => quickLines.push(l) });
    const resumingConnection = async (pool: TunnelPool) => {
      const conn = await pool.anyConnection();
      if (conn instanceof ZksError) throw conn;
      await conn.link.mux.datagrams.peerCapabilities();
      const opened = await pool.open({ host: '127.0.0.1', port: echoPort });
      if (!opened.ok) throw new Error(opened.message);
      return conn;
    };
    try {
      const [a, b] = [await resumingConnection(waits), await resumingConnection(quick)];
      await worker.dispose();
      await until(() => a.resuming && b.resuming, 'both sessions resuming');
      const waiting = waits.open({ host: '127.0.0.1', port: echoPort });
      const failed = await quick.open({ host: '127.0.0.1', port: echoPort });
      expect(failed.ok).toBe(false); // its 300 ms ran out while nothing answered: a back-off is set now
      expect(quickLines.some((l) => /relay connection failed/.test(l))).toBe(true);
      worker = await start(port);
      const second = await waiting;
      expect(second.ok, second.ok ? '' : second.message).toBe(true);
      await until(() => !b.resuming, 'the quick pool\'s session resumed');
      // The resumed session proved relay and exit back: the failures' back-off is gone, the next dial goes at once.
      const state = quick as unknown as { nextAttemptAt: number; lastError: ZksError | null };
      expect(state.nextAttemptAt).toBe(0);
      expect(state.lastError).toBeNull();
      const third = await quick.open({ host: '127.0.0.1', port: echoPort });
      expect(third.ok, third.ok ? '' : third.message).toBe(true);
    } finally {
      await waits.stop();
      await quick.stop();
      await exit.close();
      await worker.dispose();
    }
  }, 120_000);
});
