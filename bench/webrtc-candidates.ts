// Picks the WebRTC stack for the direct path (issue 11) by measuring every installed candidate in ONE run,
// alternating between them: connect time, bulk MB/s and CPU-s/GB on a reliable channel (per message size),
// paced 1200-byte datagrams on an unordered maxRetransmits-0 channel, and how long each stack takes to notice a
// path that went silent (nft drop inside one namespace). Peers run in two network namespaces created here (veth
// 10.88.x.1 ↔ .2, no ICE servers: host candidates only), signalling over IPC. Needs root; deletes its namespaces
// and kills its peers on exit, error and SIGINT. Prints markdown tables.
//   sudo node --import tsx bench/webrtc-candidates.ts
// Knobs: WEBRTC_BYTES (per bulk sample, default 200e6), WEBRTC_ROUNDS (default 2), WEBRTC_STACKS (comma list),
// WEBRTC_QUICK=1 (50 MB, one round, one rate), WEBRTC_FAIL_CAP_S (default 45), WEBRTC_SKIP_GOOD=1 (no per-size bulk
// rounds), WEBRTC_DEBUG=1 (bulk progress on stderr).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { createNetnsPair, deleteAllNetnsSync, type NetnsPair } from './lib/netns-pair';
import { killAllPeersSync, StackPair, type Reply } from './lib/webrtc-pair';
import { PACKAGE_OF, STACKS, type StackName } from './lib/webrtc-stacks';

const QUICK = process.env.WEBRTC_QUICK === '1';
const BYTES = Number(process.env.WEBRTC_BYTES ?? (QUICK ? 50e6 : 200e6));
const ROUNDS = Number(process.env.WEBRTC_ROUNDS ?? (QUICK ? 1 : 2));
const SIZES = [16, 64, 256].map((k) => k * 1024);
const RATES = QUICK ? [300] : [100, 300, 500];
const PACED_SECONDS = 3;
const FAIL_CAP_MS = Number(process.env.WEBRTC_FAIL_CAP_S ?? 45) * 1000;
const STALL_MS = 5_000;
// The pattern we recommend: fill to HIGH, refill from the low-threshold event, with a 5 ms poll as a safety net.
const GOOD = { high: 1 << 20, low: 256 << 10, poll: true };
// The pattern that stalled in a first try (event only, low 1 MiB, high 4 MiB).
const NAIVE = { high: 4 << 20, low: 1 << 20, poll: false };
const MB = 1e6;

const require = createRequire(import.meta.url);
function installed(s: StackName): boolean {
  try {
    require.resolve(PACKAGE_OF[s]);
    return true;
  } catch {
    return false;
  }
}

type Pattern = typeof GOOD;
interface BulkRow {
  stack: StackName; size: number; pattern: 'good' | 'naive'; mbps: number; cpuA: number; cpuB: number;
  stalledAt?: number; stalledBuffered?: number; maxBuffered: number; byEvent: number; byPoll: number; rssA: number; rssB: number;
}

async function bulk(pair: StackPair, size: number, p: Pattern, bytes: number): Promise<Omit<BulkRow, 'stack' | 'size' | 'pattern'>> {
  const [a0, b0] = await pair.cpu();
  const t0 = performance.now();
  let done = false;
  const rx = pair.answer.request('bulk-expect', { bytes }, 30 * 60_000);
  const tx = pair.offer.request('bulk-send', { bytes, size, ...p }, 30 * 60_000);
  for (const pr of [rx, tx]) pr.catch(() => (done = true)); // the error itself is thrown where awaited below
  void rx.then(
    () => (done = true),
    () => undefined,
  );
  let last = -1;
  let lastChange = performance.now();
  let rssA = 0;
  let rssB = 0;
  let stalled: Reply | undefined;
  while (!done) {
    await Promise.race([rx, new Promise((r) => setTimeout(r, 1000))]);
    if (done) break;
    const [sa, sb] = await Promise.all([pair.offer.request('status'), pair.answer.request('status')]);
    if (process.env.WEBRTC_DEBUG) process.stderr.write(`  status ${JSON.stringify({ sa, sb })}\n`);
    rssA = Math.max(rssA, sa.rss as number);
    rssB = Math.max(rssB, sb.rss as number);
    if (sb.received !== last) {
      last = sb.received as number;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_MS) {
      stalled = { received: sb.received, buffered: sa.buffered };
      await pair.offer.request('abort');
      break;
    }
  }
  const sent = await tx;
  if (!stalled) await rx;
  const sec = (performance.now() - t0) / 1000;
  const [a1, b1] = await pair.cpu();
  const gb = (stalled ? (stalled.received as number) : bytes) / 1e9;
  return {
    mbps: stalled ? NaN : bytes / MB / sec,
    cpuA: (a1 - a0) / 1e6 / gb, cpuB: (b1 - b0) / 1e6 / gb,
    stalledAt: stalled?.received as number | undefined, stalledBuffered: stalled?.buffered as number | undefined,
    maxBuffered: sent.maxBuffered as number, byEvent: sent.byEvent as number, byPoll: sent.byPoll as number,
    rssA: Math.max(rssA, sent.peakRss as number), rssB,
  };
}

interface PacedRow { stack: StackName; mbit: number; offered: number; accepted: number; received: number; spanMs: number; cpuA: number; cpuB: number }
async function paced(pair: StackPair, mbit: number): Promise<PacedRow> {
  const [a0, b0] = await pair.cpu();
  const s = await pair.offer.request('paced-send', { mbit, seconds: PACED_SECONDS, size: 1200 });
  const r = await pair.answer.request('paced-count', { quietMs: 500 });
  const [a1, b1] = await pair.cpu();
  return {
    stack: pair.stack, mbit, offered: s.offered as number, accepted: s.accepted as number, received: r.received as number,
    spanMs: r.spanMs as number, cpuA: (a1 - a0) / 1e6, cpuB: (b1 - b0) / 1e6,
  };
}

interface FailRow { stack: StackName; events: string[]; firstDown?: number; firstFailed?: number }
/** Blocks B for every connected pair at once and records each state change after the block (ms since block). */
async function failure(pairs: StackPair[], net: NetnsPair): Promise<FailRow[]> {
  const rows = pairs.map((p) => ({ stack: p.stack, events: [] as string[], firstDown: undefined as number | undefined, firstFailed: undefined as number | undefined }));
  let blockedAt = 0;
  const terminal = new Set<number>();
  let wake: () => void = () => undefined;
  pairs.forEach((p, i) => {
    for (const [side, proc] of [['A', p.offer], ['B', p.answer]] as const) {
      proc.on('state', (m: Reply) => {
        if (!blockedAt) return;
        const ms = (m.at as number) - blockedAt;
        const row = rows[i]!;
        row.events.push(`${side}:${m.kind}=${m.state}@${(ms / 1000).toFixed(1)}s`);
        if (m.state === 'disconnected' || m.state === 'failed' || m.state === 'closed') row.firstDown ??= ms;
        if (m.state === 'failed' || m.state === 'closed') {
          row.firstFailed ??= ms;
          terminal.add(i);
          wake();
        }
      });
    }
  });
  blockedAt = Date.now();
  await net.block(net.b);
  const end = Date.now() + FAIL_CAP_MS;
  while (terminal.size < pairs.length && Date.now() < end) {
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, end - Date.now());
    });
  }
  await net.unblock(net.b);
  return rows;
}

function packageDir(name: string, from: string): string | undefined {
  for (let d = from; ; d = dirname(d)) {
    const c = join(d, 'node_modules', name);
    if (existsSync(join(c, 'package.json'))) return c;
    if (d === dirname(d)) return undefined;
  }
}

/** Size of the package and everything it pulls in (its installed dependency closure, as a fresh install adds). */
function footprint(s: StackName): string {
  const dirs = new Set<string>();
  const walk = (name: string, from: string): void => {
    const dir = packageDir(name, from);
    if (!dir || dirs.has(dir)) return;
    dirs.add(dir);
    const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    for (const dep of [...Object.keys(pj.dependencies ?? {}), ...Object.keys(pj.optionalDependencies ?? {})]) walk(dep, dir);
  };
  walk(PACKAGE_OF[s], process.cwd());
  const top = [...dirs].filter((d) => ![...dirs].some((o) => o !== d && d.startsWith(`${o}/`)));
  try {
    const out = execFileSync('du', ['-sk', ...top], { encoding: 'utf8' });
    const kb = out.trim().split('\n').reduce((t, l) => t + Number(l.split('\t')[0]), 0);
    return `${(kb / 1024).toFixed(1)} MB, ${dirs.size} packages`;
  } catch {
    return '?';
  }
}

const f1 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(1));
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');
const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

async function main(): Promise<void> {
  const wanted = (process.env.WEBRTC_STACKS?.split(',') as StackName[] | undefined) ?? [...STACKS];
  const stacks = wanted.filter(installed);
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  const net = await createNetnsPair();
  const pairs: StackPair[] = [];
  const connectMs = new Map<StackName, number[]>();
  const maxMsg = new Map<StackName, unknown>();
  const bulkRows: BulkRow[] = [];
  const pacedRows: PacedRow[] = [];
  const notes: string[] = [];
  try {
    for (const s of stacks) {
      try {
        pairs.push(await StackPair.start(s, net.a, net.b));
      } catch (err) {
        notes.push(`${s}: did not start: ${(err as Error).message}`);
      }
    }
    const dead = new Set<StackPair>();
    const refused = new Set<string>(); // stack/size combinations that errored: not retried in later rounds
    // A stack that crashes or hangs in one phase is reported and skipped afterwards; the others go on.
    const live = (list: StackPair[]): StackPair[] => list.filter((p) => !dead.has(p));
    const guard = async (p: StackPair, label: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        notes.push(`${p.stack} ${label}: ${(err as Error).message}`);
        // A peer that is still running only refused this one thing (e.g. a message size): keep the stack.
        if (p.offer.exited || p.answer.exited || /no reply|no open/.test((err as Error).message)) dead.add(p);
      }
    };
    // Connect: three fresh PeerConnections per stack, alternating; the last one stays for the data phases.
    for (let r = 0; r < 3; r++) {
      for (const p of live(r % 2 ? [...pairs].reverse() : pairs)) {
        await guard(p, 'connect', async () => {
          const c = await p.connect();
          connectMs.set(p.stack, [...(connectMs.get(p.stack) ?? []), c.ms]);
          maxMsg.set(p.stack, c.maxMessageSize);
        });
      }
    }
    for (let r = 0; r < (process.env.WEBRTC_SKIP_GOOD ? 0 : ROUNDS); r++) {
      for (const p of live(r % 2 ? [...pairs].reverse() : pairs)) {
        for (const size of r % 2 ? [...SIZES].reverse() : SIZES) {
          if (dead.has(p)) break;
          if (refused.has(`${p.stack}/${size}`)) continue;
          await guard(p, `bulk ${size / 1024} KiB`, async () => {
            refused.add(`${p.stack}/${size}`); // until it succeeds once
            const row = await bulk(p, size, GOOD, BYTES);
            bulkRows.push({ stack: p.stack, size, pattern: 'good', ...row });
            refused.delete(`${p.stack}/${size}`);
            process.stderr.write(`bulk ${p.stack} ${size / 1024}K: ${f1(row.mbps)} MB/s\n`);
            if (row.stalledAt !== undefined) await p.connect();
          });
        }
      }
    }
    for (const p of live(pairs)) {
      await guard(p, 'naive bulk', async () => {
        const row = await bulk(p, 64 << 10, NAIVE, BYTES);
        bulkRows.push({ stack: p.stack, size: 64 << 10, pattern: 'naive', ...row });
        process.stderr.write(`naive ${p.stack}: ${row.stalledAt === undefined ? 'ok' : `stalled at ${f1(row.stalledAt / MB)} MB`}\n`);
        if (row.stalledAt !== undefined) await p.connect();
      });
    }
    for (const mbit of RATES) {
      for (const p of live(mbit % 200 ? pairs : [...pairs].reverse())) {
        await guard(p, `paced ${mbit}`, async () => void pacedRows.push(await paced(p, mbit)));
      }
    }
    const failRows = await failure(live(pairs), net);
    print(stacks, connectMs, maxMsg, bulkRows, pacedRows, failRows);
  } catch (err) {
    notes.push((err as Error).stack ?? String(err));
  } finally {
    await Promise.all(pairs.map((p) => p.close()));
    await net.del();
  }
  if (notes.length) console.log(['', 'Diagnostics:', ...notes.map((n) => `- ${n}`)].join('\n'));
}

function print(
  stacks: StackName[], connectMs: Map<StackName, number[]>, maxMsg: Map<StackName, unknown>,
  bulkRows: BulkRow[], pacedRows: PacedRow[], failRows: FailRow[],
): void {
  const lines: string[] = [];
  lines.push(`### WebRTC candidates (${(BYTES / MB).toFixed(0)} MB per bulk sample, ${ROUNDS} round(s), medians; veth between two namespaces)`, '');
  lines.push('| stack | connect ms (median of 3) | max-message-size | install (node_modules) |', '|---|---|---|---|');
  for (const s of stacks) lines.push(`| ${s} | ${f1(median(connectMs.get(s) ?? []))} | ${String(maxMsg.get(s) ?? '–')} | ${footprint(s)} |`);
  lines.push('', '| stack | msg | MB/s | CPU-s/GB sender | CPU-s/GB receiver | max bufferedAmount | refills event/poll | peak RSS A/B MB |', '|---|---|---|---|---|---|---|---|');
  for (const s of stacks) {
    for (const size of SIZES) {
      const rs = bulkRows.filter((r) => r.stack === s && r.size === size && r.pattern === 'good');
      if (!rs.length) continue;
      const stalls = rs.filter((r) => r.stalledAt !== undefined).length;
      lines.push(
        `| ${s} | ${size / 1024} KiB | ${f1(median(rs.map((r) => r.mbps)))}${stalls ? ` (${stalls} stalled)` : ''} | ${f2(median(rs.map((r) => r.cpuA)))} | ${f2(median(rs.map((r) => r.cpuB)))} | ${f1(Math.max(...rs.map((r) => r.maxBuffered)) / 1024)} KiB | ${rs.map((r) => `${r.byEvent}/${r.byPoll}`).join(', ')} | ${rs.map((r) => `${(r.rssA / MB).toFixed(0)}/${(r.rssB / MB).toFixed(0)}`).join(', ')} |`,
      );
    }
  }
  lines.push('', 'Naive pattern (64 KiB, event only, low 1 MiB, high 4 MiB):', '', '| stack | result | MB/s | refills event | buffered at stall |', '|---|---|---|---|---|');
  for (const r of bulkRows.filter((x) => x.pattern === 'naive')) {
    lines.push(`| ${r.stack} | ${r.stalledAt === undefined ? 'completed' : `stalled after ${f1(r.stalledAt / MB)} MB`} | ${f1(r.mbps)} | ${r.byEvent} | ${r.stalledBuffered === undefined ? '–' : `${f1(r.stalledBuffered / 1024)} KiB`} |`);
  }
  lines.push('', `| stack | offered Mbit/s (1200 B, ${PACED_SECONDS} s) | accepted by send | received Mbit/s | receive span s | loss of accepted | loss of offered | CPU-s A/B |`, '|---|---|---|---|---|---|---|---|');
  for (const r of pacedRows) {
    // Over the receiver's own first→last span: a stack that queues internally delivers late, not faster.
    const rx = (r.received * 1200 * 8) / Math.max(PACED_SECONDS, r.spanMs / 1000) / 1e6;
    lines.push(
      `| ${r.stack} | ${r.mbit} | ${r.accepted}/${r.offered} | ${f1(rx)} | ${f1(r.spanMs / 1000)} | ${f1((100 * (r.accepted - r.received)) / Math.max(1, r.accepted))} % | ${f1((100 * (r.offered - r.received)) / Math.max(1, r.offered))} % | ${f2(r.cpuA)}/${f2(r.cpuB)} |`,
    );
  }
  lines.push('', `Dead path (nft drop in B, idle channels, cap ${FAIL_CAP_MS / 1000} s): first disconnected/failed/closed after the block`, '', '| stack | first "down" | first failed/closed | events |', '|---|---|---|---|');
  for (const r of failRows) lines.push(`| ${r.stack} | ${r.firstDown === undefined ? 'none' : `${f1(r.firstDown / 1000)} s`} | ${r.firstFailed === undefined ? 'none' : `${f1(r.firstFailed / 1000)} s`} | ${r.events.join(' ')} |`);
  console.log(lines.join('\n'));
}

const cleanupSync = (): void => {
  killAllPeersSync();
  deleteAllNetnsSync((ns) => {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      // already gone
    }
  });
};
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupSync();
    process.exit(130);
  });
}
await main();
