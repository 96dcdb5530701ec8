// Shared set-up for integration tests: the real local stack (Worker in workerd + SOCKS5 client), a loopback
// origin with deterministic content, a minimal SOCKS5 client for raw-socket tests, and curl runners.
// Everything binds 127.0.0.1 on port 0 and is closed by the returned close() functions.

import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { startLocalStack, type LocalStack } from '../../src/cli/start';

export async function startStack(opts: { maxStreams?: number; mode?: 'direct' | 'relay' } = {}): Promise<LocalStack & { logs: string[] }> {
  const logs: string[] = [];
  const stack = await startLocalStack({
    mode: opts.mode,
    workerPort: 0,
    socksPort: 0,
    demo: false,
    hostsOnly: true,
    maxStreams: opts.maxStreams,
    log: (l) => logs.push(l),
  });
  return Object.assign(stack, { logs });
}

export interface Origin {
  port: number;
  /** The bytes served at /big. */
  big: Buffer;
  bigSha: string;
  /** sha256 of every POST body received, in order. */
  uploads: string[];
  close(): Promise<void>;
}

/** HTTP origin: GET /big (random payload), GET /id/N (distinct payload per N), POST / (hashes the body). */
export async function startOrigin(bigSize = 100 * 1024 * 1024): Promise<Origin> {
  const big = randomBytes(bigSize);
  const uploads: string[] = [];
  const server: HttpServer = createHttpServer((req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256');
      req.on('data', (c: Buffer) => h.update(c));
      req.on('end', () => {
        const d = h.digest('hex');
        uploads.push(d);
        res.end(d);
      });
      return;
    }
    const m = /^\/id\/(\d+)$/.exec(req.url ?? '');
    if (m) {
      res.end(idPayload(Number(m[1])));
      return;
    }
    res.setHeader('content-length', big.length);
    res.end(big);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    big,
    bigSha: sha256(big),
    uploads,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A distinct payload per id (1 KB .. 800 KB), so crossed streams would show up as a wrong hash. */
export function idPayload(id: number): Buffer {
  const unit = createHash('sha512').update(`payload-${id}`).digest('hex');
  return Buffer.from(unit.repeat(8 + (id % 7) * 800) + `#${id}`);
}

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export interface RunResult { code: number; stdout: Buffer; stderr: string; ms: number }

/** Runs a command without a shell; bounded by `timeoutMs`. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: Buffer; onStdout?: (chunk: Buffer) => void } = {}): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out.push(c), opts.onStdout?.(c)));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err, ms: Date.now() - t0 });
    });
    child.stdin.on('error', () => {});
    if (opts.input) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

export function curlViaSocks(socksPort: number, url: string, extra: string[] = [], opts: { timeoutMs?: number; input?: Buffer } = {}) {
  return run('curl', ['-sS', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${socksPort}`, ...extra, url], opts);
}

/** Raw SOCKS5 CONNECT (no auth); resolves with the socket after a success reply, or the reply code. */
export function socksConnect(socksPort: number, host: string, port: number): Promise<{ socket: Socket; rep: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: socksPort, allowHalfOpen: true });
    let stage = 0;
    let buf = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.from([5, 1, 0])));
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        stage = 1;
        const name = Buffer.from(host);
        socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]));
      }
      if (stage === 1 && buf.length >= 10) {
        socket.off('data', onData);
        socket.pause();
        const rest = buf.subarray(10);
        if (rest.length) socket.unshift(rest);
        resolve({ socket, rep: buf[1] });
      }
    };
    socket.on('data', onData);
  });
}

export { freePort } from '../net-helpers';

/** Polls cheap state (counters) until `cond` holds; the deadline only turns a hang into a clear failure. */
export async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Bytes received so far over the relay WebSockets of a SOCKS client's pool. */
export const tunnelBytesIn = (pool: { connections: Array<{ link: { bytesIn: number } }> }): number =>
  pool.connections.reduce((n, c) => n + c.link.bytesIn, 0);

/** Retries a SOCKS5 CONNECT every 250 ms until it succeeds (at most `attempts` times); returns the last reply. */
export async function retryConnect(socksPort: number, host: string, port: number, attempts = 40): Promise<number> {
  let rep = -1;
  for (let i = 0; i < attempts && rep !== 0; i++) {
    const again = await socksConnect(socksPort, host, port);
    again.socket.destroy();
    rep = again.rep;
    if (rep !== 0) await new Promise((r) => setTimeout(r, 250));
  }
  return rep;
}

/** RSS in bytes of a process, from /proc. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** PIDs of workerd processes that are children of this process (the Miniflare runtime). */
export function childWorkerdPids(parent = process.pid): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('workerd')) out.push(Number(d));
    } catch {
      // process vanished
    }
  }
  return out;
}

/** A TCP service that reads until the client half-closes, then answers with sha256(received) and closes. */
export async function startHashAfterEofServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    s.on('data', (c) => h.update(c));
    s.on('end', () => s.end(`sha256:${h.digest('hex')}\n`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

export interface CliProcess {
  pid: number;
  /** The line that contained "ready". */
  readyLine: string;
  output: () => string;
  kill(): Promise<void>;
  /** `signal` to the zks process alone (as a service manager or Ctrl-C would); resolves with how it exited. */
  signalAndWait(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `zks ARGS` in its own process group and waits for its "ready" line. */
export function startCli(args: string[], timeoutMs = 30_000): Promise<CliProcess> {
  const child = spawn(process.execPath, ['bin/zks.js', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await exited;
    clearTimeout(t);
  };
  const signalAndWait = (signal: NodeJS.Signals) => new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
    child.kill(signal);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { void kill(); reject(new Error(`zks ${args[0]} not ready in time:\n${out}`)); }, timeoutMs);
    const onData = (c: Buffer) => {
      out += c.toString();
      // The line itself, not any line with 'ready' in it ("already in use" has it too).
      const line = out.split('\n').find((l) => /^zks (?:[\w-]+ )?ready\b/.test(l));
      if (line) {
        clearTimeout(timer);
        resolve({ pid: child.pid!, readyLine: line, output: () => out, kill, signalAndWait });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`zks ${args[0]} exited (${code}):\n${out}`)); });
  });
}

export interface Capture {
  port: number;
  /** Bytes the upstream (the relay) sent towards the connecting peer, concatenated over all connections. */
  fromUpstream(): Buffer;
  close(): Promise<void>;
}

/**
 * A loopback TCP relay in front of `upstreamPort` that records what the upstream sends. WebSocket frames from a
 * server are unmasked (RFC 6455), so this is exactly what the relay forwarded, as a network tap would see it.
 */
export async function startCapture(upstreamPort: number): Promise<Capture> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(down).add(up);
    up.on('data', (c: Buffer) => chunks.push(c));
    down.pipe(up);
    up.pipe(down);
    const end = () => { down.destroy(); up.destroy(); };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    fromUpstream: () => Buffer.concat(chunks),
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
