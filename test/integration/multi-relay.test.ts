// Several relays with real parts: two Workers in two workerd processes (as two deployments or two hostnames would
// be), an exit peer attached to the room on both, SOCKS5 clients given both, curl and an HTTP origin. The relay
// that carries a download is stopped mid-transfer: in relay mode the session resumes on the other relay and curl
// gets every byte; in direct mode new connections go to the other relay at once. The stopped relay is health-
// checked and taken back when it returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { startSocksClient, type SocksClient } from '../../src/proxy/socks-client';
import { ExitPeer } from '../../src/exit';
import { deriveRoomKeys } from '../../src/crypto/room';
import { nodeCrypto } from '../../src/crypto/node';
import { generateKey, parseKey } from '../../src/cli/args';
import type { TunnelPool } from '../../src/client/pool';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client';
import type { ProxyStatus } from '../../src/control/protocol';
import { formatStatus } from '../../src/cli/status-view';
import { heldDownload } from '../fixtures/held-transfer';
import { curlViaSocks, idPayload, sha256, startOrigin, until, type Origin } from './harness';

const key = generateKey();
const workers: Array<DevWorker | null> = [null, null];
let origin: Origin;
const ports: number[] = [];
const startWorker = (port: number) => startDevWorker({ key, port, allowPrivateTargets: true });

beforeAll(async () => {
  origin = await startOrigin(96 * 1024 * 1024);
  for (let i = 0; i < 2; i++) {
    workers[i] = await startWorker(0);
    ports.push(Number(new URL(workers[i]!.url).port));
  }
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w?.dispose()));
  await origin?.close();
});

const urls = () => ports.map((p) => `ws://127.0.0.1:${p}`);

/** Stops the relay whose WebSocket carries the most bytes in (the download's); returns its index. */
async function stopBusiestRelay(pool: TunnelPool): Promise<number> {
  const busiest = [...pool.connections].sort((a, b) => b.link.bytesIn - a.link.bytesIn)[0]!;
  const i = urls().indexOf(busiest.relayUrl);
  expect(i).toBeGreaterThanOrEqual(0);
  await workers[i]!.dispose();
  workers[i] = null;
  return i;
}

async function restartRelay(i: number): Promise<void> {
  workers[i] = await startWorker(ports[i]!);
}

async function streamsOnBothRelays(client: SocksClient): Promise<void> {
  // 12 concurrent requests at 6 streams per WebSocket: at least two WebSockets, taken from the relays in turn.
  const ids = Array.from({ length: 12 }, (_, i) => i + 1);
  const results = await Promise.all(ids.map((id) => curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/${id}`)));
  results.forEach((r, i) => expect(sha256(r.stdout), r.stderr).toBe(sha256(idPayload(ids[i]!))));
  expect(new Set(client.pool.connections.map((c) => c.relayUrl))).toEqual(new Set(urls()));
}

describe('two relays', () => {
  it('relay mode: the relay carrying a 96 MB download stops; the session resumes on the other, curl gets every byte', async () => {
    const logs: string[] = [];
    const exitLogs: string[] = [];
    const secret = generateKey();
    const exit = await ExitPeer.start({ relay: urls()[0]!, moreRelays: [urls()[1]!], key: parseKey(key), roomSecret: secret, allowLan: true, log: (l) => exitLogs.push(l) });
    const client = await startSocksClient({
      relay: urls()[0]!, moreRelays: [urls()[1]!], key: parseKey(key), room: await deriveRoomKeys(nodeCrypto, secret),
      listenPort: 0, log: (l) => logs.push(l),
    });
    try {
      await until(() => exit.attachedRelays.length === 2, 'the exit attached on both relays');
      await streamsOnBothRelays(client);
      let stopped = -1;
      const curl = spawn('curl', ['-sS', '--max-time', '120', '--socks5-hostname', `127.0.0.1:${client.port}`, `http://127.0.0.1:${origin.port}/big`]);
      // curl is not read while the relay stops, so the stop lands mid-transfer on any machine.
      const result = await heldDownload(curl, 8 * 1024 * 1024, async () => {
        stopped = await stopBusiestRelay(client.pool);
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.bytes).toBe(origin.big.length);
      expect(result.sha256).toBe(origin.bigSha);
      const other = urls()[1 - stopped]!;
      expect(logs.join('\n')).toContain(`relay ${urls()[stopped]} left:`);
      expect(logs.join('\n')).toMatch(new RegExp(`session resumed on ${other.replace(/[.:/]/g, '\\$&')} after \\d+ ms`));
      // New connections work meanwhile, and the stopped relay comes back into use once its health check answers.
      const more = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/7`);
      expect(sha256(more.stdout), more.stderr).toBe(sha256(idPayload(7)));
      await restartRelay(stopped);
      await until(() => logs.some((l) => l.includes(`relay ${urls()[stopped]} is back`)), 'the health check taking the relay back', 60_000);
      await until(() => exit.attachedRelays.length === 2, 'the exit attached on both relays again', 60_000);
    } finally {
      await client.close();
      await exit.close();
    }
  });

  it('direct mode: with one relay stopped, new connections go to the other at once', async () => {
    const logs: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'zks-relays-'));
    const client = await startSocksClient({
      relay: urls()[0]!, moreRelays: [urls()[1]!], key: parseKey(key), listenPort: 0, log: (l) => logs.push(l), control: join(dir, 'c.sock'),
    });
    try {
      await streamsOnBothRelays(client);
      const stopped = await stopBusiestRelay(client.pool);
      await until(() => logs.some((l) => l.includes(`relay ${urls()[stopped]} left:`)), 'the lost relay left');
      // zks status (the control socket) says which relay is left and why, and where each link goes.
      const control = await ControlClient.connect(join(dir, 'c.sock'));
      const status = await control.status();
      control.close();
      expect(status.mode).toBe('socks5');
      const relays = (status as ProxyStatus).relays!;
      expect(relays.map((r) => r.up)).toEqual(stopped === 0 ? [false, true] : [true, false]);
      expect(relays[stopped]!.error).toMatch(/./);
      expect(formatStatus(status)).toMatch(new RegExp(`relay +${urls()[0]} (up|left \\(.+\\)), ${urls()[1]} (up|left)`));
      // Links still resuming on the stopped relay may be listed (their sessions live there); every other is on the other.
      expect(status.connections.filter((c) => !c.resuming).every((c) => c.relay === urls()[1 - stopped])).toBe(true);
      for (let id = 20; id < 32; id++) {
        const r = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/${id}`);
        expect(sha256(r.stdout), r.stderr).toBe(sha256(idPayload(id)));
      }
      expect(new Set(client.pool.connections.filter((c) => !c.resuming).map((c) => c.relayUrl))).toEqual(new Set([urls()[1 - stopped]]));
      await restartRelay(stopped);
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two names of one deployment: the exit peer attaches once, through one of them, and serves clients of both', async () => {
    const exitLogs: string[] = [];
    const secret = generateKey();
    const byName = `ws://localhost:${ports[1]}`;
    const exit = await ExitPeer.start({ relay: urls()[1]!, moreRelays: [byName], key: parseKey(key), roomSecret: secret, allowLan: true, log: (l) => exitLogs.push(l) });
    const client = await startSocksClient({ relay: byName, moreRelays: [urls()[1]!], key: parseKey(key), room: await deriveRoomKeys(nodeCrypto, secret), listenPort: 0 });
    try {
      await until(() => exitLogs.some((l) => l.includes('leads to the same room as')), 'the exit noticing one room');
      expect(exit.attachedRelays).toHaveLength(1);
      for (let id = 40; id < 46; id++) {
        const r = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/${id}`);
        expect(sha256(r.stdout), r.stderr).toBe(sha256(idPayload(id)));
      }
      // Settled: no attachment keeps taking the room from the other.
      expect(exitLogs.filter((l) => l.includes('was taken over')).length).toBeLessThanOrEqual(2);
      expect(exit.attachedRelays).toHaveLength(1);
    } finally {
      await client.close();
      await exit.close();
    }
  });

  it('a relay that is down at start does not stop the client: it starts on the other', async () => {
    await workers[0]!.dispose();
    workers[0] = null;
    const logs: string[] = [];
    const client = await startSocksClient({ relay: urls()[0]!, moreRelays: [urls()[1]!], key: parseKey(key), listenPort: 0, log: (l) => logs.push(l) });
    try {
      const r = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/3`);
      expect(sha256(r.stdout), r.stderr).toBe(sha256(idPayload(3)));
      expect(logs.join('\n')).toContain(`relay ${urls()[0]} left:`);
    } finally {
      await client.close();
      await restartRelay(0);
    }
  });
});
