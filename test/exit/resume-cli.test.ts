// Resume with the real command line (PROTOCOL.md §11.7): `zks worker` (workerd), `zks exit-peer`, `zks p2p-client`,
// an HTTP origin and curl, all on loopback. While curl downloads 200 MB and then uploads 200 MB through the SOCKS5
// port, workerd is stopped and started again on the same port — every WebSocket and the room itself are gone. The
// test holds curl back (stops reading its output / feeding its input) while the Worker is down, so the restart lands
// mid-transfer whatever the machine's speed; both transfers complete with the right sha256.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/cli/args';
import { pseudoSha256 } from '../fixtures/pseudo-bytes';
import { heldDownload, heldUpload } from '../fixtures/held-transfer';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ZKS = join(ROOT, 'bin/zks.js');
const WORLD_SERVICES = join(ROOT, 'test/fixtures/world-services.ts');
const MB = 1024 * 1024;

interface Proc {
  child: ChildProcess;
  out: string;
  /** Resolves once stdout+stderr so far match `re`; rejects if the process exits first. */
  until(re: RegExp): Promise<void>;
  stop(): Promise<void>;
}

const procs = new Set<Proc>();
afterEach(async () => {
  await Promise.all([...procs].map((p) => p.stop()));
  procs.clear();
});

function start(name: string, argv: string[]): Proc {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiters = new Set<() => void>();
  let exited = false;
  const p: Proc = {
    child,
    out: '',
    until: (re) => new Promise((resolve, reject) => {
      const check = () => {
        if (re.test(p.out)) return waiters.delete(check), resolve();
        if (exited) return waiters.delete(check), reject(new Error(`${name} exited before printing ${re}: ${p.out}`));
      };
      waiters.add(check);
      check();
    }),
    stop: () => new Promise((resolve) => {
      if (exited) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
  const add = (d: Buffer) => {
    p.out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  child.on('exit', () => {
    exited = true;
    for (const w of [...waiters]) w();
  });
  procs.add(p);
  return p;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('resume through the command line', () => {
  it('workerd restarted during a 200 MB download and a 200 MB upload through zks p2p-client: both intact', async () => {
    const [workerPort, originPort, socksPort] = [await freePort(), await freePort(), await freePort()];
    const key = generateKey();
    const room = generateKey();
    const relay = `ws://127.0.0.1:${workerPort}`;
    const startWorker = async () => {
      const w = start('zks worker', [process.execPath, ZKS, 'worker', '--listen', `127.0.0.1:${workerPort}`, '--key', key]);
      await w.until(/zks worker ready on/);
      return w;
    };
    let worker = await startWorker();
    const origin = start('origin', [process.execPath, '--import', 'tsx', WORLD_SERVICES, JSON.stringify({ http: { host: '127.0.0.1', port: originPort } })]);
    await origin.until(/"ready":true/);
    const exit = start('zks exit-peer', [process.execPath, ZKS, 'exit-peer', '--relay', relay, '--key', key, '--room', room, '--allow-lan', '--no-direct']);
    await exit.until(/zks exit-peer ready/);
    const client = start('zks p2p-client', [process.execPath, ZKS, 'p2p-client', '--relay', relay, '--key', key, '--room', room, '--listen', `127.0.0.1:${socksPort}`, '--no-direct']);
    await client.until(/zks p2p-client ready/);
    const restartWorker = async () => {
      await worker.stop();
      procs.delete(worker);
      worker = await startWorker();
    };
    const curl = (args: string[]) => spawn('curl', ['-sS', '--fail', '--socks5-hostname', `127.0.0.1:${socksPort}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });

    // Download: after 20 MB, curl's output is not read while workerd restarts (the transfer stalls mid-way).
    const down = await heldDownload(curl([`http://127.0.0.1:${originPort}/bytes/${200 * MB}`]), 20 * MB, restartWorker);
    expect(down.code, down.stderr).toBe(0);
    expect(down.bytes).toBe(200 * MB);
    expect(down.sha256).toBe(pseudoSha256(200 * MB));
    await client.until(/session resumed after \d+ ms/);

    // Upload: after 20 MB written, curl gets nothing more while workerd restarts.
    const resumedBefore = (client.out.match(/session resumed after/g) ?? []).length;
    const up = await heldUpload(curl(['-X', 'POST', '-T', '-', `http://127.0.0.1:${originPort}/sha256`]), 200 * MB, 20 * MB, restartWorker);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe(pseudoSha256(200 * MB));
    expect((client.out.match(/session resumed after/g) ?? []).length).toBeGreaterThan(resumedBefore);
    expect(exit.out).toMatch(/lost its WebSocket .*kept 60 s/);
  }, 240_000);
});
