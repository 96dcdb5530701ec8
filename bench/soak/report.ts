// The soak's markdown report: verdict, chaos done, flows per lane and kind (bytes both ways, sha256/echo
// mismatches, failures, durations), UDP datagram counters, resume as the processes logged it, RSS per process
// (first, after warm-up, end, max, trend) beside the SVG plot, every failure with the chaos event before it, and the
// log lines that look like trouble.
import type { KillRoute } from './lane';
import type { SoakOptions } from './options';
import { percentile, KINDS, type Kind, type KindSummary } from './tally';
import type { ResumeLog } from './resume-log';
import type { RssSample } from './rss';

export interface ChaosEvent {
  /** ms since the start. */
  t: number;
  kind: 'kill' | 'restart';
  route?: KillRoute;
  /** lane → TCP pairs cut (kill) or ms workerd was away (restart); an error text if it failed. */
  perLane: Record<string, number | string>;
}

export interface Failure {
  t: number;
  lane: string;
  kind: Kind;
  id: number;
  error: string;
  ms: number;
}

export interface LaneOutcome {
  name: string;
  summary: Record<Kind, KindSummary> | null;
  skipped: number;
  log: ResumeLog;
  /** Why the lane produced no summary, if it did not. */
  error: string | null;
}

export interface MemorySample {
  t: number;
  lane: string;
  rssMB: number;
  heapMB: number;
  externalMB: number;
}

export interface SoakRun {
  startedAt: Date;
  opts: SoakOptions;
  durationMs: number;
  lanes: LaneOutcome[];
  lanesNotRun: Array<{ name: string; why: string }>;
  chaos: ChaosEvent[];
  failures: Failure[];
  samples: RssSample[];
  names: string[];
  /** What a lane's client reports of its own memory (zksd), over time. */
  memorySamples?: MemorySample[];
  plotFile: string;
  logDir: string;
  /** Why the soak stopped before its end, if it did (setup failed, a driver did not start). */
  error: string | null;
  /** Ended early by a signal. */
  interrupted: boolean;
}

const MiB = 2 ** 20;
const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
const bytes = (n: number) => (n >= 1e9 ? `${f(n / 1e9, 2)} GB` : n >= 1e6 ? `${f(n / 1e6, 1)} MB` : n >= 1e3 ? `${f(n / 1e3, 1)} kB` : `${n} B`);
const clock = (ms: number) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Relay-mode flows that failed, counting a lane without a summary as one failure. */
export function failedFlows(run: Pick<SoakRun, 'lanes'>): number {
  return run.lanes.reduce((n, l) => n + (l.summary ? KINDS.reduce((k, kind) => k + l.summary![kind].failed, 0) : 1), 0);
}

/** Least-squares slope of (t ms, bytes) in MiB per hour. */
function slopeMiBPerHour(points: Array<[number, number]>): number {
  if (points.length < 3) return NaN;
  const n = points.length;
  const mx = points.reduce((a, [t]) => a + t, 0) / n;
  const my = points.reduce((a, [, b]) => a + b, 0) / n;
  const sxy = points.reduce((a, [t, b]) => a + (t - mx) * (b - my), 0);
  const sxx = points.reduce((a, [t]) => a + (t - mx) ** 2, 0);
  return sxx > 0 ? ((sxy / sxx) * 3_600_000) / MiB : NaN;
}

/** The Worker's processes start afresh at each restart: their trend counts from the last one (plus a settling minute). */
const RESTARTED = /^(workerd|zks worker)/;

function rssRows(run: SoakRun): string[][] {
  const warmAt = Math.max(60_000, run.durationMs * 0.1);
  const lastRestart = run.chaos.filter((c) => c.kind === 'restart').reduce((a, c) => Math.max(a, c.t + 60_000), 0);
  return run.names.map((name) => {
    const pts = run.samples.flatMap((s): Array<[number, number]> => (s.rss[name] === undefined ? [] : [[s.t, s.rss[name]!]]));
    if (!pts.length) return [name, '–', '–', '–', '–', '–', '–'];
    const warm = pts.find(([t]) => t >= warmAt) ?? pts[pts.length - 1]!;
    const end = pts[pts.length - 1]!;
    const max = pts.reduce((a, [, b]) => Math.max(a, b), 0);
    const from = RESTARTED.test(name) ? Math.max(warm[0], lastRestart) : warm[0];
    // A trend over less than two minutes says nothing.
    const trend = end[0] - from >= 120_000 ? slopeMiBPerHour(pts.filter(([t]) => t >= from)) : NaN;
    return [name, f(pts[0]![1] / MiB, 1), f(warm[1] / MiB, 1), f(end[1] / MiB, 1), f(max / MiB, 1), f((end[1] - warm[1]) / MiB, 1), f(trend, 1)];
  });
}

export function formatSoakReport(run: SoakRun): string {
  const o = run.opts;
  const failed = failedFlows(run);
  const total = run.lanes.reduce((n, l) => n + (l.summary ? KINDS.reduce((k, kind) => k + l.summary![kind].flows, 0) : 0), 0);
  const checked = run.lanes.reduce((n, l) => n + (l.summary ? KINDS.reduce((k, kind) => k + l.summary![kind].received, 0) : 0), 0);
  const kills = run.chaos.filter((c) => c.kind === 'kill');
  const restarts = run.chaos.filter((c) => c.kind === 'restart');
  const out: string[] = [];
  out.push(`# Soak — ${run.startedAt.toISOString()}, ${f(run.durationMs / 60_000, 1)} min`);
  out.push('');
  if (run.error) out.push(`**NOT COMPLETE**: ${run.error}\n`);
  if (run.interrupted) out.push(`Ended early by a signal, after ${f(run.durationMs / 60_000, 1)} of ${o.minutes} min.\n`);
  out.push(`**${failed === 0 && !run.error ? 'PASS' : 'FAIL'}**: ${failed} of ${total} relay-mode flows failed; ${bytes(checked)} received and checked (sha256 / echo).`);
  out.push('');
  const byRoute = (r: KillRoute) => kills.filter((k) => k.route === r).length;
  const cut = (lane: string) => kills.reduce((n, k) => n + (typeof k.perLane[lane] === 'number' ? (k.perLane[lane] as number) : 0), 0);
  out.push(`Chaos: ${kills.length} WebSocket kills every ${o.killEverySec} s (${byRoute('all')} all, ${byRoute('client')} client side only, ` +
    `${byRoute('exit')} exit side only; TCP connections cut: ${run.lanes.map((l) => `${l.name} ${cut(l.name)}`).join(', ')}); ` +
    `${restarts.length} workerd restarts every ${o.restartEverySec} s (away: ${run.lanes.map((l) => {
      const ms = restarts.map((r) => r.perLane[l.name]).filter((v): v is number => typeof v === 'number');
      return `${l.name} p50 ${f(percentile(ms, 50) / 1000, 1)} s, max ${f(ms.reduce((a, b) => Math.max(a, b), -Infinity) / 1000, 1)} s`;
    }).join('; ')}).`);
  const chaosErrors = run.chaos.flatMap((c) => Object.entries(c.perLane).filter(([, v]) => typeof v === 'string').map(([lane, v]) => `${clock(c.t)} ${c.kind} ${lane}: ${v}`));
  if (chaosErrors.length) out.push(`\nChaos that failed: ${chaosErrors.slice(0, 10).join('; ')}`);
  for (const l of run.lanesNotRun) out.push(`\nLane not run: ${l.name} — ${l.why}`);
  out.push('');

  out.push('## Flows (relay mode: goal 0 failed)');
  out.push('');
  const rows: string[][] = [];
  for (const l of run.lanes) {
    if (!l.summary) {
      rows.push([l.name, '(no summary)', '–', '–', '1', '–', '–', '–', '–', '–', '–']);
      continue;
    }
    for (const k of KINDS) {
      const s = l.summary[k];
      if (!s.flows) continue;
      rows.push([l.name, k, String(s.flows), String(s.ok), String(s.failed), String(s.corrupt), bytes(s.sent), bytes(s.received),
        f(s.p50Ms), f(s.p99Ms), f(s.maxMs)]);
    }
  }
  out.push(table(['lane', 'kind', 'flows', 'sha/echo ok', 'failed', 'mismatch', 'bytes sent', 'bytes received', 'p50 ms', 'p99 ms', 'max ms'], rows));
  out.push('');
  out.push('UDP datagrams (lost while a WebSocket is down is expected: resume does not replay datagrams; long flows must answer at the end):');
  out.push('');
  out.push(table(['lane', 'long flows', 'datagrams sent', 'echoed intact', 'lost %', 'duplicates', 'corrupt', 'longest silence s'],
    run.lanes.flatMap((l) => {
      const u = l.summary?.['udp long'].udp;
      if (!u) return [];
      return [[l.name, String(l.summary!['udp long'].flows), String(u.sent), String(u.received), f(u.sent ? (100 * (u.sent - u.received)) / u.sent : NaN, 2),
        String(u.duplicates), String(u.corrupt), f(u.maxSilenceMs / 1000, 1)]];
    })));
  const skipped = run.lanes.filter((l) => l.skipped > 0);
  if (skipped.length) out.push(`\nShort flows not started because the in-flight cap (200 per kind) was reached: ${skipped.map((l) => `${l.name} ${l.skipped}`).join(', ')}.`);
  out.push('');

  out.push('## Resume, as the processes logged it');
  out.push('');
  out.push(table(['lane', 'client: WebSocket lost', 'resumed', 'resume p50 ms', 'resume p99 ms', 'max ms', 'not resumed', 'streams reset', 'exit: sessions detached', 'exit: resumed', 'exit: sessions ended'],
    run.lanes.map((l) => {
      const g = l.log;
      return [l.name, String(g.lost), String(g.resumed), f(percentile(g.resumeMs, 50)), f(percentile(g.resumeMs, 99)), f(g.resumeMs.reduce((a, b) => Math.max(a, b), -Infinity)),
        String(g.notResumed), String(g.streamsReset), String(g.exitDetached), String(g.exitResumed), String(g.exitEnded)];
    })));
  out.push('');

  out.push('## RSS per process (MiB; goal: flat)');
  out.push('');
  out.push(`Sampled every ${o.sampleEverySec} s from /proc/PID/status (VmRSS), summed per name; warm-up = the first ${f(Math.max(60, run.durationMs / 10_000), 0)} s. ` +
    'workerd restarts with the Worker, so its line starts again at each restart.');
  out.push('');
  out.push(table(['process [lane]', 'first', 'after warm-up', 'end', 'max', 'end − warm-up', 'trend MiB/h (after warm-up; Worker: since its last restart + 60 s)'], rssRows(run)));
  out.push('');
  out.push(`![RSS over time](${run.plotFile})`);
  out.push('');
  const mem = run.memorySamples ?? [];
  if (mem.length) {
    out.push("zksd's own figures (its `zks status` memory, MB): is a growth in the V8 heap, in Buffers (external), or outside both (native, allocator)?");
    out.push('');
    const warm = Math.max(60_000, run.durationMs / 10);
    const rows = [...new Set(mem.map((m) => m.lane))].map((lane) => {
      const of = mem.filter((m) => m.lane === lane);
      const after = of.find((m) => m.t >= warm) ?? of[0]!;
      const end = of[of.length - 1]!;
      const max = (k: 'rssMB' | 'heapMB' | 'externalMB') => f(of.reduce((a, m) => Math.max(a, m[k]), 0), 1);
      return [lane, `${f(after.rssMB, 1)} → ${f(end.rssMB, 1)} (max ${max('rssMB')})`, `${f(after.heapMB, 1)} → ${f(end.heapMB, 1)} (max ${max('heapMB')})`,
        `${f(after.externalMB, 1)} → ${f(end.externalMB, 1)} (max ${max('externalMB')})`];
    });
    out.push(table(['lane', 'RSS after warm-up → end', 'V8 heap', 'Buffers (external)'], rows));
    out.push('');
  }

  if (run.failures.length) {
    const lastChaos = (t: number) => [...run.chaos].reverse().find((c) => c.t <= t);
    const chaosName = (c: ChaosEvent | undefined) => (c ? `${c.kind}${c.route ? ` ${c.route}` : ''}` : 'none');
    out.push(`## Failures (${run.failures.length})`);
    out.push('');
    out.push('By cause (error with numbers masked, and the chaos event before the failure):');
    out.push('');
    const groups = new Map<string, { lane: string; kind: string; after: string; error: string; n: number; first: number; last: number; sinceChaos: number[] }>();
    for (const x of run.failures) {
      const c = lastChaos(x.t - x.ms);
      const error = x.error.replace(/\b\d+\b/g, 'N');
      const key = [x.lane, x.kind, chaosName(c), error].join('\0');
      const g = groups.get(key) ?? { lane: x.lane, kind: x.kind, after: chaosName(c), error, n: 0, first: x.t, last: x.t, sinceChaos: [] };
      g.n++;
      g.last = x.t;
      if (c) g.sinceChaos.push((x.t - x.ms - c.t) / 1000);
      groups.set(key, g);
    }
    out.push(table(['lane', 'kind', 'count', 'first at', 'last at', 'started after', 'started s after it (min–max)', 'error'],
      [...groups.values()].sort((a, b) => b.n - a.n).map((g) => [g.lane, g.kind, String(g.n), clock(g.first), clock(g.last), g.after,
        g.sinceChaos.length ? `${f(g.sinceChaos.reduce((a, b) => Math.min(a, b)), 1)}–${f(g.sinceChaos.reduce((a, b) => Math.max(a, b)), 1)}` : '–', g.error.replace(/\|/g, '/')])));
    out.push('');
    out.push('First 20:');
    out.push('');
    out.push(table(['at', 'lane', 'kind', 'flow', 'ran s', 'last chaos before it started', 'error'], run.failures.slice(0, 20).map((x) => {
      const c = lastChaos(x.t - x.ms);
      return [clock(x.t), x.lane, x.kind, String(x.id), f(x.ms / 1000, 1), c ? `${chaosName(c)} at ${clock(c.t)}` : '–', x.error.replace(/\|/g, '/')];
    })));
    out.push('');
  }
  const notable = run.lanes.flatMap((l) => [...l.log.notable].map(([line, n]) => [l.name, String(n), `\`${line.replace(/[|`]/g, '/')}\``]));
  if (notable.length) {
    out.push('## Log lines worth a look (numbers masked as N)');
    out.push('');
    out.push(table(['lane', 'count', 'line'], notable.sort((a, b) => Number(b[1]) - Number(a[1])).slice(0, 30)));
    out.push('');
  }
  out.push('## Settings');
  out.push('');
  out.push(`Per lane: bulk ${o.bulkMB} MB transfers at ${o.bulkRateMBps} MB/s (one download and one upload loop), ${o.shortPerSec} short connections/s, ` +
    `${o.idle} idle streams, ${o.udpFlows} long UDP flows, ${o.udpShortPerSec} short UDP flows/s; flow timeout ${o.flowTimeoutSec} s (+ transfer time). ` +
    `Logs: ${run.logDir}`);
  return `${out.join('\n')}\n`;
}
