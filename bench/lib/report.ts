// Turns one run's results into the markdown tables `npm run bench` prints (and the JSON beside them).
// Every figure sits beside a baseline from the same run: throughput as ratios to direct loopback, to the
// bare pipe Worker and (relay mode) to zks direct mode; latency as differences between configs; process CPU
// and RSS side by side.

export interface ThroughputRow {
  config: string;
  /** Medians over the samples, MB/s. */
  down1: number;
  up1: number;
  down8: number;
  up8: number;
  /** Medians of per-round ratios (same round = same machine state). */
  vsDirect: Ratios | null;
  vsBare: Ratios | null;
  /** Relay mode only: ratios to zks direct mode (the same Worker code, no room, no exit peer). */
  vsZks: Ratios | null;
  /** Longest no-progress gap of the single stream in any 1-stream sample, ms (stall detector). */
  maxGapMs: number;
  /** 8-stream samples: worst (slowest stream's bytes ÷ mean stream's bytes); 1 = perfectly fair. */
  fairDown8: number;
  fairUp8: number;
  errors: string[];
}

export interface Ratios {
  down1: number;
  up1: number;
  down8: number;
  up8: number;
}

export interface LatencyRow {
  config: string;
  usableP50: number;
  usableP99: number;
  echoP50: number;
  echoP99: number;
  samples: number;
  streamsPerSec: number;
  churnErrors: number;
  greetDelivered: number;
  greetLost: number;
  errors: string[];
}

export interface MemoryRow {
  process: string;
  config: string;
  beforeMB: number;
  withIdleMB: number;
  afterCloseMB: number;
  peakDuringThroughputMB: number;
  idleStreams: number;
}

export interface CpuRow {
  process: string;
  config: string;
  downCpuSecPerGB: number;
  upCpuSecPerGB: number;
}

export interface Target {
  name: string;
  value: string;
  pass: boolean | null;
}

/** A figure reported without a pass/fail threshold. */
export interface Figure {
  name: string;
  value: string;
}

export interface LatencyDelta {
  /** e.g. 'zks − bare pipe'. */
  name: string;
  echoP50Ms: number;
  usableP50Ms: number;
}

export interface Results {
  meta: Record<string, string | number>;
  throughput: ThroughputRow[];
  latency: LatencyRow[];
  addedLatencyP50Ms: number;
  latencyDeltas: LatencyDelta[];
  memory: MemoryRow[];
  cpu: CpuRow[];
  /** The same with a native application on the SOCKS5 port (lib/native-app.ts); empty when nc is missing. */
  cpuNative: CpuRow[];
  aead: Array<{ name: string; mbPerSec: number }>;
  targets: Target[];
  figures: Figure[];
  diagnostics: string[];
}

const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratios = (r: Ratios | null) => (r ? [r.down1, r.up1, r.down8, r.up8].map((x) => f(x, 2)).join(' / ') : '–');

function table(head: string[], rows: string[][]): string {
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

export function formatReport(r: Results): string {
  const out: string[] = [];
  out.push(`## ZKS-Tunnel bench — ${Object.entries(r.meta).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push('');
  out.push('### Throughput (MB/s, 10^6 bytes; median of samples; ratios d1 / u1 / d8 / u8, median of per-round ratios)');
  out.push(table(
    ['config', '1-stream down MB/s', '1-stream up', '8-stream down', '8-stream up', 'ratio to direct', 'ratio to bare pipe', 'ratio to zks (direct mode)'],
    r.throughput.map((t) => [
      t.config, f(t.down1), f(t.up1), f(t.down8), f(t.up8), ratios(t.vsDirect), ratios(t.vsBare), ratios(t.vsZks),
    ]),
  ));
  out.push('');
  out.push('Stalls and fairness: longest no-progress gap in any 1-stream sample; 8-stream min/mean = slowest stream ÷ mean stream (1 = fair).');
  out.push(table(
    ['config', 'longest 1-stream gap ms', '8-stream down min/mean', '8-stream up min/mean'],
    r.throughput.map((t) => [t.config, f(t.maxGapMs), f(t.fairDown8, 2), f(t.fairUp8, 2)]),
  ));
  out.push('');
  out.push('### Connect latency and stream rate');
  out.push('usable = dial start → dial resolved (direct: TCP connected; bare pipe: WebSocket open; zks, zks relay: SOCKS5 reply');
  out.push('received — for relay mode that is after the exit peer\'s connect() result came back through the room).');
  out.push('echo = dial start → one byte written right after `usable` is back from the echo origin (the path is proven end to end;');
  out.push('the same definition for every config, so zks − bare pipe compares like with like). Streams/s: N connects, 50 at a time,');
  out.push('each dial → echo → close. Server-first: the origin writes one byte on accept before the client sends anything.');
  out.push(table(
    ['config', 'usable p50 ms', 'usable p99', 'echo p50 ms', 'echo p99', 'n', 'streams/s', 'churn errors', 'server-first delivered / lost'],
    r.latency.map((l) => [
      l.config, f(l.usableP50, 2), f(l.usableP99, 2), f(l.echoP50, 2), f(l.echoP99, 2), String(l.samples),
      f(l.streamsPerSec), String(l.churnErrors), `${l.greetDelivered} / ${l.greetLost}`,
    ]),
  ));
  for (const d of r.latencyDeltas) out.push(`${d.name}: echo p50 ${f(d.echoP50Ms, 2)} ms, usable p50 ${f(d.usableP50Ms, 2)} ms`);
  out.push('');
  out.push('### Memory (VmRSS, MB = 10^6 bytes)');
  out.push(table(
    ['process', 'config', 'before', 'with idle streams', 'added', 'per stream KiB', 'after close', 'peak in throughput'],
    r.memory.map((m) => [
      m.process, m.config, f(m.beforeMB, 1), `${f(m.withIdleMB, 1)} (${m.idleStreams})`, f(m.withIdleMB - m.beforeMB, 1),
      f(((m.withIdleMB - m.beforeMB) * 1e6) / 1024 / m.idleStreams, 1), f(m.afterCloseMB, 1), f(m.peakDuringThroughputMB, 1),
    ]),
  ));
  out.push('');
  out.push('### CPU (user+system seconds per GB moved, 1-stream samples; GB = 10^9 bytes)');
  out.push(table(
    ['process', 'config', 'download CPU-s/GB', 'upload CPU-s/GB'],
    r.cpu.map((c) => [c.process, c.config, f(c.downCpuSecPerGB, 2), f(c.upCpuSecPerGB, 2)]),
  ));
  out.push('');
  if (r.cpuNative.length) {
    out.push('CPU with a native application on the SOCKS5 port (OpenBSD nc; median of rounds; nc and each client on CPU 0, servers and origin on CPU 1; ssh -D = OpenSSH as the baseline; bench/lib/native-app.ts):');
    out.push(table(
      ['process', 'config', 'download CPU-s/GB', 'upload CPU-s/GB'],
      r.cpuNative.map((c) => [c.process, c.config, f(c.downCpuSecPerGB, 2), f(c.upCpuSecPerGB, 2)]),
    ));
    out.push('');
  }
  out.push('### AEAD (64 KiB records, bench/aead.ts; ratio to node aes-256-gcm seal)');
  const base = r.aead[0]?.mbPerSec ?? NaN;
  out.push(table(['backend / suite / op', 'MB/s', 'ratio'], r.aead.map((a) => [a.name, f(a.mbPerSec), f(a.mbPerSec / base, 2)])));
  out.push('');
  out.push('### Targets');
  for (const t of r.targets) out.push(`- ${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.value}`);
  if (r.figures.length) {
    out.push('');
    out.push('### Figures (no threshold)');
    for (const x of r.figures) out.push(`- ${x.name}: ${x.value}`);
  }
  if (r.diagnostics.length) {
    out.push('');
    out.push('### Diagnostics');
    for (const d of r.diagnostics) out.push(`- ${d}`);
  }
  return out.join('\n');
}
