// Regression "workerd memory blow-up under a client that grants credit but never reads" (issue 14): a client may
// announce 64 MiB windows, and workerd's ws.send() has no backpressure, so 4 such streams once grew workerd by
// ~290 MB. Here a raw client (src/client + src/link, no SOCKS front) opens 4 streams with 64 MiB windows to
// origins that push without end, then stops reading its WebSocket. The Worker must stop reading the targets
// after a few MiB: measured as bytes taken off the origin connections (from /proc/net/tcp) and workerd's RSS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { generateKey, parseKey } from '../../src/cli/args';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { TunnelConnection } from '../../src/client/connection';
import { MAX_STREAM_WINDOW } from '../../src/protocol/constants';
import type { MuxStream } from '../../src/protocol/stream';
import { childWorkerdPids, rssOf, until } from './harness';

const STREAMS = 4;
/** The Worker's cap (src/relay-worker/env.ts; not imported: the Node typecheck must not pull in Worker types). */
const LINK_UNACKED_BYTES = 8 * 1024 * 1024;
const MiB = 1024 * 1024;
let worker: DevWorker;
let key: string;
let origin: Server;
let originPort = 0;
const originSockets: Socket[] = [];
let pushing = false;
const block = Buffer.alloc(256 * 1024, 0x5a);

/** Resolves once the Worker connected `s` to its target; rejects with the Worker's reason otherwise. */
const resultOf = (s: MuxStream) => new Promise<void>((resolve, reject) => {
  s.onResult = (code, message) => (code === 0 ? resolve() : reject(new Error(`CONNECT failed: ${message}`)));
});

function pump(s: Socket): void {
  while (pushing && !s.destroyed && s.write(block));
}

beforeAll(async () => {
  origin = createServer((s) => {
    s.on('error', () => {});
    s.on('drain', () => pump(s));
    originSockets.push(s);
    pump(s);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originPort = (origin.address() as AddressInfo).port;
  key = generateKey();
  worker = await startDevWorker({ key, port: 0, allowPrivateTargets: true });
});

afterAll(async () => {
  pushing = false;
  for (const s of originSockets) s.destroy();
  await new Promise<void>((r) => (origin ? origin.close(() => r()) : r()));
  await worker?.dispose();
});

/** Send queues (origin side) and receive queues (Worker side) of the loopback connections to the origin. */
function kernelQueues(port: number): { tx: number; rx: number } {
  let tx = 0;
  let rx = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[3] !== '01') continue; // ESTABLISHED only
    const localPort = parseInt(f[1].split(':')[1], 16);
    const remotePort = parseInt(f[2].split(':')[1], 16);
    const [t, r] = f[4].split(':').map((h) => parseInt(h, 16));
    if (localPort === port) tx += t;
    if (remotePort === port) rx += r;
  }
  return { tx, rx };
}

/** Bytes the Worker has read from the origin connections: accepted by the kernel, minus what still sits in it. */
function workerRead(): number {
  const pushed = originSockets.reduce((n, s) => n + s.bytesWritten - s.writableLength, 0);
  const q = kernelQueues(originPort);
  return pushed - q.tx - q.rx;
}

/**
 * Resolves once the Worker has stopped reading: the origins wait for 'drain' and the byte count taken off them
 * did not move over three looks 200 ms apart (a Worker that is still reading moves it by MiBs in that time).
 * The deadline only turns a hang into a failure.
 */
async function workerStalled(): Promise<void> {
  const deadline = Date.now() + 45_000; // below the test's own timeout, so the failure says what happened
  const looks: number[] = [];
  for (;;) {
    looks.push(workerRead());
    const same = looks.length >= 3 && looks.slice(-3).every((n) => n === looks[looks.length - 1]);
    if (same && originSockets.every((s) => s.writableLength > 0)) return;
    if (Date.now() > deadline) {
      const waiting = originSockets.filter((s) => s.writableLength > 0).length;
      throw new Error(`the Worker kept reading its targets: ${looks.slice(-3).join(', ')} bytes; ${waiting}/${originSockets.length} origins waiting`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('Worker memory under a client that grants credit but never reads', () => {
  it('stops reading targets after a few MiB per WebSocket and keeps workerd RSS flat', async () => {
    const [workerd] = childWorkerdPids();
    expect(workerd).toBeGreaterThan(0);
    const conn = await TunnelConnection.open({ url: worker.url, key: parseKey(key), window: MAX_STREAM_WINDOW });
    try {
      const streams = Array.from({ length: STREAMS }, () => conn.mux.openStream({ host: '127.0.0.1', port: originPort }));
      await Promise.all(streams.map(resultOf));
      await until(() => originSockets.length === STREAMS, 'the origin connections');
      // The client stops reading its WebSocket: from here on, what the Worker reads stays in workerd.
      conn.ws.rawSocket!.pause();
      const baseRss = rssOf(workerd);
      pushing = true;
      for (const s of originSockets) pump(s);

      await workerStalled();
      const read = workerRead();
      const grown = rssOf(workerd) - baseRss;
      // Bound: the unacknowledged bytes of one WebSocket, plus one read block per stream and a sealed record.
      expect(read, `the Worker read ${read} bytes from its targets`).toBeLessThan(LINK_UNACKED_BYTES + 2 * 1024 * 1024);
      expect(grown, `workerd grew by ${grown} bytes`).toBeLessThan(32 * 1024 * 1024);

      // Once the client reads again, the streams go on well past both caps: the 64 MiB-window client returns
      // credit often enough for a Worker that honours only 2 MiB of it, and PONGs lift the WebSocket's pause.
      const received = streams.map(() => 0);
      streams.forEach((s, i) => (s.onData = (chunk) => {
        received[i] += chunk.length;
        s.consume(chunk.length);
      }));
      conn.ws.rawSocket!.resume();
      await until(() => received.every((n) => n > 16 * 1024 * 1024), `16 MiB on every stream (got ${received.join(', ')})`, 120_000);
    } finally {
      pushing = false;
      conn.terminate();
      for (const s of originSockets.splice(0)) s.destroy();
    }
  });

  it('bounds the sum over the WebSockets of one isolate (32 MiB), not only each one', async () => {
    const [workerd] = childWorkerdPids();
    // 6 WebSockets × 4 streams could hold 6 × 8 MiB = 48 MiB if each WebSocket were bounded on its own.
    const conns = await Promise.all(Array.from({ length: 6 }, () =>
      TunnelConnection.open({ url: worker.url, key: parseKey(key), window: MAX_STREAM_WINDOW })));
    try {
      const streams = conns.flatMap((c) => Array.from({ length: 4 }, () => c.mux.openStream({ host: '127.0.0.1', port: originPort })));
      await Promise.all(streams.map(resultOf));
      await until(() => originSockets.length === streams.length, 'the origin connections');
      for (const c of conns) c.ws.rawSocket!.pause();
      const baseRss = rssOf(workerd);
      pushing = true;
      for (const s of originSockets) pump(s);
      await workerStalled();
      const read = workerRead();
      const grown = rssOf(workerd) - baseRss;
      expect(read, `the Worker read ${read} bytes from its targets`).toBeLessThan(32 * MiB + 4 * MiB);
      expect(grown, `workerd grew by ${grown} bytes`).toBeLessThan(64 * MiB);
    } finally {
      pushing = false;
      for (const c of conns) c.terminate();
      for (const s of originSockets.splice(0)) s.destroy();
    }
  });

  it('grants smaller stream windows when a WebSocket may carry many streams: uploads held stay within 16 MiB', async () => {
    // Upload bytes wait in the Worker until the target takes them, up to the window it granted each stream.
    const many = await startDevWorker({ key, port: 0, allowPrivateTargets: true, maxStreams: 64 });
    const conn = await TunnelConnection.open({ url: many.url, key: parseKey(key) });
    try {
      const stream = conn.mux.openStream({ host: '127.0.0.1', port: originPort });
      await new Promise<void>((resolve, reject) => {
        stream.onResult = (code, message) => (code === 0 ? resolve() : reject(new Error(`CONNECT failed: ${message}`)));
      });
      // 64 streams × 256 KiB = 16 MiB; with the usual 2 MiB per stream it would be 128 MiB.
      expect(stream.write(new Uint8Array(256 * 1024))).toBe(true);
      expect(stream.write(new Uint8Array(1))).toBe(false);
    } finally {
      conn.terminate();
      for (const s of originSockets.splice(0)) s.destroy();
      await many.dispose();
    }
  });
});
