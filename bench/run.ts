// `npm run bench`: direct loopback, the bare pipe Worker, zks direct mode (zks worker + zks socks5) and zks
// relay mode (a second zks worker + zks exit-peer + zks p2p-client), every one a separate process, measured in
// ONE run against one origin process; prints markdown tables and writes bench/results/latest.json. Everything
// listens on and dials 127.0.0.1; every loop is bounded in count and time; every process started here is killed
// at the end, on error and on SIGINT. Knobs: BENCH_SECONDS (per throughput sample), BENCH_QUICK=1 (smoke run,
// ~50 s). A relay stack that fails to start is a diagnostic, not a failed run: the other configs still report.
// The netstack rows (bench/netstack.ts: TUN → our TCP/IP stack, root only) run last; `npm run bench -- netstack`
// runs them alone (written to bench/results/netstack.json).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startOrigin } from './lib/origin';
import { cpuSeconds, killAll, killAllSync, rssBytes } from './lib/procs';
import { directTransport, startBarePipe, startZks, startZksRelay, zksKeygen, type Transport } from './lib/transports';
import { formatNetstack, netstackRunnable, runNetstackBench, type NetstackResults } from './netstack';
import { daemonBenchRunnable, formatDaemon, runDaemonBench, type DaemonBenchResults } from './daemon';
import { formatUdp, runUdpBench, type UdpBenchResults } from './udp';
import { formatExpose, runExposeBench, type ExposeBenchResults } from './expose';
import { hasNativeApp, measureNativeCpu, type NativeConfig } from './lib/native-app';
import { SSH_CIPHER, sshMissing, startSshSocks } from './lib/ssh-socks';
import { churn, connectLatency, download, median, openIdle, percentile, sleep, upload, type ThroughputSample } from './lib/measure';
import {
  formatReport, type CpuRow, type Figure, type LatencyDelta, type LatencyRow, type MemoryRow, type Ratios, type Results, type Target,
  type ThroughputRow,
} from './lib/report';

const QUICK = process.env.BENCH_QUICK === '1';
/** Bytes per direction and rounds of the native-application CPU samples. */
const NATIVE_BYTES = QUICK ? 200e6 : 1e9;
const NATIVE_ROUNDS = QUICK ? 1 : 3;
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 1 : 3));
const S = {
  seconds: Number.isFinite(SECONDS) && SECONDS > 0 && SECONDS <= 30 ? SECONDS : 3,
  samples: QUICK ? 1 : 3,
  warmupMs: QUICK ? 250 : 500,
  latencyCount: QUICK ? 50 : 200,
  churnCount: QUICK ? 500 : 2000,
  churnConcurrency: 50,
  greetCount: QUICK ? 200 : 300,
  idleStreams: 1000,
  aeadSeconds: QUICK ? 0.2 : 0.6,
};
const ONLY_NETSTACK = process.argv.slice(2).includes('netstack');
// `npm run bench -- zksd`: only the zksd end-to-end rows (bench/daemon.ts).
const ONLY_ZKSD = process.argv.slice(2).includes('zksd');
// `npm run bench -- udp`: only the UDP rows (bench/udp.ts).
const ONLY_UDP = process.argv.slice(2).includes('udp');
// `npm run bench -- main`: only the rows of main() (throughput, latency, memory, CPU, AEAD), without netstack/zksd/UDP.
const ONLY_MAIN = process.argv.slice(2).includes('main');
// `npm run bench -- expose`: only the HTTP tunnel rows (bench/expose.ts).
const ONLY_EXPOSE = process.argv.slice(2).includes('expose');
const EXPOSE = { bytes: (QUICK ? 0.2 : 1) * 1e9, samples: QUICK ? 1 : 2, wrkSeconds: QUICK ? 2 : 5, latencyCount: QUICK ? 200 : 1000, idleTunnels: QUICK ? 3 : 8, heldRequests: QUICK ? 50 : 200 };
const UDP = { rates: QUICK ? [100, 500] : [100, 300, 500], seconds: QUICK ? 2 : 3, dnsQueries: QUICK ? 200 : 500, pings: QUICK ? 200 : 1500, idleFlows: 2000 };
const ZKSD = { bytes: (QUICK ? 50 : 200) * 1e6, samples: QUICK ? 1 : 3, churnCount: QUICK ? 300 : 1000, churnConcurrency: 50, idleFlows: 1000 };
const NETSTACK = {
  seconds: S.seconds, samples: S.samples, warmupMs: S.warmupMs, churnCount: S.churnCount,
  churnConcurrency: S.churnConcurrency, idleFlows: 1000, profileDir: process.env.BENCH_PROFILE || undefined,
};
const MB = 1e6;
const diagnostics: string[] = [];

async function attempt<T>(label: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    diagnostics.push(`${label}: ${(err as Error).message.split('\n')[0]}`);
    return fallback;
  }
}

const NO_SAMPLE: ThroughputSample = { mbPerSec: NaN, totalBytes: 0, maxGapMs: NaN, perStream: [] };
type Kind = 'down1' | 'up1' | 'down8' | 'up8';
const KINDS: Kind[] = ['down1', 'up1', 'down8', 'up8'];

function cpuSnapshot(t: Transport): Record<string, number> {
  return Object.fromEntries(Object.entries(t.pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
}

async function main(): Promise<Results> {
  const started = performance.now();
  const log = (line: string) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)}s] ${line}`);

  log('starting origin, bare pipe Worker, zks (worker + socks5) and zks relay (worker + exit-peer + p2p-client)');
  const [key, roomSecret] = await Promise.all([zksKeygen(), zksKeygen()]);
  const [origin, bare, zks, relay] = await Promise.all([
    startOrigin(),
    startBarePipe(),
    startZks(key),
    attempt('zks relay start', () => startZksRelay(key, roomSecret), null),
  ]);
  const ports = origin.ports;
  const direct = directTransport();
  const tunnels: Transport[] = [bare.transport, zks.transport, ...(relay ? [relay.transport] : [])];
  const configs: Transport[] = [direct, ...tunnels];
  log(`processes: ${tunnels.map((t) => `${t.name} {${Object.entries(t.pids).map(([k, pid]) => `${k} ${pid}`).join(', ')}}`).join('; ')}`);

  log('warm-up');
  for (const t of configs) {
    await attempt(`${t.name} warm-up`, () => connectLatency(t, ports.echo, 20, 10_000), null);
    await attempt(`${t.name} warm-up`, () => download(t, ports.download, 1, 0.3, 100), null);
  }
  await sleep(500);

  // Memory first, while the processes are close to fresh: before / with N idle streams / after closing them.
  const memory: MemoryRow[] = [];
  for (const t of tunnels) {
    log(`${t.name}: ${S.idleStreams} idle streams`);
    const before = Object.fromEntries(Object.entries(t.pids).map(([k, pid]) => [k, rssBytes(pid)]));
    const idle = await attempt(`${t.name} idle streams`, () => openIdle(t, ports.echo, S.idleStreams, 50, 60_000), null);
    await sleep(1_000);
    const withIdle = Object.fromEntries(Object.entries(t.pids).map(([k, pid]) => [k, rssBytes(pid)]));
    const opened = idle ? idle.sockets.length - idle.errors.length : 0;
    if (idle?.errors.length) diagnostics.push(`${t.name} idle streams: ${idle.errors.length} failed (${idle.errors[0]})`);
    await idle?.release();
    await sleep(1_500);
    for (const [proc, pid] of Object.entries(t.pids)) {
      memory.push({
        process: proc, config: t.name, beforeMB: before[proc] / MB, withIdleMB: withIdle[proc] / MB,
        afterCloseMB: rssBytes(pid) / MB, peakDuringThroughputMB: NaN, idleStreams: opened,
      });
    }
  }

  const latency: LatencyRow[] = [];
  for (const t of configs) {
    log(`${t.name}: connect latency x${S.latencyCount}, churn ${S.churnCount} @${S.churnConcurrency}, server-first x${S.greetCount}`);
    const lat = await attempt(`${t.name} latency`, () => connectLatency(t, ports.echo, S.latencyCount, 30_000), null);
    const ch = await attempt(`${t.name} churn`, () => churn(t, ports.echo, S.churnCount, S.churnConcurrency, 40_000), null);
    const greet = await attempt(
      `${t.name} server-first`,
      () => churn(t, ports.greet, S.greetCount, S.churnConcurrency, 20_000, { probe: false, firstByteTimeoutMs: 2_000 }),
      null,
    );
    if (lat?.errors.length) diagnostics.push(`${t.name} latency: ${lat.errors.length} errors (${lat.errors[0]})`);
    if (ch?.errors.length) diagnostics.push(`${t.name} churn: ${ch.errors.length} errors (${ch.errors[0]})`);
    if (greet?.errors.length) {
      diagnostics.push(`${t.name} server-first: ${greet.errors.length} of ${S.greetCount} streams never got the origin's first byte (${greet.errors[0]})`);
    }
    latency.push({
      config: t.name,
      usableP50: percentile(lat?.usable ?? [], 50), usableP99: percentile(lat?.usable ?? [], 99),
      echoP50: percentile(lat?.echo ?? [], 50), echoP99: percentile(lat?.echo ?? [], 99),
      samples: lat?.echo.length ?? 0,
      streamsPerSec: ch?.perSec ?? NaN, churnErrors: ch?.errors.length ?? 0,
      greetDelivered: greet?.completed ?? 0, greetLost: greet?.errors.length ?? 0,
      errors: lat?.errors ?? [],
    });
    await sleep(300);
  }

  // Throughput: rounds of (every config × every kind), so each ratio compares samples taken moments apart.
  const samples = new Map<string, ThroughputSample[]>(); // `${config}/${kind}`
  const cpu = new Map<string, { down: number; downBytes: number; up: number; upBytes: number }>();
  const peak = new Map<string, number>();
  const sampler = setInterval(() => {
    for (const t of tunnels) for (const [k, pid] of Object.entries(t.pids)) {
      peak.set(`${t.name}/${k}`, Math.max(peak.get(`${t.name}/${k}`) ?? 0, rssBytes(pid)));
    }
  }, 200);
  try {
    for (let round = 0; round < S.samples; round++) {
      for (const t of configs) {
        log(`throughput round ${round + 1}/${S.samples}: ${t.name}`);
        for (const kind of KINDS) {
          const streams = kind.endsWith('8') ? 8 : 1;
          const port = kind.startsWith('down') ? ports.download : ports.upload;
          const run = kind.startsWith('down') ? download : upload;
          const cpuBefore = cpuSnapshot(t);
          const s = await attempt(`${t.name} ${kind} round ${round + 1}`, () => run(t, port, streams, S.seconds, S.warmupMs), NO_SAMPLE);
          const cpuAfter = cpuSnapshot(t);
          if (s.mbPerSec === 0) diagnostics.push(`${t.name} ${kind} round ${round + 1}: nothing moved inside the measuring window (0 MB/s)`);
          if (streams === 1 && s.totalBytes > 0) {
            for (const proc of Object.keys(t.pids)) {
              const c = cpu.get(`${t.name}/${proc}`) ?? { down: 0, downBytes: 0, up: 0, upBytes: 0 };
              const used = cpuAfter[proc] - cpuBefore[proc];
              if (kind === 'down1') (c.down += used), (c.downBytes += s.totalBytes);
              else (c.up += used), (c.upBytes += s.totalBytes);
              cpu.set(`${t.name}/${proc}`, c);
            }
          }
          const list = samples.get(`${t.name}/${kind}`) ?? [];
          list.push(s);
          samples.set(`${t.name}/${kind}`, list);
          await sleep(200);
        }
      }
    }
  } finally {
    clearInterval(sampler);
  }

  // The clients' CPU with a native application (nc), ssh -D beside ours as the baseline (lib/native-app.ts).
  let cpuNative: CpuRow[] = [];
  let nativePinned = false;
  if (!hasNativeApp()) diagnostics.push('no OpenBSD nc (netcat-openbsd): the native-application CPU rows were skipped');
  else {
    const native: NativeConfig[] = [];
    if (zks.transport.socksPort !== undefined) native.push({ name: 'zks', socksPort: zks.transport.socksPort, pids: zks.transport.pids, clientLabels: ['zks socks5'] });
    if (relay?.transport.socksPort !== undefined) {
      native.push({ name: 'zks relay', socksPort: relay.transport.socksPort, pids: relay.transport.pids, clientLabels: ['zks p2p-client'] });
    }
    const missing = sshMissing();
    const ssh = missing ? null : await attempt('ssh -D start', () => startSshSocks(), null);
    if (missing) diagnostics.push(`no ssh -D baseline: ${missing}`);
    if (ssh) native.push({ name: 'ssh -D', socksPort: ssh.socksPort, pids: ssh.pids, clientLabels: ['ssh -D client'], treeLabels: ['sshd'] });
    try {
      const measured = await measureNativeCpu(native, {
        bytes: NATIVE_BYTES, rounds: NATIVE_ROUNDS, ports: { download: ports.download, greet: ports.greet }, serverPids: [origin.proc.pid], log,
      });
      cpuNative = measured.rows;
      nativePinned = measured.pinned;
      diagnostics.push(...measured.diagnostics);
    } finally {
      await ssh?.stop();
    }
  }

  // Only what the tunnel processes printed after they were ready: anything there is an event worth a look.
  const stackLines = [...bare.procs, ...zks.procs, ...(relay?.procs ?? [])].flatMap((p) => p.afterReady.map((l) => `${p.name}: ${l}`));
  log('stopping processes');
  await killAll();

  log('AEAD');
  const { runAeadBench } = await import('./aead');
  const aead = await attempt('aead', () => runAeadBench({ seconds: S.aeadSeconds }), []);

  // ---- assemble ----
  const rate = (config: string, kind: Kind, round: number) => samples.get(`${config}/${kind}`)?.[round]?.mbPerSec ?? NaN;
  const ratioVs = (config: string, base: string): Ratios | null => {
    if (config === base) return null;
    const per = (kind: Kind) => median(Array.from({ length: S.samples }, (_, i) => rate(config, kind, i) / rate(base, kind, i)).filter(Number.isFinite));
    return { down1: per('down1'), up1: per('up1'), down8: per('down8'), up8: per('up8') };
  };
  const throughput: ThroughputRow[] = configs.map((t) => {
    const med = (kind: Kind) => median((samples.get(`${t.name}/${kind}`) ?? []).map((s) => s.mbPerSec).filter(Number.isFinite));
    const all = (kind: Kind) => samples.get(`${t.name}/${kind}`) ?? [];
    const gaps = [...all('down1'), ...all('up1')].map((s) => s.maxGapMs).filter(Number.isFinite);
    const fairness = (kind: Kind) => {
      const shares = all(kind).filter((s) => s.perStream.length > 0).map((s) => {
        const mean = s.perStream.reduce((a, b) => a + b, 0) / s.perStream.length;
        return Math.min(...s.perStream) / mean;
      });
      return shares.length ? Math.min(...shares) : NaN;
    };
    return {
      config: t.name, down1: med('down1'), up1: med('up1'), down8: med('down8'), up8: med('up8'),
      vsDirect: ratioVs(t.name, 'direct'), vsBare: t.name === 'direct' ? null : ratioVs(t.name, 'bare pipe'),
      vsZks: t.name === 'zks relay' ? ratioVs(t.name, 'zks') : null,
      maxGapMs: gaps.length ? Math.max(...gaps) : NaN, fairDown8: fairness('down8'), fairUp8: fairness('up8'), errors: [],
    };
  });
  for (const t of throughput) {
    if (t.maxGapMs > 500) diagnostics.push(`${t.config}: a 1-stream sample made no progress for ${t.maxGapMs.toFixed(0)} ms (stall)`);
    if (t.fairDown8 < 0.25 || t.fairUp8 < 0.25) {
      diagnostics.push(`${t.config}: 8-stream samples were unfair (slowest stream ${t.fairDown8.toFixed(2)} down / ${t.fairUp8.toFixed(2)} up of the mean)`);
    }
  }
  for (const m of memory) m.peakDuringThroughputMB = (peak.get(`${m.config}/${m.process}`) ?? NaN) / MB;
  const cpuRows: CpuRow[] = [...cpu.entries()].map(([k, c]) => {
    const [config, proc] = k.split('/');
    return { process: proc, config, downCpuSecPerGB: c.down / (c.downBytes / 1e9), upCpuSecPerGB: c.up / (c.upBytes / 1e9) };
  });
  const lat = (config: string) => latency.find((l) => l.config === config);
  const addedLatencyP50Ms = (lat('zks')?.echoP50 ?? NaN) - (lat('bare pipe')?.echoP50 ?? NaN);
  const delta = (a: string, b: string): LatencyDelta => ({
    name: `${a} − ${b}`,
    echoP50Ms: (lat(a)?.echoP50 ?? NaN) - (lat(b)?.echoP50 ?? NaN),
    usableP50Ms: (lat(a)?.usableP50 ?? NaN) - (lat(b)?.usableP50 ?? NaN),
  });
  const latencyDeltas = [delta('zks', 'bare pipe'), delta('zks relay', 'zks'), delta('zks relay', 'direct')];
  const zksRow = throughput.find((t) => t.config === 'zks');
  const relayRow = throughput.find((t) => t.config === 'zks relay');
  const clientMem = memory.find((m) => m.config === 'zks' && m.process === 'zks socks5');
  const clientAdded = clientMem ? clientMem.withIdleMB - clientMem.beforeMB : NaN;
  const aesRows = aead.filter((a) => a.name.startsWith('node aes-256-gcm'));
  const aesMin = aesRows.length ? Math.min(...aesRows.map((a) => a.mbPerSec)) : NaN;
  const check = (v: number, ok: (v: number) => boolean) => (Number.isFinite(v) ? ok(v) : null);
  const nativeClient = cpuNative.find((c) => c.config === 'zks' && c.process === 'zks socks5');
  const targets: Target[] = [
    {
      name: 'zks 1-stream download ≥ 80% of bare pipe',
      value: `${((zksRow?.vsBare?.down1 ?? NaN) * 100).toFixed(0)}%`,
      pass: check(zksRow?.vsBare?.down1 ?? NaN, (v) => v >= 0.8),
    },
    {
      name: 'zks 1-stream upload ≥ 80% of bare pipe',
      value: `${((zksRow?.vsBare?.up1 ?? NaN) * 100).toFixed(0)}%`,
      pass: check(zksRow?.vsBare?.up1 ?? NaN, (v) => v >= 0.8),
    },
    { name: 'added p50 connect latency (echo, zks − bare pipe) ≤ 3 ms', value: `${addedLatencyP50Ms.toFixed(2)} ms`, pass: check(addedLatencyP50Ms, (v) => v <= 3) },
    {
      name: `${S.idleStreams} idle streams ≤ 20 MB added client RSS`,
      value: `${clientAdded.toFixed(1)} MB for ${clientMem?.idleStreams ?? 0} streams`,
      pass: clientMem && clientMem.idleStreams === S.idleStreams ? check(clientAdded, (v) => v <= 20) : false,
    },
    { name: 'node AES-256-GCM ≥ 1 GB/s (slower of seal/open)', value: `${aesMin.toFixed(0)} MB/s`, pass: check(aesMin, (v) => v >= 1000) },
    {
      name: 'zks socks5 ≤ 2.0 CPU-s/GB each way with a native application (nc)',
      value: nativeClient ? `${nativeClient.downCpuSecPerGB.toFixed(2)} down / ${nativeClient.upCpuSecPerGB.toFixed(2)} up` : 'not measured',
      pass: nativeClient ? check(Math.max(nativeClient.downCpuSecPerGB, nativeClient.upCpuSecPerGB), (v) => v <= 2.0) : null,
    },
    {
      name: 'zks relay 1-stream download ≥ 70% of zks direct mode',
      value: `${((relayRow?.vsZks?.down1 ?? NaN) * 100).toFixed(0)}%`,
      pass: check(relayRow?.vsZks?.down1 ?? NaN, (v) => v >= 0.7),
    },
    {
      name: 'zks relay 1-stream upload ≥ 70% of zks direct mode',
      value: `${((relayRow?.vsZks?.up1 ?? NaN) * 100).toFixed(0)}%`,
      pass: check(relayRow?.vsZks?.up1 ?? NaN, (v) => v >= 0.7),
    },
  ];
  const cpuOf = (config: string, proc: string) => cpuRows.find((c) => c.config === config && c.process === proc);
  const perGB = (c: CpuRow | undefined) => `${(c?.downCpuSecPerGB ?? NaN).toFixed(2)} down / ${(c?.upCpuSecPerGB ?? NaN).toFixed(2)} up`;
  const relayClientMem = memory.find((m) => m.config === 'zks relay' && m.process === 'zks p2p-client');
  const relayExitMem = memory.find((m) => m.config === 'zks relay' && m.process === 'zks exit-peer');
  const sshClient = cpuNative.find((c) => c.config === 'ssh -D' && c.process === 'ssh -D client');
  const vsSsh = (c: CpuRow | undefined) =>
    `${((c?.downCpuSecPerGB ?? NaN) / (sshClient?.downCpuSecPerGB ?? NaN)).toFixed(2)} down / ${((c?.upCpuSecPerGB ?? NaN) / (sshClient?.upCpuSecPerGB ?? NaN)).toFixed(2)} up`;
  const figures: Figure[] = [
    {
      name: `client CPU-s/GB with nc ÷ ssh -D's client (${SSH_CIPHER}), same rounds${nativePinned ? ', pinned' : ''}`,
      value: `zks socks5 ${vsSsh(nativeClient)}; p2p-client ${vsSsh(cpuNative.find((c) => c.config === 'zks relay' && c.process === 'zks p2p-client'))} (ssh -D client: ${perGB(sshClient)})`,
    },
    { name: 'exit peer CPU-s/GB (1-stream)', value: perGB(cpuOf('zks relay', 'zks exit-peer')) },
    {
      name: 'p2p-client CPU-s/GB (1-stream), beside zks socks5 in direct mode',
      value: `${perGB(cpuOf('zks relay', 'zks p2p-client'))} (zks socks5: ${perGB(cpuOf('zks', 'zks socks5'))})`,
    },
    {
      name: 'workerd CPU-s/GB (1-stream), relay room beside direct mode',
      value: `${perGB(cpuOf('zks relay', 'workerd'))} (direct mode: ${perGB(cpuOf('zks', 'workerd'))})`,
    },
    {
      name: `${S.idleStreams} idle relay streams, added RSS`,
      value: `p2p-client ${(relayClientMem ? relayClientMem.withIdleMB - relayClientMem.beforeMB : NaN).toFixed(1)} MB, exit peer ${
        (relayExitMem ? relayExitMem.withIdleMB - relayExitMem.beforeMB : NaN).toFixed(1)} MB for ${relayClientMem?.idleStreams ?? 0} streams`,
    },
  ];
  if (stackLines.length) {
    diagnostics.push(`${stackLines.length} log lines from the tunnel processes, first: ${stackLines.slice(0, 5).join(' | ')}`);
  }
  return {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      cpu: `${cpus().length}x ${cpus()[0]?.model.trim() ?? '?'}`,
      mode: QUICK ? 'quick' : 'full',
      'seconds/sample': S.seconds,
      samples: S.samples,
      'wall s': Math.round((performance.now() - started) / 1000),
    },
    throughput, latency, addedLatencyP50Ms, latencyDeltas, memory, cpu: cpuRows, cpuNative, aead, targets, figures, diagnostics,
  };
}

// Hard stop for async hangs: the whole run may not take more than this (children die with us).
const watchdog = setTimeout(() => {
  console.error('bench: watchdog fired (run took too long); killing every process it started');
  killAllSync();
  process.exit(2);
}, (ONLY_EXPOSE ? 600 : (ONLY_UDP ? 300 : (ONLY_NETSTACK || ONLY_ZKSD ? 0 : QUICK ? 150 : 420) + (ONLY_ZKSD ? 0 : QUICK ? 90 : 180) + (ONLY_NETSTACK ? 0 : QUICK ? 90 : 180) + (ONLY_NETSTACK || ONLY_ZKSD ? 0 : 300)) + (ONLY_NETSTACK || ONLY_ZKSD || ONLY_UDP || ONLY_MAIN ? 0 : 600)) * 1000);
watchdog.unref();

/** The netstack rows, or a reason they were skipped. */
async function netstackRows(): Promise<NetstackResults | string> {
  const why = netstackRunnable();
  if (why !== null) return `netstack rows skipped: ${why}`;
  const t0 = performance.now();
  return runNetstackBench(NETSTACK, (l) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${l}`))
    .catch((err: Error) => `netstack rows failed: ${err.message.split('\n')[0]}`);
}

/** The zksd end-to-end rows, or a reason they were skipped. */
async function zksdRows(): Promise<DaemonBenchResults | string> {
  const why = daemonBenchRunnable();
  if (why !== null) return `zksd rows skipped: ${why}`;
  const t0 = performance.now();
  return runDaemonBench(ZKSD, (l) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${l}`))
    .catch((err: Error) => `zksd rows failed: ${err.message.split('\n')[0]}`);
}

/** The UDP rows (bench/udp.ts), or a reason they were skipped. */
async function udpRows(): Promise<UdpBenchResults | string> {
  const why = daemonBenchRunnable();
  if (why !== null) return `UDP rows skipped: ${why}`;
  const t0 = performance.now();
  return runUdpBench(UDP, (l) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${l}`))
    .catch((err: Error) => `UDP rows failed: ${err.message.split('\n')[0]}`);
}

async function exposeRows(): Promise<ExposeBenchResults | string> {
  const missing = ['/usr/bin/wrk', '/usr/sbin/nginx'].filter((f) => !existsSync(f));
  if (missing.length > 0) return `HTTP tunnel rows skipped: ${missing.join(', ')} missing (apt-get install wrk nginx-light)`;
  const t0 = performance.now();
  return runExposeBench(EXPOSE, (l) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${l}`))
    .catch((err: Error) => `HTTP tunnel rows failed: ${err.message.split('\n')[0]}`);
}

try {
  const ONLY_ONE = ONLY_NETSTACK || ONLY_ZKSD || ONLY_UDP || ONLY_EXPOSE;
  const results = ONLY_ONE ? null : await main();
  if (results) console.log(formatReport(results));
  const netstack = ONLY_ZKSD || ONLY_UDP || ONLY_MAIN || ONLY_EXPOSE ? null : await netstackRows();
  if (netstack !== null) console.log(`\n${typeof netstack === 'string' ? `- ${netstack}` : formatNetstack(netstack)}`);
  const zksd = ONLY_NETSTACK || ONLY_UDP || ONLY_MAIN || ONLY_EXPOSE ? null : await zksdRows();
  if (zksd !== null) console.log(`\n${typeof zksd === 'string' ? `- ${zksd}` : formatDaemon(zksd)}`);
  const udp = ONLY_NETSTACK || ONLY_ZKSD || ONLY_MAIN || ONLY_EXPOSE ? null : await udpRows();
  if (udp !== null) console.log(`\n${typeof udp === 'string' ? `- ${udp}` : formatUdp(udp)}`);
  const expose = ONLY_NETSTACK || ONLY_ZKSD || ONLY_UDP || ONLY_MAIN ? null : await exposeRows();
  if (expose !== null) console.log(`\n${typeof expose === 'string' ? `- ${expose}` : formatExpose(expose)}`);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = ONLY_NETSTACK ? 'netstack.json' : ONLY_ZKSD ? 'zksd.json' : ONLY_UDP ? 'udp.json' : ONLY_EXPOSE ? 'expose.json' : 'latest.json';
  const body = ONLY_NETSTACK ? { settings: NETSTACK, netstack } : ONLY_ZKSD ? { settings: ZKSD, zksd } : ONLY_UDP ? { settings: UDP, udp }
    : ONLY_EXPOSE ? { settings: EXPOSE, expose } : { settings: S, ...results, netstack, zksd, udp, expose };
  writeFileSync(`${dir}${file}`, `${JSON.stringify(body, null, 2)}\n`);
  console.error(`[bench] wrote bench/results/${file}`);
} catch (err) {
  console.error('bench failed:', err);
  process.exitCode = 1;
} finally {
  await killAll();
  clearTimeout(watchdog);
}
