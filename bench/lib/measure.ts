// Bounded measurements over one Transport: throughput (download counted here, upload counted by the origin's
// reports so bytes still queued in buffers never count), connect latency, stream churn and idle streams.
// Every loop has a count bound and a time bound; every socket opened here is destroyed before returning.
// Rates are MB/s with MB = 10^6 bytes; times in ms from performance.now().

import type { Duplex } from 'node:stream';
import { REPORT_BYTES } from './origin';
import type { Transport } from './transports';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const median = (values: number[]) => percentile(values, 50);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms))),
  ]);
}

/** Resolves on the first byte the origin sends (after `probe`, when given, was written). */
function firstData(s: Duplex, timeoutMs: number, probe?: Buffer): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve, reject) => {
      s.once('data', () => resolve());
      s.once('close', () => reject(new Error('closed before the first byte')));
      s.resume();
      if (probe) s.write(probe);
    }),
    timeoutMs,
    'first byte',
  );
}

const PROBE = Buffer.from([0x3f]);

async function closeAll(sockets: Duplex[], timeoutMs = 3_000): Promise<void> {
  const closed = sockets.map((s) => (s.destroyed && s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r()))));
  for (const s of sockets) s.destroy();
  await Promise.race([Promise.all(closed), sleep(timeoutMs)]);
}

async function dialAll(t: Transport, port: number, n: number): Promise<Duplex[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => t.dial(port)));
  const ok = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await closeAll(ok);
    throw new Error(`${t.name}: dial failed: ${(failed.reason as Error).message}`);
  }
  return ok;
}

export interface ThroughputSample {
  mbPerSec: number;
  /** All bytes moved while the streams were open (for CPU per GB). */
  totalBytes: number;
  /** Longest time with no progress on any one stream inside the window (stall detector). */
  maxGapMs: number;
  /** Bytes each stream moved inside the window (fairness). */
  perStream: number[];
}

export async function download(t: Transport, port: number, streams: number, seconds: number, warmupMs: number): Promise<ThroughputSample> {
  const sockets = await dialAll(t, port, streams);
  let total = 0;
  let inWindow = 0;
  let counting = false;
  let maxGapMs = 0;
  const lastAt = sockets.map(() => 0);
  const perStream = sockets.map(() => 0);
  sockets.forEach((s, i) => {
    s.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (!counting) return;
      inWindow += chunk.length;
      perStream[i] += chunk.length;
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - lastAt[i]);
      lastAt[i] = now;
    });
    s.resume(); // the SOCKS5 client hands sockets over paused
  });
  await sleep(warmupMs);
  const start = performance.now();
  lastAt.fill(start);
  counting = true;
  await sleep(seconds * 1000);
  counting = false;
  const end = performance.now();
  for (const at of lastAt) maxGapMs = Math.max(maxGapMs, end - at);
  const elapsed = (end - start) / 1000;
  const dead = sockets.filter((s) => s.destroyed).length;
  await closeAll(sockets);
  if (dead > 0) throw new Error(`${t.name}: ${dead} of ${streams} download streams closed early`);
  return { mbPerSec: inWindow / 1e6 / elapsed, totalBytes: total, maxGapMs, perStream };
}

export async function upload(t: Transport, port: number, streams: number, seconds: number, warmupMs: number): Promise<ThroughputSample> {
  const sockets = await dialAll(t, port, streams);
  const block = Buffer.alloc(64 * 1024, 0x5a);
  let writing = true;
  const reports: Array<Array<{ count: number; at: number }>> = sockets.map(() => []);
  sockets.forEach((s, i) => {
    let pending: Buffer = Buffer.alloc(0); // reports are 16 bytes every 100 ms: not a data path
    s.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= REPORT_BYTES) {
        reports[i].push({ count: Number(pending.readBigUInt64BE(0)), at: pending.readDoubleBE(8) });
        pending = pending.subarray(REPORT_BYTES);
      }
    });
    // At most 16 blocks per turn, so a sink whose write() keeps saying true cannot starve the event loop.
    const pump = () => {
      for (let n = 0; writing && !s.destroyed; n++) {
        if (n === 16) return void setImmediate(pump);
        if (!s.write(block)) return;
      }
    };
    s.on('drain', () => setImmediate(pump)); // never from inside the write callback chain
    s.resume();
    pump();
  });
  await sleep(warmupMs);
  const startIdx = reports.map((r) => r.length);
  await sleep(seconds * 1000);
  writing = false;
  let mbPerSec = 0;
  let maxGapMs = 0;
  const perStream = sockets.map(() => 0);
  reports.forEach((r, i) => {
    const w = r.slice(Math.max(0, startIdx[i] - 1));
    if (w.length < 2) return;
    const first = w[0];
    const last = w[w.length - 1];
    perStream[i] = last.count - first.count;
    mbPerSec += (last.count - first.count) / 1e6 / ((last.at - first.at) / 1000);
    let since = first;
    for (const rep of w) {
      if (rep.count !== since.count) since = rep;
      else maxGapMs = Math.max(maxGapMs, rep.at - since.at);
    }
  });
  const totalBytes = reports.reduce((sum, r) => sum + (r[r.length - 1]?.count ?? 0), 0);
  const dead = sockets.filter((s) => s.destroyed).length;
  await closeAll(sockets);
  if (dead > 0) throw new Error(`${t.name}: ${dead} of ${streams} upload streams closed early`);
  return { mbPerSec, totalBytes, maxGapMs, perStream };
}

export interface LatencyResult {
  /** ms from starting the dial until dial() resolved (TCP connected / WebSocket open / SOCKS5 reply). */
  usable: number[];
  /** ms from starting the dial until a byte written right after `usable` came back from the echo origin. */
  echo: number[];
  errors: string[];
}

/** Sequential: dial the echo origin, write one byte, wait for it to come back, destroy. */
export async function connectLatency(t: Transport, echoPort: number, count: number, budgetMs: number): Promise<LatencyResult> {
  const out: LatencyResult = { usable: [], echo: [], errors: [] };
  const deadline = performance.now() + budgetMs;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    let s: Duplex | null = null;
    try {
      s = await t.dial(echoPort, 5_000);
      const t1 = performance.now();
      await firstData(s, 5_000, PROBE);
      const t2 = performance.now();
      out.usable.push(t1 - t0);
      out.echo.push(t2 - t0);
    } catch (err) {
      out.errors.push((err as Error).message);
    }
    s?.destroy();
  }
  return out;
}

export interface ChurnResult {
  completed: number;
  perSec: number;
  errors: string[];
}

/**
 * `total` streams, `concurrency` at a time, each: dial → first byte from the origin → destroy. With `probe`
 * the client writes a byte first (echo origin); without, the origin must speak first (greet origin).
 */
export async function churn(
  t: Transport,
  port: number,
  total: number,
  concurrency: number,
  budgetMs: number,
  opts: { probe: boolean; firstByteTimeoutMs?: number } = { probe: true },
): Promise<ChurnResult> {
  const errors: string[] = [];
  let next = 0;
  let completed = 0;
  const start = performance.now();
  const deadline = start + budgetMs;
  const worker = async () => {
    while (next < total && performance.now() < deadline) {
      next++;
      let s: Duplex | null = null;
      try {
        s = await t.dial(port, 5_000);
        await firstData(s, opts.firstByteTimeoutMs ?? 5_000, opts.probe ? PROBE : undefined);
        completed++;
      } catch (err) {
        errors.push((err as Error).message);
      }
      s?.destroy();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { completed, perSec: completed / ((performance.now() - start) / 1000), errors };
}

/** Opens `count` streams to the echo origin (each proven by one echoed byte) and keeps them open. */
export async function openIdle(
  t: Transport,
  echoPort: number,
  count: number,
  concurrency: number,
  budgetMs: number,
): Promise<{ sockets: Duplex[]; errors: string[]; release: () => Promise<void> }> {
  const sockets: Duplex[] = [];
  const errors: string[] = [];
  let next = 0;
  const deadline = performance.now() + budgetMs;
  const worker = async () => {
    while (next < count && performance.now() < deadline) {
      next++;
      try {
        const s = await t.dial(echoPort, 10_000);
        sockets.push(s);
        await firstData(s, 10_000, PROBE);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sockets, errors, release: () => closeAll(sockets) };
}
