// Automatic exit choice from the command line: `zks route … --via` saves rules in the user's settings, and a running
// `zks socks5 --room` (real `zks worker`, real `zks exit-peer`, curl) reaches what the Worker refuses through the
// exit peer, and follows a rule added while it runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKey } from '../../src/cli/args';
import { curlViaSocks, freePort, run, startCli, type CliProcess } from '../integration/harness';

let configDir: string;
const zks = (args: string[]) => run('env', [`ZKS_CONFIG_DIR=${configDir}`, process.execPath, 'bin/zks.js', ...args]);
const procs: CliProcess[] = [];
const servers: Server[] = [];

beforeAll(() => {
  configDir = mkdtempSync(join(tmpdir(), 'zks-via-'));
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  for (const s of servers) s.close();
  rmSync(configDir, { recursive: true, force: true });
});

describe('zks route --via', () => {
  it('adds, lists, replaces and removes rules; refuses bad ones with a clear error', async () => {
    expect((await zks(['route', 'add', 'Example.COM', '--via', 'exit'])).stdout.toString()).toMatch(/^added example\.com via exit/);
    expect((await zks(['route', 'add', '10.0.0.0/8', '--via', 'worker'])).stdout.toString()).toMatch(/added 10\.0\.0\.0\/8 via worker/);
    expect((await zks(['route', 'add', 'example.com', '--via', 'worker'])).code).toBe(0); // replaces the first
    const list = await zks(['route', 'list']);
    expect(list.stdout.toString()).toMatch(/^10\.0\.0\.0\/8 via worker\nexample\.com via worker\n/);
    const json = JSON.parse((await zks(['route', 'list', '--json'])).stdout.toString());
    expect(json.via).toEqual([{ pattern: '10.0.0.0/8', via: 'worker' }, { pattern: 'example.com', via: 'worker' }]);
    expect((await zks(['route', 'del', 'example.com'])).stdout.toString()).toMatch(/removed example\.com \(via rule\)/);
    expect((await zks(['route', 'list'])).stdout.toString()).not.toMatch(/example\.com/);
    const bad = await zks(['route', 'add', 'example.com', '--via', 'both']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--via must be worker or exit/);
    const neither = await zks(['route', 'add', 'example.com']);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toMatch(/--bypass .* or --via worker\|exit/);
    const notAPattern = await zks(['route', 'add', 'not a host', '--via', 'exit']);
    expect(notAPattern.code).toBe(1);
    expect(notAPattern.stderr).toMatch(/neither a domain .* nor an address range/);
    // An address is saved as its host prefix; del finds it however it is written.
    await zks(['route', 'add', '192.0.2.7', '--via', 'exit']);
    expect((await zks(['route', 'del', '192.0.2.7'])).stdout.toString()).toMatch(/removed 192\.0\.2\.7\/32 \(via rule\)/);
    expect((await zks(['route', 'del', '10.0.0.0/8'])).stdout.toString()).toMatch(/removed 10\.0\.0\.0\/8 \(via rule\)/);
    expect(JSON.parse((await zks(['route', 'list', '--json'])).stdout.toString()).via).toEqual([]);
  });
});

describe('zks socks5 --room: the Worker and an exit peer at once', () => {
  it('reaches what the Worker refuses through the exit peer, and follows a rule added while running', async () => {
    const origin = createServer((_req, res) => res.end('behind'));
    servers.push(origin);
    await new Promise<void>((r) => origin.listen(0, '127.0.0.77', r));
    const port = (origin.address() as AddressInfo).port;
    const key = generateKey();
    const room = generateKey();
    const [workerPort, socksPort] = [await freePort(), await freePort()];
    const relay = `ws://127.0.0.1:${workerPort}`;
    process.env.ZKS_CONFIG_DIR = configDir; // startCli inherits the environment
    try {
      procs.push(await startCli(['worker', '--key', key, '--allow-private', '--blocked-ranges', '127.0.0.77/32', '--listen', `127.0.0.1:${workerPort}`]));
      procs.push(await startCli(['exit-peer', '--relay', relay, '--key', key, '--room', room, '--allow-lan']));
      const client = await startCli(['socks5', '--relay', relay, '--key', key, '--room', room, '--listen', `127.0.0.1:${socksPort}`]);
      procs.push(client);
      expect(client.readyLine).toMatch(/SOCKS5 \+ HTTP CONNECT, the Worker and an exit peer/);
      const ok = await curlViaSocks(socksPort, `http://127.0.0.77:${port}/`);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.toString()).toBe('behind');
      expect(client.output()).toMatch(/127\.0\.0\.77: the Worker cannot reach it .* through the exit peer instead/);
      // The user pins it to the Worker: the running proxy follows at its next connection, and the refusal shows.
      await zks(['route', 'add', '127.0.0.77', '--via', 'worker']);
      const refused = await curlViaSocks(socksPort, `http://127.0.0.77:${port}/`);
      expect(refused.code).toBe(97); // curl: the SOCKS5 proxy refused the connection
      expect(client.output()).toMatch(/connect 127\.0\.0\.77:\d+ failed: not reachable from a Worker: 127\.0\.0\.77 is in 127\.0\.0\.77\/32, which this relay refuses/);
    } finally {
      delete process.env.ZKS_CONFIG_DIR;
    }
  });
});
