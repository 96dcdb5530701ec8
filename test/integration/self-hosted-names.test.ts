// Regression (issue 14): `zks worker` without --allow-private refused loopback only as a literal; a host name
// that this machine resolves to 127.0.0.1 (`vm`, `runsc` in some /etc/hosts) reached loopback, because workerd
// resolved it itself after the Worker's check. The real `zks worker` runs here in its own mount namespace with a
// hosts file of the test's making, so the name resolves the same way for workerd and for our resolver.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { TunnelConnection } from '../../src/client/connection';
import { generateKey, parseKey } from '../../src/cli/args';
import { ConnectResult } from '../../src/protocol/constants';

const runnable = process.getuid?.() === 0 || !!process.env.CI; // a mount namespace needs root
const ALIAS = 'loopback-alias.zks-test';

let dir: string;
let target: Server;
let targetPort: number;
let accepted = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zks-hosts-'));
  writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost ${ALIAS}\n::1 localhost\n`);
  target = createServer((s) => {
    accepted++;
    s.end('pong');
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => target?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** `zks worker ARGS` with `hosts` mounted over /etc/hosts (its own mount namespace); resolves with its URL. */
function startWorker(args: string[]): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const script = `mount --bind "$1" /etc/hosts && shift && exec "$@"`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', join(dir, 'hosts'),
    process.execPath, 'bin/zks.js', 'worker', '--listen', '127.0.0.1:0', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  };
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /zks worker ready on (ws:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], child, stop });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`zks worker exited (${code}):\n${out}`)));
  });
}

async function connectResult(url: string, key: string, host: string): Promise<number> {
  const conn = await TunnelConnection.open({ url, key: parseKey(key) });
  try {
    const stream = conn.mux.openStream({ host, port: targetPort });
    return await new Promise<number>((r) => (stream.onResult = (code) => r(code)));
  } finally {
    conn.close();
  }
}

describe.skipIf(!runnable)('regression: zks worker reached loopback through a host name', () => {
  it(`${ALIAS} (127.0.0.1 in the hosts file) is FORBIDDEN without --allow-private, reachable with it`, async () => {
    const key = generateKey();
    const worker = await startWorker(['--key', key]);
    try {
      expect(await connectResult(worker.url, key, ALIAS)).toBe(ConnectResult.FORBIDDEN);
      expect(await connectResult(worker.url, key, `${ALIAS}.`)).toBe(ConnectResult.FORBIDDEN);
      expect(await connectResult(worker.url, key, 'localhost.')).toBe(ConnectResult.FORBIDDEN);
      expect(accepted).toBe(0);
    } finally {
      await worker.stop();
    }
    // The same name works where private targets are allowed: the hosts file is what the Worker sees.
    const open = await startWorker(['--key', key, '--allow-private']);
    try {
      expect(await connectResult(open.url, key, ALIAS)).toBe(ConnectResult.OK);
      expect(accepted).toBe(1);
    } finally {
      await open.stop();
    }
  }, 60_000);
});
