// Direct mode through a Worker that keeps no sessions (`--resume-grace 0`, ZKS_DIRECT_RESUME off: the default on
// Cloudflare) is not resumed: the stateless Worker holds the target connections, and they go with its WebSocket
// (docs/design/resume.md §6). What must hold instead is a clean reset. With the real command line — `zks worker`
// (workerd) and `zks socks5` — the Worker process is stopped while curl downloads through the proxy and while an
// idle application connection sits open: both applications get a TCP reset at once (curl exits nonzero, never with
// a truncated file reported as complete; nothing hangs), the client says its streams were reset and does not try to
// resume, and once the Worker is back a new connection through the same proxy carries a whole download.
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { generateKey } from '../../src/cli/args';
import { heldDownload } from '../fixtures/held-transfer';
import { curlViaSocks, freePort, retryConnect, sha256, socksConnect, startCli, startOrigin, until, type CliProcess, type Origin } from './harness';

const MB = 1024 * 1024;
/** A failure deadline only: the reset reaches the application within milliseconds. */
const PROMPT_MS = 10_000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

function track(p: CliProcess): CliProcess {
  cleanups.push(() => p.kill());
  return p;
}

/** A target that accepts and stays silent, like an idle ssh or database connection. */
async function startSilentTarget(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/** Resolves with how an application's socket ended: 'error' with its code, or 'end' (a FIN). */
function ending(socket: Socket): Promise<{ kind: 'error' | 'end'; code?: string; at: number }> {
  return new Promise((resolve) => {
    socket.on('error', (e: NodeJS.ErrnoException) => resolve({ kind: 'error', code: e.code, at: Date.now() }));
    socket.on('end', () => resolve({ kind: 'end', at: Date.now() }));
    socket.resume();
  });
}

describe('direct mode: a lost Worker resets streams cleanly', () => {
  it('workerd stopped mid-download and under an idle connection: both reset at once, no resume; a new download through the same proxy is whole', async () => {
    const key = generateKey();
    const workerPort = await freePort();
    const startWorker = () => startCli(['worker', '--listen', `127.0.0.1:${workerPort}`, '--key', key, '--allow-private', '--resume-grace', '0']).then(track);
    let worker = await startWorker();
    const client = track(await startCli(['socks5', '--relay', `ws://127.0.0.1:${workerPort}`, '--key', key, '--listen', '127.0.0.1:0']));
    const socksPort = Number(/:(\d+) \(/.exec(client.readyLine)![1]);
    onTestFailed(() => console.error(`--- zks socks5:\n${client.output()}\n--- zks worker:\n${worker.output()}`));
    const origin: Origin = await startOrigin(64 * MB);
    cleanups.push(() => origin.close());
    const silent = await startSilentTarget();
    cleanups.push(() => silent.close());

    // An idle application connection, open before the Worker goes away.
    const idle = await socksConnect(socksPort, '127.0.0.1', silent.port);
    expect(idle.rep).toBe(0);
    cleanups.push(async () => void idle.socket.destroy());
    const idleEnded = ending(idle.socket);

    // curl is held after 8 MB (its output not read) while the Worker stops, so the cut lands mid-transfer.
    const curl = spawn('curl', ['-sS', '--max-time', '120', '--socks5-hostname', `127.0.0.1:${socksPort}`, `http://127.0.0.1:${origin.port}/big`], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(async () => void curl.kill('SIGKILL'));
    let stoppedAt = 0;
    const down = await heldDownload(curl, 8 * MB, async () => {
      await worker.kill();
      stoppedAt = Date.now();
      await until(() => /relay connection #\d+ lost: /.test(client.output()), 'the client to notice the lost WebSocket', PROMPT_MS);
    });
    const curlDoneAt = Date.now();

    // curl: an error, not a hang (--max-time would be exit 28) and not a short file with exit 0.
    expect(down.code).not.toBe(0);
    expect(down.code, down.stderr).not.toBe(28);
    expect(down.stderr).toMatch(/reset by peer|Recv failure|transfer closed|Connection closed|partial file/i);
    expect(down.bytes).toBeLessThan(origin.big.length);
    expect(curlDoneAt - stoppedAt).toBeLessThan(PROMPT_MS);

    // The idle connection: reset as well, without any data having to flow to find out.
    const idleEnd = await idleEnded;
    expect(idleEnd).toMatchObject({ kind: 'error', code: 'ECONNRESET' });
    expect(idleEnd.at - stoppedAt).toBeLessThan(PROMPT_MS);

    // The client's log says the streams were reset; direct mode never tries to resume.
    expect(client.output()).toMatch(/relay connection #\d+ lost: .*\(its open streams were reset; \d+ streams carried; this relay keeps no direct-mode sessions \(ZKS_DIRECT_RESUME\), so they cannot be resumed: README "Resume"\)/);
    expect(client.output()).not.toMatch(/resuming the session|session resumed/);

    // The Worker back on the same port: the same proxy carries a new, whole download.
    worker = await startWorker();
    expect(await retryConnect(socksPort, '127.0.0.1', origin.port)).toBe(0);
    const whole = await curlViaSocks(socksPort, `http://127.0.0.1:${origin.port}/big`, ['--fail']);
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.stdout.length).toBe(origin.big.length);
    expect(sha256(whole.stdout)).toBe(origin.bigSha);
    expect(client.output()).toMatch(/relay connection #\d+ up again/);
  }, 120_000);
});
