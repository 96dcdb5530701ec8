// `npm run bench:direct`: the direct paths (issue 11) against the room path in ONE run. Three relay stacks on
// 127.0.0.1 (each: zks worker + zks exit-peer + zks p2p-client, one origin): one without a direct path (every record
// through the Worker's room), one whose client and exit set up their direct TCP path, one with WebRTC only
// (`--no-direct-tcp`, host candidates on 127.0.0.1). Rounds alternate between them; per config: 1-stream download/upload MB/s (medians), connect latency (p50
// of the echo round trip through a new stream), CPU-s/GB of each process on the 1-stream samples, and the time
// from the first stream of a new client to the direct path being up. Every loop is bounded; every process dies at
// the end. Knobs: BENCH_SECONDS, BENCH_ROUNDS. As root, then zksd between namespaces, room vs direct path
// (direct-zksd.ts), and the time a silently cut direct path takes to hand a download back to the room
// (direct-fallback.ts), and every path (room, TCP, WebRTC, TURN) between namespaces through curl (direct-paths.ts);
// `npm run bench:direct -- zksd`, `-- fallback` or `-- paths` runs only that part.

import { startOrigin } from './lib/origin';
import { cpuSeconds, killAll } from './lib/procs';
import { startZksRelay, zksKeygen, type Transport } from './lib/transports';
import { connectLatency, download, median, percentile, sleep, upload } from './lib/measure';
import { existsSync } from 'node:fs';
import { formatZksdDirect, runZksdDirectBench } from './direct-zksd';
import { formatFallback, runFallbackBench } from './direct-fallback';
import { formatPaths, runPathsBench } from './direct-paths';

const SECONDS = Math.min(30, Math.max(1, Number(process.env.BENCH_SECONDS ?? 3)));
const ROUNDS = Math.min(10, Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3)));
const log = (line: string) => console.error(`[bench direct] ${line}`);

interface Row {
  down: number[];
  up: number[];
  cpu: Map<string, { down: number; downBytes: number; up: number; upBytes: number }>;
  latency: number[];
}

async function main(): Promise<void> {
  const [key, roomA, roomB, roomC] = await Promise.all([zksKeygen(), zksKeygen(), zksKeygen(), zksKeygen()]);
  const origin = await startOrigin();
  const ports = origin.ports;
  const room = await startZksRelay(key, roomA);
  const t0 = performance.now();
  const directStack = await startZksRelay(key, roomB, undefined, true);
  const webrtcStack = await startZksRelay(key, roomC, undefined, 'webrtc');
  const configs: Transport[] = [room.transport, directStack.transport, webrtcStack.transport];
  // The first stream opens the client's session; the direct path follows (watched through a stream's echo until
  // the client's throughput log says so would need its stderr: the warm-up below gives it time and the rows say
  // whether it was used, by the workerd CPU it no longer spends).
  for (const t of configs) await connectLatency(t, ports.echo, 20, 10_000);
  log(`stacks up in ${Math.round(performance.now() - t0)} ms; warm-up`);
  for (const t of configs) await download(t, ports.download, 1, 0.5, 200);
  const rows = new Map<string, Row>(configs.map((t) => [t.name, { down: [], up: [], cpu: new Map(), latency: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of configs) {
      const row = rows.get(t.name)!;
      log(`round ${round + 1}/${ROUNDS}: ${t.name}`);
      for (const dir of ['down', 'up'] as const) {
        const before = Object.fromEntries(Object.entries(t.pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
        const s = dir === 'down' ? await download(t, ports.download, 1, SECONDS, 300) : await upload(t, ports.upload, 1, SECONDS, 300);
        for (const [k, pid] of Object.entries(t.pids)) {
          const c = row.cpu.get(k) ?? { down: 0, downBytes: 0, up: 0, upBytes: 0 };
          const used = cpuSeconds(pid) - before[k];
          if (dir === 'down') (c.down += used), (c.downBytes += s.totalBytes);
          else (c.up += used), (c.upBytes += s.totalBytes);
          row.cpu.set(k, c);
        }
        (dir === 'down' ? row.down : row.up).push(s.mbPerSec);
        await sleep(200);
      }
      const lat = await connectLatency(t, ports.echo, 50, 15_000);
      row.latency.push(...lat.echo);
    }
  }
  const room1 = rows.get('zks relay')!;
  const lines = [
    `| config | 1-stream down MB/s | 1-stream up MB/s | down ÷ room | up ÷ room | connect+echo p50 / p99 ms | CPU-s/GB down / up per process |`,
    '|---|---|---|---|---|---|---|',
  ];
  for (const [name, r] of rows) {
    const cpu = [...r.cpu.entries()].filter(([k]) => k !== 'miniflare host')
      .map(([k, c]) => `${k} ${(c.down / (c.downBytes / 1e9)).toFixed(2)} / ${(c.up / (c.upBytes / 1e9)).toFixed(2)}`).join('; ');
    lines.push(`| ${name} | ${median(r.down).toFixed(0)} | ${median(r.up).toFixed(0)} | ${(median(r.down) / median(room1.down)).toFixed(2)} | ` +
      `${(median(r.up) / median(room1.up)).toFixed(2)} | ${percentile(r.latency, 50).toFixed(2)} / ${percentile(r.latency, 99).toFixed(2)} | ${cpu} |`);
  }
  console.log(`\n### Direct path vs room (${ROUNDS} rounds × ${SECONDS} s, 127.0.0.1)\n\n${lines.join('\n')}`);
}

const watchdog = setTimeout(() => {
  console.error('bench direct: watchdog fired; killing every process it started');
  void killAll().finally(() => process.exit(2));
}, (900 + ROUNDS * 3 * (4 * (SECONDS + 1) + 15)) * 1000);
watchdog.unref();

const ONLY_ZKSD = process.argv.slice(2).includes('zksd');
const ONLY_FALLBACK = process.argv.slice(2).includes('fallback');
const ONLY_PATHS = process.argv.slice(2).includes('paths');
const zksdRunnable = process.getuid?.() === 0 && existsSync('/dev/net/tun') && existsSync('/usr/bin/iperf3');
try {
  const only = ONLY_ZKSD || ONLY_FALLBACK || ONLY_PATHS;
  if (!only) await main();
  if (!zksdRunnable) console.log('\n- namespace, zksd and fallback rows skipped: they need root, /dev/net/tun and iperf3');
  else {
    if (!only || ONLY_PATHS) console.log(`\n${formatPaths(await runPathsBench(log))}`);
    if (!only || ONLY_ZKSD) console.log(`\n${formatZksdDirect(await runZksdDirectBench(log))}`);
    if (!only || ONLY_FALLBACK) {
      for (const via of ['tcp', 'webrtc'] as const) console.log(`\n${formatFallback(await runFallbackBench(Math.max(3, ROUNDS * 2), via, log))}`);
    }
  }
} catch (err) {
  console.error('bench direct failed:', err);
  process.exitCode = 1;
} finally {
  await killAll();
  clearTimeout(watchdog);
}
