// End-to-end rows of `npm run bench` (alone: `npm run bench -- zksd`): an application in a client namespace
// reaching a target through zksd (TUN → netstack → tunnel → Worker in workerd), against the SOCKS5 path
// (`zks socks5` → the same Worker) in the same namespace topology, in the same run, alternating samples.
// Rows: single-flow download/upload MB/s (curl), flows set up per second (curl --parallel, one connection per
// transfer), zksd's RSS with 1 000 open flows. Uses the test topology (test/daemon/topology.ts): every namespace
// and process is removed at the end. Needs root.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDR, createTopology, type Topology } from '../test/daemon/topology';
import { startIn } from '../test/daemon/topology-proc';
import { startZksd, zksIn, type ZksdProcess } from '../test/daemon/zksd-helpers';
import { rssBytes } from './lib/procs';
import { ControlClient } from '../src/control/client';
import type { Target } from './lib/report';

export interface DaemonBenchSettings {
  /** Bytes per throughput sample. */
  bytes: number;
  samples: number;
  churnCount: number;
  churnConcurrency: number;
  idleFlows: number;
}

export interface DaemonBenchResults {
  rows: Array<{ config: string; down: number; up: number; downRatio: number; upRatio: number }>;
  flows: { tunPerSec: number; socksPerSec: number; ratio: number; count: number };
  memory: { beforeMB: number; withFlowsMB: number; addedMB: number; perFlowKiB: number; flows: number; afterTransfersMB: number };
  targets: Target[];
  diagnostics: string[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MB = 1e6;
const T = ADDR.tunnelOnly;

export function daemonBenchRunnable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, a TUN device, nftables)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  if (!existsSync('/usr/sbin/nft')) return 'nft is missing (apt install nftables)';
  return null;
}

function median(v: number[]): number {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

async function curlSpeed(topo: Topology, proxy: string[], kind: 'down' | 'up', bytes: number, file: string): Promise<number> {
  const args = kind === 'down'
    ? ['-s', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', ...proxy, `http://${T}/bytes/${bytes}`]
    : ['-s', '-o', '/dev/null', '-w', '%{speed_upload} %{size_upload}', ...proxy, '--data-binary', `@${file}`, `http://${T}/sha256`];
  const r = await topo.exec('client', 'curl', args, { timeoutMs: 120_000 });
  const [speed, size] = r.stdout.toString().trim().split(' ').map(Number);
  if (r.code !== 0 || size !== bytes) throw new Error(`curl ${kind} via ${proxy.length ? 'socks5' : 'zksd'} failed (code ${r.code}, ${size} bytes): ${r.stderr.trim()}`);
  return speed / MB;
}

async function churn(topo: Topology, proxy: string[], count: number, concurrency: number): Promise<number> {
  const t0 = performance.now();
  const r = await topo.exec('client', 'curl', [
    '-s', '--parallel', '--parallel-max', String(concurrency), '--no-progress-meter', '-H', 'Connection: close', '-o', '/dev/null',
    '-w', '%{http_code}\\n', ...proxy, `http://${T}/bytes/[1000-${999 + count}]`,
  ], { timeoutMs: 180_000 });
  const secs = (performance.now() - t0) / 1000;
  const ok = r.stdout.toString().split('\n').filter((l) => l === '200').length;
  if (ok !== count) throw new Error(`churn via ${proxy.length ? 'socks5' : 'zksd'}: ${ok}/${count} transfers succeeded`);
  return count / secs;
}

/** Opens `n` TCP connections from the client namespace to the target and holds them until told to exit. */
function holdFlows(topo: Topology, n: number) {
  const script = `
    const net = require('node:net'); const socks = []; let up = 0;
    for (let i = 0; i < ${n}; i++) {
      const s = net.connect(80, '${T}', () => { s.write('GET / HTTP/1.1\\r\\n'); if (++up === ${n}) console.log('held ' + up); });
      s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
      socks.push(s);
    }
    process.stdin.on('data', () => process.exit(0));`;
  return startIn(topo.ns.client, 'hold-flows', [process.execPath, '-e', script]);
}

export async function runDaemonBench(s: DaemonBenchSettings, log: (line: string) => void): Promise<DaemonBenchResults> {
  const diagnostics: string[] = [];
  log('zksd rows: namespace topology (Worker + HTTP target in "world"), zks socks5 and zksd in "client"');
  const topo = await createTopology({ ssh: false, iperf: false });
  let zksd: ZksdProcess | undefined;
  try {
    const socks = startIn(topo.ns.client, 'zks socks5', [process.execPath, join(ROOT, 'bin/zks.js'), 'socks5', '--relay', topo.relayUrl!, '--key', topo.key!, '--listen', '127.0.0.1:1080', '--quiet']);
    await socks.waitLine(/ready on/, 30_000);
    // Without the kill switch: it now lets out only zksd's own marked relay sockets (issue 14), so the `zks socks5`
    // baseline beside it in the same namespace could not reach the Worker.
    zksd = await startZksd(topo, ['--no-kill-switch']);
    const pid = (JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as { pid: number }).pid;
    // Memory first, on a fresh daemon: what a user sees with many idle connections (browser tabs, ssh sessions).
    log(`memory: zksd RSS with ${s.idleFlows} open flows`);
    const before = rssBytes(pid);
    const hold = holdFlows(topo, s.idleFlows);
    await hold.waitLine(/^held|^error/, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const withFlows = rssBytes(pid);
    const st = JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as { flows: number };
    if (st.flows < s.idleFlows) diagnostics.push(`only ${st.flows} of ${s.idleFlows} flows were open at the RSS reading`);
    hold.send('x');
    await hold.stop(2_000);

    const file = join(topo.dir, 'upload.bin');
    writeFileSync(file, Buffer.alloc(s.bytes, 0x5a));
    const viaSocks = ['--socks5-hostname', '127.0.0.1:1080'];

    const samples = { socks: { down: [] as number[], up: [] as number[] }, tun: { down: [] as number[], up: [] as number[] } };
    const ratios = { down: [] as number[], up: [] as number[] };
    await curlSpeed(topo, [], 'down', Math.min(s.bytes, 20 * MB), file); // warm-up: relay links, JIT
    await curlSpeed(topo, viaSocks, 'down', Math.min(s.bytes, 20 * MB), file);
    for (let i = 0; i < s.samples; i++) {
      for (const kind of ['down', 'up'] as const) {
        const a = await curlSpeed(topo, viaSocks, kind, s.bytes, file);
        const b = await curlSpeed(topo, [], kind, s.bytes, file);
        samples.socks[kind].push(a);
        samples.tun[kind].push(b);
        ratios[kind].push(b / a);
        log(`sample ${i + 1} ${kind}: socks5 ${a.toFixed(0)} MB/s, zksd ${b.toFixed(0)} MB/s`);
      }
    }
    const rows = [
      { config: 'SOCKS5 path (zks socks5 → Worker)', down: median(samples.socks.down), up: median(samples.socks.up), downRatio: 1, upRatio: 1 },
      { config: 'zksd (TUN → netstack → Worker)', down: median(samples.tun.down), up: median(samples.tun.up), downRatio: median(ratios.down), upRatio: median(ratios.up) },
    ];

    // A TUI attached (one subscriber to every topic: flows 4/s, status 1/s, log), and 50 of them, each
    // alternating with none.
    for (const viewers of [1, 50]) {
      log(`zksd with ${viewers} control-socket subscriber(s) (what zks-tui asks for) vs none`);
      const clients = await Promise.all(Array.from({ length: viewers }, () => ControlClient.connect(join(zksd!.runDir, 'zksd.sock'))));
      let events = 0;
      for (const c of clients) c.onEvent = () => events++;
      const attached = { down: [] as number[], up: [] as number[] };
      for (let i = 0; i < s.samples; i++) {
        for (const kind of ['down', 'up'] as const) {
          const bare = await curlSpeed(topo, [], kind, s.bytes, file);
          await Promise.all(clients.map((c) => c.request('subscribe', { topics: ['flows', 'status', 'log'] })));
          const watched = await curlSpeed(topo, [], kind, s.bytes, file);
          await Promise.all(clients.map((c) => c.request('unsubscribe')));
          attached[kind].push(watched / bare);
          log(`sample ${i + 1} ${kind}: zksd ${bare.toFixed(0)} MB/s, with ${viewers} subscriber(s) ${watched.toFixed(0)} MB/s`);
        }
      }
      for (const c of clients) c.close();
      if (events === 0) diagnostics.push(`${viewers} subscriber(s) received no events`);
      rows.push({ config: `zksd with ${viewers === 1 ? 'a TUI subscriber' : `${viewers} subscribers`} (vs zksd alone)`, down: NaN, up: NaN, downRatio: median(attached.down), upRatio: median(attached.up) });
    }

    log(`flow churn: ${s.churnCount} short connections, ${s.churnConcurrency} at a time, each way`);
    const socksPerSec = await churn(topo, viaSocks, s.churnCount, s.churnConcurrency);
    const tunPerSec = await churn(topo, [], s.churnCount, s.churnConcurrency);
    await socks.stop();
    const busyRss = rssBytes(pid);

    const memory = {
      beforeMB: before / MB, withFlowsMB: withFlows / MB, addedMB: (withFlows - before) / MB,
      perFlowKiB: (withFlows - before) / s.idleFlows / 1024, flows: st.flows, afterTransfersMB: busyRss / MB,
    };
    const targets: Target[] = [
      { name: 'end to end download ≥ 80 % of the SOCKS5 path', pass: rows[1].downRatio >= 0.8, value: `${(rows[1].downRatio * 100).toFixed(0)} %` },
      { name: 'end to end upload ≥ 80 % of the SOCKS5 path', pass: rows[1].upRatio >= 0.8, value: `${(rows[1].upRatio * 100).toFixed(0)} %` },
      { name: 'a TUI subscriber costs ≤ 5 % throughput (down)', pass: rows[2].downRatio >= 0.95, value: `${(rows[2].downRatio * 100).toFixed(0)} %` },
      { name: 'a TUI subscriber costs ≤ 5 % throughput (up)', pass: rows[2].upRatio >= 0.95, value: `${(rows[2].upRatio * 100).toFixed(0)} %` },
      { name: `zksd RSS with ${s.idleFlows} open flows ≤ 150 MB`, pass: withFlows / MB <= 150, value: `${(withFlows / MB).toFixed(0)} MB` },
    ];
    return { rows, flows: { tunPerSec, socksPerSec, ratio: tunPerSec / socksPerSec, count: s.churnCount }, memory, targets, diagnostics };
  } finally {
    await zksd?.stop().catch(() => {});
    await topo.destroy();
  }
}

export function formatDaemon(r: DaemonBenchResults): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const lines = [
    '### zksd end to end (app in a namespace → TUN → netstack → Worker), vs the SOCKS5 path in the same run',
    '',
    '| config | 1-flow down MB/s | 1-flow up MB/s | down ratio | up ratio |',
    '|---|---|---|---|---|',
    ...r.rows.map((x) => `| ${x.config} | ${f(x.down)} | ${f(x.up)} | ${f(x.downRatio, 2)} | ${f(x.upRatio, 2)} |`),
    '',
    'Ratios: zksd vs the SOCKS5 path; the subscriber row vs zksd alone (alternating samples, medians of per-pair ratios).',
    '',
    `Flows set up per second (${r.flows.count} short HTTP connections, curl --parallel): zksd ${f(r.flows.tunPerSec)}, ` +
      `SOCKS5 path ${f(r.flows.socksPerSec)} (${f(r.flows.ratio, 2)}×).`,
    `zksd RSS: ${f(r.memory.beforeMB)} MB idle, ${f(r.memory.withFlowsMB)} MB with ${r.memory.flows} open flows ` +
      `(+${f(r.memory.addedMB, 1)} MB, ${f(r.memory.perFlowKiB, 1)} KiB per flow incl. its tunnel stream); ` +
      `${f(r.memory.afterTransfersMB)} MB after the throughput samples.`,
    '',
    ...r.targets.map((t) => `- ${t.pass ? 'PASS' : 'MISS'} ${t.name}: ${t.value}`),
    ...r.diagnostics.map((d) => `- note: ${d}`),
  ];
  return lines.join('\n');
}
