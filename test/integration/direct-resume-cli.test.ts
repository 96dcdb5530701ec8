// Direct-mode resume with the real command line (PROTOCOL.md §11.8): `zks worker` (workerd, which keeps direct-mode
// sessions by default), `zks socks5` in direct mode, an HTTP origin and curl, all on loopback. While curl downloads
// 200 MB and then uploads 200 MB through the SOCKS5 port, the proxy's WebSockets to the Worker are killed in the
// kernel (`ss -K`: both ends see the TCP connection die, as when a network drops it): the transfers go on with the
// right sha256. A workerd restart is what a Cloudflare deploy is to the objects: the session is gone, so the resume is
// refused once the Worker answers again and curl gets an error (never a short file reported as complete); the next
// download through the same proxy is whole. curl is held back (output not read, input not fed) while the WebSockets
// are down, so the cut lands mid-transfer on any machine.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { generateKey } from '../../src/cli/args';
import { pseudoSha256 } from '../fixtures/pseudo-bytes';
import { heldDownload, heldUpload } from '../fixtures/held-transfer';
import { freePort, startCli, until, type CliProcess } from './harness';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORLD_SERVICES = join(ROOT, 'test/fixtures/world-services.ts');
const MB = 1024 * 1024;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

function track(p: CliProcess): CliProcess {
  cleanups.push(() => p.kill());
  return p;
}

/** The HTTP origin of test/fixtures/world-services.ts on 127.0.0.1:port: /bytes/N and POST /sha256. */
async function startOrigin(port: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORLD_SERVICES, JSON.stringify({ http: { host: '127.0.0.1', port } })], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d, /"ready":true/.test(out) && resolve()));
    child.once('exit', (code) => reject(new Error(`origin exited (${code}): ${out}`)));
  });
}

/** Kills, in the kernel, every TCP connection to 127.0.0.1:port (the proxy's WebSockets to the Worker); their count. */
function killConnectionsTo(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('ss', ['-K', '-t', '-n', 'dst', '127.0.0.1', 'dport', '=', `:${port}`], (err, stdout) => {
      if (err) return reject(err);
      resolve(stdout.split('\n').filter((l) => /ESTAB/.test(l)).length);
    });
  });
}

const count = (p: CliProcess, re: RegExp) => (p.output().match(re) ?? []).length;
const RESUMED = /session resumed after \d+ ms/g;

async function directStack() {
  const [workerPort, originPort] = [await freePort(), await freePort()];
  const key = generateKey();
  const startWorker = () => startCli(['worker', '--listen', `127.0.0.1:${workerPort}`, '--key', key, '--allow-private']).then(track);
  const stack = { worker: await startWorker(), workerPort, originPort, client: null as unknown as CliProcess };
  await startOrigin(originPort);
  stack.client = track(await startCli(['socks5', '--relay', `ws://127.0.0.1:${workerPort}`, '--key', key, '--listen', '127.0.0.1:0']));
  const socksPort = Number(/:(\d+) \(/.exec(stack.client.readyLine)![1]);
  onTestFailed(() => console.error(`--- zks socks5:\n${stack.client.output()}\n--- zks worker:\n${stack.worker.output()}`));
  const curl = (args: string[]): ChildProcess => {
    const c = spawn('curl', ['-sS', '--fail', '--max-time', '180', '--socks5-hostname', `127.0.0.1:${socksPort}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.push(async () => void c.kill('SIGKILL'));
    return c;
  };
  const restartWorker = async () => {
    await stack.worker.kill();
    stack.worker = await startWorker();
  };
  return { stack, curl, restartWorker };
}

describe('direct-mode resume through the command line', () => {
  it('the WebSockets killed during a 200 MB download and a 200 MB upload through zks socks5: both intact', async () => {
    const { stack, curl } = await directStack();
    const origin = (path: string) => `http://127.0.0.1:${stack.originPort}${path}`;
    /** While curl is held: the WebSockets die, and the proxy resumes its session(s) on new ones. */
    const cut = async () => {
      const before = count(stack.client, RESUMED);
      expect(await killConnectionsTo(stack.workerPort)).toBeGreaterThan(0);
      await until(() => count(stack.client, RESUMED) > before, 'the proxy to resume its session', 60_000);
    };

    const down = await heldDownload(curl([origin(`/bytes/${200 * MB}`)]), 20 * MB, cut);
    expect(down.code, down.stderr).toBe(0);
    expect(down.bytes).toBe(200 * MB);
    expect(down.sha256).toBe(pseudoSha256(200 * MB));

    const up = await heldUpload(curl(['-X', 'POST', '-T', '-', origin('/sha256')]), 200 * MB, 20 * MB, cut);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe(pseudoSha256(200 * MB));
    expect(stack.client.output()).toMatch(/WebSocket lost \(.*\); resuming the session/);
    expect(stack.client.output()).not.toMatch(/could not resume|streams were reset/);
  }, 240_000);

  it('workerd restarted (as a deploy resets the objects): the resume is refused, curl fails cleanly, the next download is whole', async () => {
    const { stack, curl, restartWorker } = await directStack();
    const origin = (path: string) => `http://127.0.0.1:${stack.originPort}${path}`;
    const down = await heldDownload(curl([origin(`/bytes/${200 * MB}`)]), 20 * MB, async () => {
      await restartWorker();
      await until(() => /could not resume the session: the relay refused to resume the session: no such session here/.test(stack.client.output()),
        'the refused resume', 60_000);
    });
    // An error (not --max-time's 28), and never a short file reported as complete.
    expect(down.code).not.toBe(0);
    expect(down.code, down.stderr).not.toBe(28);
    expect(down.bytes).toBeLessThan(200 * MB);

    const whole = await heldDownload(curl([origin(`/bytes/${64 * MB}`)]), 64 * MB, async () => {});
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.sha256).toBe(pseudoSha256(64 * MB));
  }, 240_000);
});
