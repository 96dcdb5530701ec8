// Regression "a cut stream reaches the target as a clean end, 18–224 s later" (issue 14): after a stream RST or
// the loss of the WebSocket, workerd kept the target connection ESTABLISHED until garbage collection. Neither
// workerd nor Cloudflare's connect() API can send a TCP RST (src/relay-worker/direct.ts), so what is tested is
// the best the runtime allows: the target connection ends at once. Plus the Worker's own idle timeouts, which
// end streams and WebSockets whose other side went silent. Raw client: src/client + src/link, real workerd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { generateKey, parseKey } from '../../src/cli/args';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { TunnelConnection } from '../../src/client/connection';
import { CloseCode, type MuxStream } from '../../src/protocol/index';
import type { ZksError } from '../../src/errors/zks-error';

/** How a target connection ended, as the target saw it. */
interface Ending { kind: 'fin' | 'reset' | 'error'; code?: string }

interface Target {
  port: number;
  /** Resolves with the next accepted connection's byte counter and its ending. */
  next(): Promise<{ received: () => number; ended: Promise<Ending> }>;
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  const waiting: Array<(c: { received: () => number; ended: Promise<Ending> }) => void> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    let received = 0;
    s.on('data', (c: Buffer) => (received += c.length));
    const ended = new Promise<Ending>((resolve) => {
      s.on('end', () => resolve({ kind: 'fin' }));
      s.on('error', (e: NodeJS.ErrnoException) => resolve({ kind: e.code === 'ECONNRESET' ? 'reset' : 'error', code: e.code }));
    });
    waiting.shift()?.({ received: () => received, ended });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    next: () => new Promise((r) => waiting.push(r)),
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/** `p`, or a failure after `ms`: only turns a hang (the bug) into a clear message, never a pass. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))),
  ]);
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const resultOf = (s: MuxStream) => new Promise<void>((resolve, reject) => {
  s.onResult = (code, message) => (code === 0 ? resolve() : reject(new Error(`CONNECT failed: ${message}`)));
});

let key: string;
let target: Target;
let worker: DevWorker;
let statelessWorker: DevWorker;
let streamIdleWorker: DevWorker;
let linkIdleWorker: DevWorker;

beforeAll(async () => {
  key = generateKey();
  target = await startTarget();
  worker = await startDevWorker({ key, port: 0, allowPrivateTargets: true });
  // A Worker that keeps no direct-mode sessions: one that does keeps the target connection for its grace period
  // (direct-resume.test.ts checks it ends then).
  statelessWorker = await startDevWorker({ key, port: 0, allowPrivateTargets: true, resumeGraceMs: 0 });
  streamIdleWorker = await startDevWorker({ key, port: 0, allowPrivateTargets: true, bindings: { ZKS_STREAM_IDLE_TIMEOUT_MS: '400' } });
  // Keeping no sessions: one that does detaches an idle or unread WebSocket and keeps its session for the grace
  // period (direct-resume.test.ts, "a WebSocket gone silent").
  linkIdleWorker = await startDevWorker({ key, port: 0, allowPrivateTargets: true, resumeGraceMs: 0, bindings: { ZKS_IDLE_TIMEOUT_MS: '1000' } });
});

afterAll(async () => {
  await worker?.dispose();
  await statelessWorker?.dispose();
  await streamIdleWorker?.dispose();
  await linkIdleWorker?.dispose();
  await target?.close();
});

/** Opens a stream to the target through `url` and sends 64 KiB that the target has counted; the upload is unfinished. */
async function openUpload(url: string, pingIntervalMs?: number) {
  let onLinkClose: (err: ZksError | null) => void = () => {};
  const linkClosed = new Promise<ZksError | null>((r) => (onLinkClose = r));
  const conn = await TunnelConnection.open({ url, key: parseKey(key), pingIntervalMs, onClose: (_c, err) => onLinkClose(err) });
  const accepted = target.next();
  const stream = conn.mux.openStream({ host: '127.0.0.1', port: target.port });
  await resultOf(stream);
  const t = await accepted;
  stream.write(new Uint8Array(64 * 1024));
  await until(() => t.received() === 64 * 1024, 'the target to receive the first 64 KiB');
  return { conn, stream, t, linkClosed };
}

describe('a cut stream ends the target connection at once', () => {
  it('after a stream RST from the client', async () => {
    const { conn, stream, t } = await openUpload(worker.url);
    stream.reset();
    const ending = await within(t.ended, 15_000, 'the target connection to end after RST');
    expect(['fin', 'reset']).toContain(ending.kind);
    conn.close();
  });

  it('after the loss of the WebSocket (a Worker that keeps no sessions)', async () => {
    const { conn, t } = await openUpload(statelessWorker.url);
    conn.terminate();
    const ending = await within(t.ended, 15_000, 'the target connection to end after the WebSocket was lost');
    expect(['fin', 'reset']).toContain(ending.kind);
  });
});

describe('Worker idle timeouts (ZKS_STREAM_IDLE_TIMEOUT_MS, ZKS_IDLE_TIMEOUT_MS)', () => {
  it('resets a stream silent both ways and ends its target connection', async () => {
    const { conn, stream, t } = await openUpload(streamIdleWorker.url);
    const reset = new Promise<ZksError | null>((r) => (stream.onClose = r));
    const err = await within(reset, 15_000, 'the idle stream to be reset');
    expect(err?.message).toMatch(/idle timeout/);
    expect(['fin', 'reset']).toContain((await within(t.ended, 15_000, 'the idle target connection to end')).kind);
    expect(conn.closed).toBe(false); // the WebSocket itself was not idle: the client pings
    conn.close();
  });

  it('closes a WebSocket from which nothing arrives, with 4004', async () => {
    // The client pings once at the start, then not for a minute: the Worker must not wait that long.
    const { linkClosed } = await openUpload(linkIdleWorker.url, 60_000);
    const err = await within(linkClosed, 15_000, 'the idle WebSocket to close');
    expect(err?.message).toMatch(new RegExp(`\\(${CloseCode.IDLE_TIMEOUT} idle timeout\\)`));
  });

  it('closes a WebSocket whose client keeps sending but stopped reading, with 4004 (it would hold its send budget)', async () => {
    const block = Buffer.alloc(256 * 1024, 0x33);
    const pushed = new Promise<{ ended: Promise<Ending> }>((resolveConn) => {
      const pusher = createServer((s) => {
        const ended = new Promise<Ending>((r) => {
          s.on('end', () => r({ kind: 'fin' }));
          s.on('error', (e: NodeJS.ErrnoException) => r({ kind: e.code === 'ECONNRESET' ? 'reset' : 'error', code: e.code }));
        });
        const pump = () => { while (!s.destroyed && s.write(block)); };
        s.on('drain', pump);
        pump();
        resolveConn({ ended }); // wrapped: a promise resolved with a promise would wait for it
        pusher.close();
      });
      pusher.listen(0, '127.0.0.1', async () => {
        const port = (pusher.address() as AddressInfo).port;
        const conn = await TunnelConnection.open({ url: linkIdleWorker.url, key: parseKey(key), onClose: (_c, err) => onLinkClose(err) });
        const stream = conn.mux.openStream({ host: '127.0.0.1', port });
        await resultOf(stream);
        wsSocket = conn.ws.rawSocket!;
        wsSocket.pause(); // from now on the client reads nothing...
        // ...but keeps sending (its keepalive alone would stop: it waits for the PONG it cannot read).
        uploader = setInterval(() => stream.write(new Uint8Array(1)), 100);
      });
    });
    let wsSocket: Socket | null = null;
    let uploader: NodeJS.Timeout | undefined;
    let onLinkClose: (err: ZksError | null) => void = () => {};
    const linkClosed = new Promise<ZksError | null>((r) => (onLinkClose = r));
    const { ended: targetEnded } = await pushed;
    // The Worker gives up the WebSocket, and with it the stream: the target connection ends. Then the client may
    // read again and learn why.
    expect(['fin', 'reset']).toContain((await within(targetEnded, 15_000, 'the Worker to give up the non-reading client')).kind);
    clearInterval(uploader);
    wsSocket!.resume();
    const err = await within(linkClosed, 15_000, 'the close to reach the client');
    expect(err?.message).toMatch(new RegExp(`\\(${CloseCode.IDLE_TIMEOUT} not reading\\)`));
  });
});
