// Resume in direct mode (PROTOCOL.md §11.8): the real Worker in workerd keeps each direct-mode session in a ZksSession
// Durable Object, which holds the target connections through a lost client WebSocket. The client's WebSocket is cut
// (terminate: as if the network dropped it) in the middle of a transfer through a real TCP echo server, and the
// stream goes on with every byte, in order. A resume that cannot prove the session, names one that is gone, or comes
// after the Worker's grace period, is refused, and the streams end with that reason; a Worker that keeps no sessions
// (the default on Cloudflare: ZKS_DIRECT_RESUME) refuses at once and the streams reset as before.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import type { TunnelConnection } from '../../src/client/connection';
import { TunnelPool } from '../../src/client/pool';
import { dialResume } from '../../src/client/resume-dial';
import { encodeBase64Url } from '../../src/crypto/handshake';
import { ZksError } from '../../src/errors/zks-error';
import type { MuxStream } from '../../src/protocol/stream';

const MB = 1024 * 1024;
const key = new Uint8Array(randomBytes(32));
let echo: Server;
let echoPort = 0;
const workers = new Map<string, DevWorker>();
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  echo = createServer((s) => {
    s.on('error', () => {}); // a session that ends for good resets its target connections
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  for (const w of workers.values()) await w.dispose();
  await new Promise<void>((r) => echo.close(() => r()));
});

/** The Worker, once per grace setting (0: keeps no sessions), for the file. */
async function worker(resumeGraceMs = 30_000): Promise<DevWorker> {
  const name = String(resumeGraceMs);
  let w = workers.get(name);
  if (!w) {
    w = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true, resumeGraceMs });
    workers.set(name, w);
  }
  return w;
}

/** Resolves when `cond()` holds, checked on every log line (the events resume produces). */
function watcher(): { log: (line: string) => void; lines: string[]; until(cond: () => boolean): Promise<void> } {
  const lines: string[] = [];
  const waiting = new Set<() => void>();
  return {
    lines,
    log(line) {
      lines.push(line);
      for (const w of [...waiting]) w();
    },
    until(cond) {
      return new Promise((resolve) => {
        const check = () => cond() && (waiting.delete(check), resolve());
        waiting.add(check);
        check();
      });
    },
  };
}

async function directPool(w: DevWorker, opts: { clientGraceMs?: number; openTcp?: (host: string, port: number) => Promise<Socket> } = {}) {
  const log = watcher();
  const pool = new TunnelPool({ url: w.url, key, resumeGraceMs: opts.clientGraceMs ?? 30_000, log: log.log, openTcp: opts.openTcp });
  cleanups.push(() => pool.stop());
  const conn = await pool.anyConnection();
  if (conn instanceof ZksError) throw conn;
  await conn.link.mux.datagrams.peerCapabilities(); // resume is armed once the Worker said it keeps the session
  return { pool, conn, w: log };
}

/**
 * Echoes `total` bytes through `stream`; `at(sentBytes)` runs after each write (the test cuts things there). Resolves
 * with whether every byte came back in order; rejects with the stream's error.
 */
function echoThrough(stream: MuxStream, total: number, at: (sent: number) => void): Promise<boolean> {
  const sent = new Uint8Array(total).map((_, i) => (i * 31 + (i >> 11)) & 0xff);
  const back = new Uint8Array(total);
  let got = 0;
  return new Promise<boolean>((resolve, reject) => {
    stream.onData = (chunk) => {
      back.set(chunk, got);
      got += chunk.length;
      stream.consume(chunk.length);
      if (got === total) resolve(Buffer.from(back).equals(Buffer.from(sent)));
    };
    stream.onClose = (err) => (err ? reject(err) : undefined);
    let off = 0;
    const pump = () => {
      while (off < total && stream.writable) {
        const n = Math.min(64 * 1024, total - off);
        stream.write(sent.subarray(off, off + n));
        off += n;
        at(off);
      }
      if (off === total) stream.end();
    };
    stream.onDrain = pump;
    pump();
  });
}

async function openEcho(pool: TunnelPool): Promise<MuxStream> {
  const opened = await pool.open({ host: '127.0.0.1', port: echoPort });
  if (!opened.ok) throw new Error(opened.message);
  return opened.stream;
}

describe('resume in direct mode', () => {
  it("the client's WebSocket cut twice mid-transfer: the Worker kept the target connection, 40 MB echoed intact", async () => {
    const { pool, conn, w } = await directPool(await worker());
    expect(conn.sessionKept).toBe(true);
    const stream = await openEcho(pool);
    const cuts = [10 * MB, 25 * MB];
    const ok = await echoThrough(stream, 40 * MB, (sent) => {
      if (cuts.length && sent >= cuts[0]!) {
        cuts.shift();
        (conn as TunnelConnection).terminate();
      }
    });
    expect(ok).toBe(true);
    expect(conn.resumes).toBe(2);
    expect(conn.closed).toBe(false);
    expect(w.lines.filter((l) => /session resumed after \d+ ms/.test(l))).toHaveLength(2);
  });
});
