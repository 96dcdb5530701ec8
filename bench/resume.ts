// `npm run bench:resume` (issue 13): what resume costs and how fast it is, in one run, in this process plus workerd.
// The real Worker (workerd), a real exit peer and two client pools in relay mode: one with resume (the default),
// one with --resume-grace 0. Prints markdown tables and writes bench/results/resume.json:
//   - WebSocket loss → data flowing again: the client's WebSocket is cut (as if the network dropped it) 20 times
//     under an idle echo stream; time from the cut to the next 1 KB echoed back, p50/p99 (and to "resumed").
//   - Throughput cost: 200 MB echoed per round, alternating the two pools and who goes first (4 rounds), MB/s, ratio.
//   - Memory per stream: heap + RSS of this process (client pools and exit peer) with 500 idle streams open.
//   - Direct mode: the same cuts and throughput for a session the Worker keeps (ZKS_DIRECT_RESUME) against the
//     stateless Worker, with workerd's CPU-s per GB echoed for each.
// Loopback only; every loop is bounded in count and time; everything is closed at the end (and on a watchdog).

import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { startDevWorker } from '../src/cli/dev-worker';
import { encodeBase64Url } from '../src/crypto/handshake';
import { nodeCrypto } from '../src/crypto/node';
import { deriveRoomKeys } from '../src/crypto/room';
import { generateKey } from '../src/cli/args';
import { ExitPeer } from '../src/exit/index';
import { TunnelPool } from '../src/client/pool';
import { ZksError } from '../src/errors/zks-error';
import type { MuxStream } from '../src/protocol/stream';
import { percentile } from './lib/measure';
import { cpuSeconds, findDescendant } from './lib/procs';

const QUICK = process.env.BENCH_QUICK === '1';
const KILLS = QUICK ? 5 : 20;
const ROUNDS = QUICK ? 2 : 4;
const BYTES = (QUICK ? 50 : 200) * 1e6;
const IDLE = QUICK ? 100 : 500;
const SWITCHES = QUICK ? 3 : 10;
const watchdog = setTimeout(() => {
  console.error('bench:resume: watchdog (10 min): giving up');
  process.exit(2);
}, 600_000);

const echo: Server = createServer((s) => {
  s.on('error', () => {});
  s.pipe(s);
});
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
const echoPort = (echo.address() as { port: number }).port;
const key = new Uint8Array(randomBytes(32));
const worker = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true });
const secret = generateKey();
const exit = await ExitPeer.start({ relay: worker.url, key, roomSecret: secret, allowLan: true });
const room = await deriveRoomKeys(nodeCrypto, secret);
const resumed: number[] = [];
const withResume = new TunnelPool({ url: worker.url, key, room, maxConnections: 1, maxStreamsPerConnection: 1024, log: (l) => /session resumed/.test(l) && resumed.push(performance.now()) });
const without = new TunnelPool({ url: worker.url, key, room, maxConnections: 1, maxStreamsPerConnection: 1024, resumeGraceMs: 0 });

async function open(pool: TunnelPool): Promise<MuxStream> {
  const r = await pool.open({ host: '127.0.0.1', port: echoPort });
  if (!r.ok) throw new Error(r.message);
  return r.stream;
}

/** Echoes `n` bytes through `stream`; resolves with the ms it took. */
function echoBytes(stream: MuxStream, n: number): Promise<number> {
  const t0 = performance.now();
  const chunk = new Uint8Array(Math.min(n, 64 * 1024)).fill(0x5a);
  return new Promise((resolve, reject) => {
    let got = 0;
    let sent = 0;
    const timer = setTimeout(() => reject(new Error(`echo of ${n} bytes timed out`)), 120_000);
    stream.onData = (d) => {
      got += d.length;
      stream.consume(d.length);
      if (got >= n) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    };
    stream.onClose = (err) => err && reject(err);
    const pump = () => {
      while (sent < n && stream.writable) {
        const k = Math.min(chunk.length, n - sent);
        stream.write(chunk.subarray(0, k));
        sent += k;
      }
    };
    stream.onDrain = pump;
    pump();
  });
}

const results: Record<string, unknown> = { settings: { kills: KILLS, rounds: ROUNDS, bytes: BYTES, idle: IDLE } };
try {
  // 1. WebSocket loss → data again.
  const conn = await withResume.anyConnection();
  if (conn instanceof ZksError) throw conn;
  await conn.link.mux.datagrams.peerCapabilities();
  const stream = await open(withResume);
  await echoBytes(stream, 1024);
  const toData: number[] = [];
  const toResumed: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const before = resumed.length;
    const t0 = performance.now();
    conn.terminate();
    await echoBytes(stream, 1024);
    toData.push(performance.now() - t0);
    if (resumed.length > before) toResumed.push(resumed[resumed.length - 1]! - t0);
  }
  results.loss = { toDataMs: toData, toResumedMs: toResumed, resumes: conn.resumes };
  stream.end();

  // 2. Throughput with and without resume, alternating.
  const rate: Record<'resume' | 'off', number[]> = { resume: [], off: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = [['resume', withResume], ['off', without]] as const;
    for (const [name, pool] of r % 2 ? [...order].reverse() : order) { // who goes first alternates too
      const s = await open(pool);
      const ms = await echoBytes(s, BYTES);
      rate[name].push(BYTES / 1e6 / (ms / 1000));
      s.end();
    }
  }
  results.throughput = rate;

  // 3. Memory per idle stream, each pool in turn (this process holds both client ends and the exit peer).
  const memory: Record<string, { heapPerStream: number; rssPerStream: number }> = {};
  // Twice each, alternating; the second of each counts (the first pays for warm-up).
  for (const [name, pool] of [['resume', withResume], ['off', without], ['resume', withResume], ['off', without]] as const) {
    global.gc?.();
    const h0 = process.memoryUsage();
    const streams: MuxStream[] = [];
    for (let i = 0; i < IDLE; i++) streams.push(await open(pool));
    global.gc?.();
    const h1 = process.memoryUsage();
    memory[name] = { heapPerStream: (h1.heapUsed - h0.heapUsed) / IDLE, rssPerStream: (h1.rss - h0.rss) / IDLE };
    for (const s of streams) s.end();
  }
  results.memory = memory;

  // 5. Direct mode: sessions the Worker keeps (a ZksSession object each, PROTOCOL.md §11.8) against the stateless
  //    Worker, in the same workerd: WebSocket loss → data again, and per echoed GB the MB/s and workerd's CPU.
  const workerd = findDescendant(process.pid, 'workerd');
  const keptResumed: number[] = [];
  const kept = new TunnelPool({ url: worker.url, key, maxConnections: 1, log: (l) => /session resumed/.test(l) && keptResumed.push(performance.now()) });
  const stateless = new TunnelPool({ url: worker.url, key, maxConnections: 1, resumeGraceMs: 0 });
  try {
    const dconn = await kept.anyConnection();
    if (dconn instanceof ZksError) throw dconn;
    await dconn.link.mux.datagrams.peerCapabilities();
    if (!dconn.sessionKept) throw new Error('the Worker did not keep the direct-mode session');
    const ds = await open(kept);
    await echoBytes(ds, 1024);
    const dToData: number[] = [];
    const dToResumed: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const before = keptResumed.length;
      const t0 = performance.now();
      dconn.terminate();
      await echoBytes(ds, 1024);
      dToData.push(performance.now() - t0);
      if (keptResumed.length > before) dToResumed.push(keptResumed[keptResumed.length - 1]! - t0);
    }
    ds.end();
    const drate: Record<'kept' | 'stateless', number[]> = { kept: [], stateless: [] };
    const dcpu: Record<'kept' | 'stateless', number[]> = { kept: [], stateless: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = [['kept', kept], ['stateless', stateless]] as const;
      for (const [name, pool] of r % 2 ? [...order].reverse() : order) {
        const s = await open(pool);
        const c0 = workerd ? cpuSeconds(workerd) : NaN;
        const ms = await echoBytes(s, BYTES);
        dcpu[name].push(((workerd ? cpuSeconds(workerd) : NaN) - c0) / (BYTES / 1e9));
        drate[name].push(BYTES / 1e6 / (ms / 1000));
        s.end();
      }
    }
    results.direct = { toDataMs: dToData, toResumedMs: dToResumed, resumes: dconn.resumes, throughput: drate, workerdCpuPerGB: dcpu };
  } finally {
    await kept.stop();
    await stateless.stop();
  }

  // 4. A relay lost for good (its workerd stopped) → the session resumed on the second relay. The stopped relay
  //    is started again between rounds and the exit peer re-attached, so every round starts from two relays.
  const second = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true });
  const relays = [worker.url, second.url];
  const workers = [worker, second];
  await exit.close(); // it holds relay 0's room: the exit peer of this part attaches on both relays
  const exit2 = await ExitPeer.start({ relay: worker.url, moreRelays: [second.url], key, roomSecret: secret, allowLan: true });
  const moved: number[] = [];
  const twoRelays = new TunnelPool({ url: worker.url, relayUrls: relays, key, room, maxConnections: 1, maxStreamsPerConnection: 1024 });
  try {
    while (exit2.attachedRelays.length < 2) await new Promise((r) => setTimeout(r, 20));
    const s2 = await open(twoRelays);
    await echoBytes(s2, 1024);
    const c2 = twoRelays.connections[0]!;
    for (let i = 0; i < SWITCHES; i++) {
      const lost = relays.indexOf(c2.relayUrl);
      const t0 = performance.now();
      await workers[lost]!.dispose();
      await echoBytes(s2, 1024);
      moved.push(performance.now() - t0);
      const port = Number(new URL(relays[lost]!).port);
      workers[lost] = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port, allowPrivateTargets: true });
      while (exit2.attachedRelays.length < 2 || !twoRelays.relays.isUp(relays[lost]!)) await new Promise((r) => setTimeout(r, 20));
    }
    s2.end();
  } finally {
    await twoRelays.stop();
    await exit2.close();
    // relay 0's first workerd is stopped in the outer finally; any other one here
    await Promise.all(workers.map((w) => (w === worker ? null : w.dispose())));
  }
  results.relaySwitch = { toDataMs: moved };

  const med = (v: number[]) => percentile(v, 50);
  const f = (v: number) => v.toFixed(1);
  const loss = results.loss as { toDataMs: number[]; toResumedMs: number[]; resumes: number };
  console.log(`\n### Resume (relay mode, local workerd; ${KILLS} WebSocket cuts)\n`);
  console.log('| WebSocket cut → | p50 ms | p99 ms | max ms |\n|---|---|---|---|');
  console.log(`| session resumed (log) | ${f(med(loss.toResumedMs))} | ${f(percentile(loss.toResumedMs, 99))} | ${f(Math.max(...loss.toResumedMs))} |`);
  console.log(`| next 1 KB echoed back | ${f(med(loss.toDataMs))} | ${f(percentile(loss.toDataMs, 99))} | ${f(Math.max(...loss.toDataMs))} |`);
  console.log(`\n| a relay's workerd stopped (2 relays, ${SWITCHES} times) → | p50 ms | p99 ms | max ms |\n|---|---|---|---|`);
  console.log(`| next 1 KB echoed back, resumed on the other relay | ${f(med(moved))} | ${f(percentile(moved, 99))} | ${f(Math.max(...moved))} |`);
  console.log(`\n| ${BYTES / 1e6} MB echoed, ${ROUNDS} rounds alternating | median MB/s | ÷ resume off |\n|---|---|---|`);
  console.log(`| resume on (default) | ${f(med(rate.resume))} | ${(med(rate.resume) / med(rate.off)).toFixed(3)} |`);
  console.log(`| --resume-grace 0 | ${f(med(rate.off))} | 1.000 |`);
  const direct = results.direct as { toDataMs: number[]; toResumedMs: number[]; throughput: Record<'kept' | 'stateless', number[]>; workerdCpuPerGB: Record<'kept' | 'stateless', number[]> };
  console.log(`\n### Resume in direct mode (the Worker keeps the session in a Durable Object; ${KILLS} WebSocket cuts)\n`);
  console.log('| WebSocket cut → | p50 ms | p99 ms | max ms |\n|---|---|---|---|');
  console.log(`| session resumed (log) | ${f(med(direct.toResumedMs))} | ${f(percentile(direct.toResumedMs, 99))} | ${f(Math.max(...direct.toResumedMs))} |`);
  console.log(`| next 1 KB echoed back | ${f(med(direct.toDataMs))} | ${f(percentile(direct.toDataMs, 99))} | ${f(Math.max(...direct.toDataMs))} |`);
  const dr = direct.throughput;
  const dc = direct.workerdCpuPerGB;
  console.log(`\n| ${BYTES / 1e6} MB echoed, ${ROUNDS} rounds alternating | median MB/s | ÷ stateless | workerd CPU-s per GB echoed | ÷ stateless |\n|---|---|---|---|---|`);
  console.log(`| kept session (ZKS_DIRECT_RESUME) | ${f(med(dr.kept))} | ${(med(dr.kept) / med(dr.stateless)).toFixed(3)} | ${med(dc.kept).toFixed(2)} | ${(med(dc.kept) / med(dc.stateless)).toFixed(3)} |`);
  console.log(`| stateless Worker | ${f(med(dr.stateless))} | 1.000 | ${med(dc.stateless).toFixed(2)} | 1.000 |`);
  console.log(`\n| ${IDLE} idle streams | heap KB/stream | RSS KB/stream |\n|---|---|---|`);
  for (const [name, m] of Object.entries(memory)) console.log(`| ${name} | ${(m.heapPerStream / 1024).toFixed(2)} | ${(m.rssPerStream / 1024).toFixed(2)} |`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/resume.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await withResume.stop();
  await without.stop();
  await exit.close();
  await worker.dispose().catch(() => {}); // stopped already when part 4 lost relay 0
  echo.close();
  clearTimeout(watchdog);
}
