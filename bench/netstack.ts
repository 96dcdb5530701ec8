// Netstack rows of `npm run bench` (alone: `npm run bench -- netstack`): our TCP/IP stack with no tunnel behind
// it, against the Linux stack in the same run. A throwaway namespace holds a kernel client (bench/lib/ns-client.ts);
// two daemon processes (bench/lib/netstack-daemon.ts) each own a TUN in it — offload (virtio-net header, TSO,
// 64 KiB segments) and plain (1500-byte packets) — with an in-process sink, source and echo. Baseline: the same
// client against kernel servers on the namespace's loopback. Rows: single-flow upload/download MB/s, flows set up
// per second, daemon RSS with 1 000 idle flows. Needs root; the namespace and every process are removed at the end.
// The kernel's congestion control decides how it sends uploads into the TUN, so the routes in the namespace pin
// Linux's default, cubic; where the host defaults to another (BBR paces its sends, so each event-loop turn sees
// about one segment) one more row measures the upload with that.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rssBytes, spawnProc, type Proc } from './lib/procs';
import { PORTS } from './lib/ns-client';
import type { Target } from './lib/report';

export interface NetstackSettings {
  seconds: number;
  samples: number;
  warmupMs: number;
  churnCount: number;
  churnConcurrency: number;
  idleFlows: number;
  /** Write a V8 CPU profile of each daemon into this directory (BENCH_PROFILE=dir). */
  profileDir?: string;
}

export interface NetstackThroughputRow {
  config: string;
  /** Medians over the samples, MB/s (10^6 bytes). */
  up: number;
  down: number;
  /** Medians of per-round ratios to the kernel baseline. */
  upRatio: number;
  downRatio: number;
}

export interface NetstackResults {
  throughput: NetstackThroughputRow[];
  flows: { netstackPerSec: number; kernelPerSec: number; ratio: number; count: number; errors: number };
  memory: { beforeMB: number; withIdleMB: number; addedMB: number; perFlowKiB: number; flows: number };
  targets: Target[];
  diagnostics: string[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT = `${ROOT}bench/lib/ns-client.ts`;
const DAEMON = `${ROOT}bench/lib/netstack-daemon.ts`;
const MB = 1e6;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function netstackRunnable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (a TUN device and a network namespace)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  if (!existsSync(`${ROOT}src/daemon/tun/build/Release/zks_tun.node`)) return 'the TUN addon is not built';
  return null;
}

function median(v: number[]): number {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

/** A namespace of our own; deleted by del(), and on process exit if still there. */
function createNamespace(): { name: string; del(): void } {
  const name = `zksbench-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up']);
  let live = true;
  const del = () => {
    if (!live) return;
    live = false;
    spawnSync('ip', ['netns', 'del', name], { timeout: 10_000 });
  };
  process.once('exit', del);
  return { name, del };
}

/** Runs ns-client once inside the namespace and returns its JSON line. */
async function client(ns: string, args: (string | number)[], timeoutMs: number): Promise<Record<string, unknown>> {
  const { proc, match } = await spawnProc(
    `ns-client ${args[0]}`, 'ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', CLIENT, ...args.map(String)], /^(\{.*\})$/, timeoutMs,
  );
  const r = JSON.parse(match[1]) as Record<string, unknown>;
  if (args[0] !== 'serve' && args[0] !== 'idle') await Promise.race([proc.exited, sleep(2_000)]);
  if (typeof r.error === 'string') throw new Error(`${args.join(' ')}: ${r.error}`);
  return r;
}

interface Daemon { proc: Proc; pid: number; target: string; dev: string; subnet: number }

/** Linux's default congestion control: what most machines that run zksd send with. */
const PINNED_CC = 'cubic';

/** The namespace's default congestion control (inherited from the host). */
function defaultCongestionControl(ns: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.ipv4.tcp_congestion_control'], { encoding: 'utf8' }).trim();
}

/** Sets (or with null clears) the congestion control of the routes the bench's connections take in `ns`. */
function routeCongestionControl(ns: string, d: Daemon | 'loopback', cc: string | null): void {
  const route = d === 'loopback'
    ? ['local', '127.0.0.1', 'dev', 'lo', 'table', 'local', 'proto', 'kernel', 'scope', 'host', 'src', '127.0.0.1']
    : [`10.79.${d.subnet}.0/24`, 'dev', d.dev, 'proto', 'kernel', 'scope', 'link', 'src', `10.79.${d.subnet}.1`];
  execFileSync('ip', ['-n', ns, 'route', 'replace', ...route, ...(cc === null ? [] : ['congctl', cc])]);
}

async function startDaemon(ns: string, offload: boolean, subnet: number, profileDir?: string): Promise<Daemon> {
  // One directory per daemon: the tsx loader thread writes a profile of its own beside the main thread's.
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}/netstack-${offload ? 'offload' : 'plain'}`] : [];
  const { proc, match } = await spawnProc(
    `netstack ${offload ? 'offload' : 'plain'}`, process.execPath,
    [...prof, '--import', 'tsx', DAEMON, ns, offload ? 'offload' : 'plain', '1500', String(subnet)], /^netstack ready (\{.*\})$/, 30_000,
  );
  const info = JSON.parse(match[1]) as { offload: boolean; pid: number; name: string };
  if (info.offload !== offload) throw new Error(`netstack daemon: asked for offload=${offload}, got ${info.offload}`);
  return { proc, pid: proc.pid, target: `10.79.${subnet}.2`, dev: info.name, subnet };
}

/** The daemon's interface counters (SIGUSR2 → one `stats {…}` line). */
async function daemonStats(d: Daemon): Promise<Record<string, unknown> | null> {
  const seen = d.proc.afterReady.length;
  try {
    process.kill(d.pid, 'SIGUSR2');
  } catch {
    return null;
  }
  for (let i = 0; i < 40; i++) {
    await sleep(25);
    const line = d.proc.afterReady.slice(seen).find((l) => l.startsWith('stats '));
    if (line) return JSON.parse(line.slice(6)) as Record<string, unknown>;
  }
  return null;
}

export async function runNetstackBench(S: NetstackSettings, log: (line: string) => void): Promise<NetstackResults> {
  const diagnostics: string[] = [];
  const attempt = async <T>(label: string, fn: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      diagnostics.push(`${label}: ${(err as Error).message.split('\n')[0]}`);
      return fallback;
    }
  };
  const ns = createNamespace();
  const procs: Proc[] = [];
  try {
    log(`netstack: namespace ${ns.name}; daemons (offload, plain) and the kernel baseline servers`);
    const [offload, plain, kernel] = await Promise.all([
      startDaemon(ns.name, true, 1, S.profileDir),
      startDaemon(ns.name, false, 2, S.profileDir),
      spawnProc('ns-client serve', 'ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', CLIENT, 'serve'], /^\{"ready":true\}$/, 30_000),
    ]);
    procs.push(offload.proc, plain.proc, kernel.proc);
    const hostCc = defaultCongestionControl(ns.name);
    for (const d of ['loopback', offload, plain] as const) routeCongestionControl(ns.name, d, PINNED_CC);
    type Config = { name: string; host: string; dirs: ('up' | 'down')[]; before?: () => void; after?: () => void };
    const configs: Config[] = [
      { name: `kernel loopback (baseline, ${PINNED_CC})`, host: '127.0.0.1', dirs: ['up', 'down'] },
      { name: 'netstack, offload (TSO/GSO)', host: offload.target, dirs: ['up', 'down'] },
      { name: 'netstack, plain (MTU 1500)', host: plain.target, dirs: ['up', 'down'] },
    ];
    if (hostCc !== PINNED_CC) {
      // Only the upload: in the download our netstack is the sender.
      configs.push({
        name: `netstack, offload, kernel sending with ${hostCc} (this host's default)`, host: offload.target, dirs: ['up'],
        before: () => routeCongestionControl(ns.name, offload, null),
        after: () => routeCongestionControl(ns.name, offload, PINNED_CC),
      });
    }
    const budget = (S.seconds * 1000 + S.warmupMs) + 20_000;

    // Memory first, on a daemon that has moved no bulk data yet.
    log(`netstack: ${S.idleFlows} idle flows`);
    await sleep(500);
    const before = rssBytes(offload.pid);
    let opened = 0;
    const idle = await attempt('idle flows', async () => {
      const { proc, match } = await spawnProc(
        'ns-client idle', 'ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', CLIENT, 'idle', offload.target, PORTS.echo, S.idleFlows, 50].map(String),
        /^(\{.*\})$/, 90_000,
      );
      const r = JSON.parse(match[1]) as { open: number; errors: number };
      opened = r.open;
      if (r.errors > 0) diagnostics.push(`idle flows: ${r.errors} of ${S.idleFlows} failed`);
      return proc;
    }, null);
    await sleep(1_000);
    const withIdle = rssBytes(offload.pid);
    const st = await daemonStats(offload);
    if (st && st.flows !== S.idleFlows) diagnostics.push(`idle flows: the daemon holds ${String(st.flows)} flows`);
    await idle?.kill();
    await sleep(500);

    log(`netstack: flows/s, ${S.churnCount} connections ${S.churnConcurrency} at a time`);
    const churn = async (host: string) => attempt(`churn ${host}`, async () => {
      const r = await client(ns.name, ['churn', host, PORTS.echo, S.churnCount, S.churnConcurrency], 90_000);
      if ((r.errors as number) > 0) diagnostics.push(`churn ${host}: ${String(r.errors)} errors (${String(r.firstError)})`);
      return r.perSec as number;
    }, NaN);
    const kernelPerSec = await churn('127.0.0.1');
    const netstackPerSec = await churn(offload.target);

    const rates = new Map<string, number[]>(); // `${config}/${dir}` per round
    for (let round = 0; round < S.samples; round++) {
      for (const c of configs) {
        log(`netstack: throughput round ${round + 1}/${S.samples}: ${c.name}`);
        c.before?.();
        for (const dir of c.dirs) {
          const port = dir === 'up' ? PORTS.sink : PORTS.source;
          const r = await attempt(`${c.name} ${dir} round ${round + 1}`, () => client(ns.name, [dir, c.host, port, S.seconds, S.warmupMs], budget), null);
          const list = rates.get(`${c.name}/${dir}`) ?? [];
          list.push(r ? (r.mbPerSec as number) : NaN);
          rates.set(`${c.name}/${dir}`, list);
          await sleep(200);
        }
        c.after?.();
      }
    }
    for (const d of [offload, plain]) {
      const s = await daemonStats(d);
      const i = s?.iface as Record<string, number> | undefined;
      if (i && (i.badChecksum > 0 || i.malformed > 0)) diagnostics.push(`${d.proc.name}: ${i.badChecksum} bad checksums, ${i.malformed} malformed packets`);
    }

    const base = configs[0].name;
    const ratio = (name: string, dir: 'up' | 'down') => {
      const a = rates.get(`${name}/${dir}`) ?? [];
      const b = rates.get(`${base}/${dir}`) ?? [];
      return median(a.map((x, i) => x / b[i]));
    };
    const throughput = configs.map((c) => ({
      config: c.name,
      up: median(rates.get(`${c.name}/up`) ?? []),
      down: median(rates.get(`${c.name}/down`) ?? []),
      upRatio: ratio(c.name, 'up'),
      downRatio: ratio(c.name, 'down'),
    }));
    const memory = {
      beforeMB: before / MB, withIdleMB: withIdle / MB, addedMB: (withIdle - before) / MB,
      perFlowKiB: (withIdle - before) / 1024 / Math.max(1, opened), flows: opened,
    };
    const check = (v: number, ok: (v: number) => boolean) => (Number.isFinite(v) ? ok(v) : null);
    const [, off, pl] = throughput;
    const targets: Target[] = [
      { name: 'netstack offload 1-flow upload ≥ 1 GB/s', value: `${off.up.toFixed(0)} MB/s`, pass: check(off.up, (v) => v >= 1000) },
      { name: 'netstack offload 1-flow download ≥ 1 GB/s', value: `${off.down.toFixed(0)} MB/s`, pass: check(off.down, (v) => v >= 1000) },
      { name: 'netstack plain 1-flow upload ≥ 250 MB/s', value: `${pl.up.toFixed(0)} MB/s`, pass: check(pl.up, (v) => v >= 250) },
      { name: 'netstack plain 1-flow download ≥ 250 MB/s', value: `${pl.down.toFixed(0)} MB/s`, pass: check(pl.down, (v) => v >= 250) },
      {
        name: `daemon RSS with ${S.idleFlows} open flows ≤ 150 MB`,
        value: `${memory.withIdleMB.toFixed(1)} MB (${memory.addedMB.toFixed(1)} MB added for ${opened} flows)`,
        pass: opened === S.idleFlows ? check(memory.withIdleMB, (v) => v <= 150) : false,
      },
    ];
    return {
      throughput,
      flows: { netstackPerSec, kernelPerSec, ratio: netstackPerSec / kernelPerSec, count: S.churnCount, errors: 0 },
      memory, targets, diagnostics,
    };
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    ns.del();
  }
}

const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

export function formatNetstack(r: NetstackResults): string {
  const out: string[] = [];
  out.push('### Netstack alone (TUN → our TCP/IP stack → in-process sink/source; kernel client in a namespace; MB = 10^6 bytes)');
  out.push('| config | 1-flow upload MB/s | 1-flow download MB/s | upload ratio to kernel | download ratio to kernel |');
  out.push('|---|---|---|---|---|');
  for (const t of r.throughput) out.push(`| ${t.config} | ${f(t.up)} | ${f(t.down)} | ${f(t.upRatio, 2)} | ${f(t.downRatio, 2)} |`);
  out.push('');
  out.push(`Flows set up per second (connect → 1 byte echoed → close, ${r.flows.count} flows): netstack ${f(r.flows.netstackPerSec)}/s, ` +
    `kernel loopback ${f(r.flows.kernelPerSec)}/s, ratio ${f(r.flows.ratio, 2)}`);
  const m = r.memory;
  out.push(`Daemon RSS: ${f(m.beforeMB, 1)} MB before, ${f(m.withIdleMB, 1)} MB with ${m.flows} idle flows ` +
    `(+${f(m.addedMB, 1)} MB, ${f(m.perFlowKiB, 1)} KiB per flow)`);
  out.push('');
  for (const t of r.targets) out.push(`- ${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.value}`);
  if (r.diagnostics.length) {
    out.push('');
    for (const d of r.diagnostics) out.push(`- diagnostic: ${d}`);
  }
  return out.join('\n');
}
