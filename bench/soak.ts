// `npm run soak -- --minutes 30`: relay mode under chaos for a bounded time. Two lanes of real processes — SOCKS5
// through `zks p2p-client` (lane-socks.ts) and, as root, zksd in a namespace topology (lane-zksd.ts) — carry bulk
// downloads and uploads, short connections, idle streams and UDP flows (driver.ts), while every --kill-every
// seconds the forwarders in front of workerd reset the WebSockets (all, then only the clients', then only the
// exit's) and every --restart-every seconds workerd itself restarts. Reports per-flow sha256/echo checks, failed
// flows (goal 0), resume as logged, and RSS of every process over time: bench/results/soak-<time>.md + .svg + .json
// and a log directory. Exit code 1 if any relay-mode flow failed, 2 if the soak itself could not run.
// Traffic stays on 127.0.0.1 and inside the namespaces the soak creates; everything started is stopped at the end,
// on errors and on SIGINT (the first one ends the run early with a report, a second one aborts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, scriptArgv, type KillRoute, type Lane } from './soak/lane';
import { startSocksLane, SOCKS_LANE } from './soak/lane-socks';
import { startZksdLane, zksdRunnable, ZKSD_LANE } from './soak/lane-zksd';
import { parseSoakOptions, USAGE } from './soak/options';
import { rssSvg } from './soak/plot';
import { startChild, type Child } from './soak/procs';
import { failedFlows, formatSoakReport, type ChaosEvent, type Failure, type LaneOutcome } from './soak/report';
import { RssSampler } from './soak/rss';
import type { MemorySample } from './soak/report';
import { snapshotApp } from './soak/snapshot';
import type { DriverConfig, DriverEvent } from './soak/tally';

const opts = parseSoakOptions(process.argv.slice(2));
if (!opts) {
  console.log(USAGE);
  process.exit(0);
}
const MAX_IN_FLIGHT = 200;
const KILL_ROUTES: KillRoute[] = ['all', 'client', 'exit'];
const startedAt = new Date();
const t0 = Date.now();
const stamp = startedAt.toISOString().replace(/\..*$/, '').replace(/:/g, '-');
const resultsDir = join(ROOT, 'bench/results');
const base = join(resultsDir, `soak-${stamp}`);
const logDir = base;
mkdirSync(logDir, { recursive: true });
const say = (line: string) => console.log(`[soak ${clock(Date.now() - t0)}] ${line}`);
function clock(ms: number): string {
  return `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;
}

// The first signal ends the run early (report written); a second one aborts (process 'exit' hooks kill it all).
let interrupted = false;
let wake = () => {};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`soak: ${sig}: ending the run early (again to abort)`);
    wake();
  });
}
const sleepUntil = (at: number) => new Promise<void>((resolve) => {
  const timer = setTimeout(resolve, Math.max(0, at - Date.now()));
  wake = () => (clearTimeout(timer), resolve());
});

if (opts.build) execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
const bin = snapshotApp(join(logDir, 'app'));

const lanes: Lane[] = [];
const memorySamples: MemorySample[] = [];
let memoryTimer: ReturnType<typeof setInterval> | null = null;
const lanesNotRun: Array<{ name: string; why: string }> = [];
const drivers = new Map<Lane, Child>();
const outcomes = new Map<Lane, LaneOutcome>();
const chaos: ChaosEvent[] = [];
const failures: Failure[] = [];
const sampler = new RssSampler(SOCKS_LANE, ZKSD_LANE, t0);
const progress = new Map<Lane, string>();
let exitCode = 0;
let runError: string | null = null;
let runEnd = t0;

function startDriver(lane: Lane): Child {
  const cfg: DriverConfig = {
    lane: lane.name, socksPort: lane.socksPort, target: lane.target,
    bulkBytes: Math.round(opts!.bulkMB * 1e6), bulkRate: Math.round(opts!.bulkRateMBps * 1e6),
    shortPerSec: opts!.shortPerSec, shortBytes: 1024, idle: opts!.idle,
    udpFlows: opts!.udpFlows, udpIntervalMs: 100, udpBytes: 200, udpShortPerSec: opts!.udpShortPerSec,
    flowTimeoutMs: opts!.flowTimeoutSec * 1000, maxInFlight: MAX_IN_FLIGHT,
  };
  const d = startChild(`driver ${lane.name}`, scriptArgv('driver.ts', cfg), { ns: lane.driverNs, logFile: join(logDir, `driver-${lane.name.replace(/\W+/g, '-')}.log`) });
  const outcome: LaneOutcome = { name: lane.name, summary: null, skipped: 0, log: lane.log, error: 'the driver ended without a summary' };
  outcomes.set(lane, outcome);
  d.onLine((line) => {
    if (!line.startsWith('{"ev"')) return;
    const e = JSON.parse(line) as DriverEvent;
    if (e.ev === 'fail') {
      failures.push({ t: e.t - t0, lane: e.lane, kind: e.kind, id: e.id, error: e.error, ms: e.ms });
      if (failures.length <= 20) say(`FAILED ${e.lane} ${e.kind} #${e.id}: ${e.error}${failures.length === 20 ? ' (further failures: in the report)' : ''}`);
    } else if (e.ev === 'summary') {
      Object.assign(outcome, { summary: e.kinds, skipped: e.skipped, error: null });
    } else if (e.ev === 'tick' && lane === lanes[0]) {
      say(lanes.map((l) => `${l.name}: ${progress.get(l) ?? '…'}`).join(' · ') + ` · kills ${chaos.filter((c) => c.kind === 'kill').length}, restarts ${chaos.filter((c) => c.kind === 'restart').length}`);
    }
    if (e.ev === 'tick') progress.set(lane, `${Object.values(e.done).reduce((a, b) => a + b, 0)} flows, ${e.failed} failed, ${e.inFlight} in flight`);
  });
  return d;
}

/** One chaos event on every lane at once; a lane whose part fails records the error instead of a number. */
async function onEveryLane(kind: ChaosEvent['kind'], route: KillRoute | undefined, act: (l: Lane) => Promise<number>): Promise<void> {
  const ev: ChaosEvent = { t: Date.now() - t0, kind, route, perLane: {} };
  chaos.push(ev);
  await Promise.all(lanes.map(async (l) => {
    try {
      ev.perLane[l.name] = Math.round(await act(l));
    } catch (e) {
      ev.perLane[l.name] = (e as Error).message.split('\n')[0]!;
    }
  }));
  const what = kind === 'kill' ? `kill ${route}: TCP connections cut` : 'workerd restarted, away ms';
  say(`${what}: ${Object.entries(ev.perLane).map(([n, v]) => `${n} ${v}`).join(', ')}`);
}

async function chaosLoop(until: number): Promise<void> {
  const start = Date.now();
  const killMs = opts!.killEverySec * 1000;
  const restartMs = opts!.restartEverySec * 1000;
  let nextKill = killMs ? start + killMs : Infinity;
  let nextRestart = restartMs ? start + restartMs : Infinity;
  let kills = 0;
  while (!interrupted) {
    await sleepUntil(Math.min(nextKill, nextRestart, until));
    const now = Date.now();
    if (interrupted || now >= until) return;
    if (now >= nextRestart) {
      await onEveryLane('restart', undefined, (l) => l.restartWorker());
      nextRestart += restartMs;
      while (nextKill <= now) nextKill += killMs; // a kill due with a restart: the restart cut everything anyway
    } else if (now >= nextKill) {
      const route = KILL_ROUTES[kills++ % KILL_ROUTES.length]!;
      await onEveryLane('kill', route, (l) => l.kill(route));
      nextKill += killMs;
    }
  }
}

try {
  say(`starting: ${opts.minutes} min, kills every ${opts.killEverySec} s, workerd restarts every ${opts.restartEverySec} s; logs in ${logDir}`);
  lanes.push(await startSocksLane(logDir, bin));
  const why = opts.zksd ? zksdRunnable() : '--no-zksd';
  if (why) lanesNotRun.push({ name: ZKSD_LANE, why });
  else lanes.push(await startZksdLane(logDir, bin));
  sampler.start(opts.sampleEverySec * 1000);
  // The lanes' own memory figures (zksd: heap and Buffers beside RSS), as often as RSS.
  memoryTimer = setInterval(() => {
    for (const l of lanes) {
      void l.memory?.().then((m) => m && memorySamples.push({ t: Date.now() - t0, lane: l.name, ...m }));
    }
  }, opts.sampleEverySec * 1000);
  for (const l of lanes) drivers.set(l, startDriver(l));
  await Promise.all([...drivers.values()].map((d) => d.waitLine(/"ev":"ready"/, opts!.flowTimeoutSec * 1000)));
  say(`lanes up (${lanes.map((l) => l.name).join(', ')}); traffic running`);
  await chaosLoop(Date.now() + opts.minutes * 60_000);
  runEnd = Date.now();
  say('stopping traffic; in-flight flows finish, then idle streams and UDP flows are checked');
  const bulkMs = opts.bulkRateMBps > 0 ? (opts.bulkMB / opts.bulkRateMBps) * 1000 : 0;
  const summaryWait = 2 * opts.flowTimeoutSec * 1000 + 2 * bulkMs + 60_000;
  await Promise.all([...drivers].map(async ([lane, d]) => {
    const summary = d.waitLine(/"ev":"summary"/, summaryWait);
    d.send('stop');
    await summary.catch((e: Error) => void (outcomes.get(lane)!.error = e.message.split('\n')[0]!));
  }));
  sampler.sample();
} catch (e) {
  console.error(`soak: ${(e as Error).stack ?? e}`);
  runError = (e as Error).message;
  exitCode = 2;
} finally {
  sampler.stop();
  if (memoryTimer) clearInterval(memoryTimer);
  if (runEnd === t0) runEnd = Date.now();
  for (const d of drivers.values()) await d.stop();
  for (const l of lanes) await l.stop().catch((e: Error) => console.error(`soak: stopping ${l.name}: ${e.message}`));
}

const plotFile = `${base}.svg`;
const run = {
  startedAt, opts, durationMs: runEnd - t0,
  lanes: lanes.map((l) => outcomes.get(l) ?? { name: l.name, summary: null, skipped: 0, log: l.log, error: 'no driver' }),
  lanesNotRun, chaos, failures, samples: sampler.samples, names: sampler.names(), memorySamples, plotFile: `soak-${stamp}.svg`, logDir, error: runError, interrupted,
};
const report = formatSoakReport(run);
writeFileSync(`${base}.md`, report);
// One panel per lane; the soak's own process joins the first.
const panels = run.lanes.map((l, i) => ({ title: `${l.name} lane`, names: run.names.filter((n) => n.endsWith(`[${l.name}]`) || (i === 0 && !/\[.*\]$/.test(n))) }));
writeFileSync(plotFile, rssSvg(`RSS per process — soak ${stamp}`, run.samples, panels.filter((p) => p.names.length),
  { restartsMs: chaos.filter((c) => c.kind === 'restart').map((c) => c.t), killsMs: chaos.filter((c) => c.kind === 'kill').map((c) => c.t) }));
writeFileSync(`${base}.json`, `${JSON.stringify({ ...run, lanes: run.lanes.map((l) => ({ ...l, log: { ...l.log, notable: [...l.log.notable] } })) }, null, 1)}\n`);
console.log(`\n${report}`);
console.log(`report: ${base}.md\nplot:   ${plotFile}`);
for (const l of run.lanes) if (l.error) console.error(`soak: ${l.name}: ${l.error}`);
if (exitCode === 0 && failedFlows(run) > 0) exitCode = 1;
process.exit(exitCode);
