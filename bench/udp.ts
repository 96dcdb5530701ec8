// UDP rows of `npm run bench` (alone: `npm run bench -- udp`): zksd in relay mode (TUN → netstack → room in the
// Worker → exit peer → world) against the same traffic sent directly between the namespaces, in the same run:
// - iperf3 -u at several offered rates (upload; at the top rate also download, -R, and once with the receiver's
//   default socket buffer): received rate, loss and jitter (tunnel vs direct);
// - DNS query latency p50/p99: straight to dnsmasq, over a UDP flow through the exit, and via zksd's resolver
//   (DNS-over-TCP through the tunnel);
// - a real-time flow (one 160-byte datagram echoed every 5 ms, VoIP-like; 1 500 of them, so that p99 rests on the
//   15 slowest, not 6): RTT p50/p99 idle and while a bulk TCP download runs through the same relay link;
// - memory per idle UDP flow in zksd, the exit peer and the client (`zks p2p-client`, one SOCKS5 UDP ASSOCIATE per
//   flow: an application's UDP socket behind SOCKS5 is one association, one tunnel flow, one exit socket — its TCP
//   control connection included). What n more idle flows cost a process that already holds n: each process
//   reports its memory on SIGUSR2 (src/cli/memory-report.ts) after a full, memory-reducing GC, once RSS has
//   settled, after 6 s without traffic. RSS after GC is the target figure (live JS state, native socket handles,
//   malloc; not the kernel's socket buffers); heap+external after GC is the JS part of it. Plain RSS (what this
//   row showed before) also counted garbage not yet collected and the young generation grown for the burst that
//   opened the flows (up to 32 MiB at 2 000 flows), neither of which is per-flow state.
// "Direct" is the same namespaces without the tunnel: the bypass address (zks route add … --bypass) for the echo
// server and dnsmasq, world's own address (the relay endpoint, outside the tunnel) for iperf3, whose wildcard UDP
// socket would answer a bypass address on world's lo from the veth address, which the client's socket ignores. Uses the test topology
// (test/daemon/topology.ts); every namespace and process is removed at the end. Needs root.

import { PACE_AFTER_DATAGRAM_MS } from '../src/protocol/mux';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKey } from '../src/cli/args';
import { ADDR, createTopology, type Topology } from '../test/daemon/topology';
import { startIn, type NsProcess } from '../test/daemon/topology-proc';
import { startZksd, zksIn, type ZksdProcess } from '../test/daemon/zksd-helpers';
import type { Target } from './lib/report';

export interface UdpBenchSettings {
  rates: number[]; // Mbit/s offered
  seconds: number;
  dnsQueries: number;
  pings: number;
  idleFlows: number;
}

interface IperfRow { config: string; direction: 'up' | 'down'; buffer: string; offered: number; received: number; lossPct: number; jitterMs: number }

/**
 * The receiving iperf3's socket buffer (`-w`, which the server applies too) for the rate rows: 4 MiB, what QUIC
 * stacks ask for. The default (208 KiB) holds ~100 datagrams of 1 200 B, and here nothing between the exit and the
 * receiver smooths bursts: a real path's bottleneck queue spreads them, a veth delivers a batch the exit forwards
 * at once into the receiver's socket. One row per path keeps the default, to show what it costs.
 */
const IPERF_WINDOW = '4M';
interface LatencyRow { config: string; p50: number; p99: number; lost: number; bulkMBps?: number }
/** Bytes per idle flow in one process (2 000 flows vs none). */
export interface MemoryRow {
  process: 'zksd' | 'exit peer' | 'client (zks p2p-client)';
  flows: number;
  /** RSS after a full, memory-reducing GC: the target figure. */
  rssAfterGc: number;
  /** V8 heap used + external (Buffers, ArrayBuffers) after that GC: the JS part. */
  heapAfterGc: number;
}

export interface UdpBenchResults {
  iperf: IperfRow[];
  dns: LatencyRow[];
  realtime: LatencyRow[];
  memory: MemoryRow[];
  targets: Target[];
  diagnostics: string[];
}

const T = ADDR.tunnelOnly;
const DIRECT = ADDR.bypass;
const DIRECT_IPERF = ADDR.world;
const ECHO_PORT = 7777;
const ZKS = join(fileURLToPath(new URL('../', import.meta.url)), 'bin/zks.js');
const SOCKS_PORT = 1080;

/** In world: a UDP echo server on the tunnel-only and the bypass address. */
const ECHO_SERVER = `
const dgram = require('node:dgram');
for (const host of ['${T}', '${DIRECT}']) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(${ECHO_PORT}, host);
}
console.log('echo ready');`;

/**
 * In client: sequential request/answer timing. argv: host port count intervalMs kind(echo|dns). Prints the RTTs
 * in µs as JSON (lost ones as -1); each request waits at most 1 s for its answer.
 */
const PROBE = `
const dgram = require('node:dgram');
const [host, port, count, intervalMs, kind] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
function dnsQuery(id) {
  const name = Buffer.concat([Buffer.from([7]), Buffer.from('example'), Buffer.from([4]), Buffer.from('test'), Buffer.from([0])]);
  const h = Buffer.alloc(12); h.writeUInt16BE(id, 0); h.writeUInt16BE(0x0100, 2); h.writeUInt16BE(1, 4);
  return Buffer.concat([h, name, Buffer.from([0, 1, 0, 1])]);
}
const out = []; let i = 0; let pending = null;
s.on('message', (m) => { if (pending) { const p = pending; pending = null; p(); } });
s.bind(0, () => {
  const next = () => {
    if (i >= Number(count)) { console.log(JSON.stringify(out)); s.close(); return; }
    const id = i++ & 0xffff;
    const msg = kind === 'dns' ? dnsQuery(id) : Buffer.alloc(160, id & 0xff);
    const t0 = process.hrtime.bigint();
    const timer = setTimeout(() => { pending = null; out.push(-1); setTimeout(next, Number(intervalMs)); }, 1000);
    pending = () => { clearTimeout(timer); out.push(Number(process.hrtime.bigint() - t0) / 1000); setTimeout(next, Number(intervalMs)); };
    s.send(msg, Number(port), host);
  };
  next();
});`;

/**
 * In client: opens n UDP sockets, each sends one datagram to the echo server until it gets it back (a burst of
 * new flows may lose a few datagrams: resent every 300 ms, at most 20 times), then reports how many flows hold.
 */
const HOLD = `
const dgram = require('node:dgram');
const n = Number(process.argv[1]); const socks = []; const answered = new Set(); let rounds = 0;
for (let i = 0; i < n; i++) {
  const s = dgram.createSocket('udp4'); socks.push(s);
  s.on('message', () => { answered.add(i); if (answered.size === n) done(); });
}
const send = () => socks.forEach((s, i) => { if (!answered.has(i)) s.send(Buffer.from('hold'), ${ECHO_PORT}, '${T}'); });
const timer = setInterval(() => (++rounds >= 20 ? done() : send()), 300);
let reported = false;
function done() { if (reported) return; reported = true; clearInterval(timer); console.log('held ' + answered.size); }
send();
process.stdin.on('data', () => process.exit(0));`;

/**
 * In world: n SOCKS5 UDP associations through the proxy on 127.0.0.1 (a TCP control connection and a UDP socket
 * each, opened 50 at a time), each sending one datagram to the echo server until it comes back (resent every
 * 300 ms, at most 40 times); then reports how many hold, as HOLD does.
 */
const HOLD_SOCKS = `
const net = require('node:net'); const dgram = require('node:dgram');
const n = Number(process.argv[1]); const assocs = []; const answered = new Set(); let rounds = 0;
const header = Buffer.from([0, 0, 0, 1, ...'${T}'.split('.').map(Number), ${ECHO_PORT} >> 8, ${ECHO_PORT} & 255]);
function associate(i) {
  return new Promise((resolve, reject) => {
    const c = net.connect(${SOCKS_PORT}, '127.0.0.1'); let buf = Buffer.alloc(0); let stage = 0;
    c.on('error', reject);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) { buf = buf.subarray(2); stage = 1; c.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0])); }
      if (stage === 1 && buf.length >= 10) {
        if (buf[1] !== 0) return reject(new Error('UDP ASSOCIATE refused: ' + buf[1]));
        stage = 2;
        const relay = { address: buf.subarray(4, 8).join('.'), port: buf.readUInt16BE(8) };
        const u = dgram.createSocket('udp4');
        u.on('message', () => { answered.add(i); if (answered.size === n) done(); });
        u.bind(0, '127.0.0.1', () => resolve({ c, u, relay }));
      }
    });
    c.write(Buffer.from([5, 1, 0]));
  });
}
const send = () => assocs.forEach((a, i) => { if (!answered.has(i)) a.u.send(Buffer.concat([header, Buffer.from('hold')]), a.relay.port, a.relay.address); });
let reported = false; let timer = null;
function done() { if (reported) return; reported = true; clearInterval(timer); console.log('held ' + answered.size); }
(async () => {
  for (let i = 0; i < n; i += 50) assocs.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => associate(i + k))));
  timer = setInterval(() => (++rounds >= 40 ? done() : send()), 300);
  send();
})().catch((e) => { console.log('held 0 (' + e.message + ')'); });
process.stdin.on('data', () => process.exit(0));`;

function percentile(v: number[], p: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

async function probe(topo: Topology, host: string, port: number, count: number, intervalMs: number, kind: 'echo' | 'dns'): Promise<LatencyRow & { rtts: number[] }> {
  const r = await topo.exec('client', process.execPath, ['-e', PROBE, host, String(port), String(count), String(intervalMs), kind], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`probe to ${host}:${port} failed: ${r.stderr.toString().trim()}`);
  const all = JSON.parse(r.stdout.toString()) as number[];
  const ok = all.filter((x) => x >= 0).map((us) => us / 1000);
  return { config: '', p50: percentile(ok, 50), p99: percentile(ok, 99), lost: all.length - ok.length, rtts: ok };
}

/** iperf3 -u from client to world ('up'), or world to client ('down': -R, the receiver is then in client). */
async function iperf(topo: Topology, host: string, mbit: number, seconds: number, window?: string, down = false): Promise<{ received: number; lossPct: number; jitterMs: number }> {
  const w = [...(window ? ['-w', window] : []), ...(down ? ['-R'] : [])];
  const r = await topo.exec('client', 'iperf3', ['-c', host, '-p', '5201', '-u', '-b', `${mbit}M`, '-l', '1200', '-t', String(seconds), ...w, '--json'], { timeoutMs: (seconds + 30) * 1000 });
  const j = JSON.parse(r.stdout.toString()) as { error?: string; end?: { sum?: { bits_per_second: number; lost_percent: number; jitter_ms: number } } };
  if (j.error || !j.end?.sum) throw new Error(`iperf3 -u to ${host} at ${mbit} Mbit/s: ${j.error ?? 'no summary'}`);
  // The client's end.sum carries what the server received (iperf3 ≥ 3.1: the receiver's report).
  return { received: (j.end.sum.bits_per_second * (1 - j.end.sum.lost_percent / 100)) / 1e6, lossPct: j.end.sum.lost_percent, jitterMs: j.end.sum.jitter_ms };
}

/** Counters that tell where datagrams of a tunnel run were lost (the log shows their change over each run). */
interface DropCounters { [where: string]: number }

/**
 * zksd's own drops (`zks status --json`: its links' datagram queues, its UDP flows, its netstack) and the kernel's
 * UDP receive-buffer overflows in the client and world namespaces (/proc/net/snmp: the receiving application, or the
 * exit peer's NAT sockets, were too slow). What is lost and in none of these was lost in the exit peer or the room.
 */
async function dropCounters(topo: Topology, zksd: ZksdProcess): Promise<DropCounters> {
  const out: DropCounters = {};
  const st = JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as {
    connections?: Array<{ datagrams?: { dropped?: number } }>;
    netstack?: { udpDropped?: number };
    udp?: Record<string, number>;
  };
  out['zksd link queue'] = (st.connections ?? []).reduce((n, c) => n + (c.datagrams?.dropped ?? 0), 0);
  out['zksd netstack'] = st.netstack?.udpDropped ?? 0;
  for (const k of ['udpPendingDropped', 'udpSendDropped', 'udpReplyDropped']) out[`zksd ${k}`] = st.udp?.[k] ?? 0;
  for (const ns of ['client', 'world'] as const) {
    const snmp = (await topo.exec(ns, 'cat', ['/proc/net/snmp'])).stdout.toString().split('\n').filter((l) => l.startsWith('Udp:'));
    const [names, values] = snmp.map((l) => l.trim().split(/\s+/).slice(1));
    const at = names?.indexOf('RcvbufErrors') ?? -1;
    out[`${ns} ns UDP RcvbufErrors`] = at >= 0 ? Number(values[at]) : NaN;
  }
  return out;
}

function dropsBetween(before: DropCounters, after: DropCounters): string {
  const moved = Object.keys(after).filter((k) => after[k] !== before[k]).map((k) => `${k} +${after[k] - before[k]}`);
  return moved.length ? moved.join(', ') : 'none counted';
}

interface MemorySample { rss: number; heap: number }

/** Idle time between a process's two reports: V8 gives its young generation back only after ~5 s of low allocation. */
const IDLE_BEFORE_REPORT_MS = 6_000;

/** One SIGUSR2 report (memory-report.ts): the process prints its memory after a full GC on stdout. */
async function report(proc: NsProcess, pid: number): Promise<string> {
  const from = proc.lines.length;
  process.kill(pid, 'SIGUSR2');
  return proc.waitLine(/^memory after GC:/, 30_000, from);
}

/** The bulk download beside the real-time flow: the most the world's HTTP server sends (it is stopped after). */
const BULK_BYTES = 4 * 1024 ** 3;

/** Reports taken after the idle wait; the figure is their lowest reading (see idleMemory). */
const SETTLED_REPORTS = 3;

/**
 * Memory of processes whose flows sit idle: a first report (its GC marks the end of the burst that opened the
 * flows), IDLE_BEFORE_REPORT_MS of idleness, then SETTLED_REPORTS reports, of which the lowest RSS and heap are
 * the figure. Each report is a memory-reducing GC; what varies between them is the young generation, which V8
 * shrinks back to 1 MiB at some scavenge after the burst (a report may still see it at 2–32 MiB: ±8 KiB per flow
 * at 2 000 flows) — transient, not per-flow state. The log shows every reading.
 */
async function idleMemory(procs: Array<{ proc: NsProcess; pid: number }>, log: (line: string) => void): Promise<MemorySample[]> {
  await Promise.all(procs.map((p) => report(p.proc, p.pid)));
  await new Promise((resolve) => setTimeout(resolve, IDLE_BEFORE_REPORT_MS));
  const samples: MemorySample[][] = procs.map(() => []);
  for (let i = 0; i < SETTLED_REPORTS; i++) {
    const lines = await Promise.all(procs.map((p) => report(p.proc, p.pid)));
    lines.forEach((line, k) => {
      const field = (key: string) => Number(new RegExp(`\\b${key}=(\\d+)`).exec(line)?.[1] ?? NaN);
      samples[k].push({ rss: field('rss'), heap: field('heapUsed') + field('external') });
      log(`  pid ${procs[k].pid}: ${line}`);
    });
  }
  return samples.map((s) => ({ rss: Math.min(...s.map((x) => x.rss)), heap: Math.min(...s.map((x) => x.heap)) }));
}

function perFlow(name: MemoryRow['process'], flows: number, before: MemorySample, after: MemorySample): MemoryRow {
  const per = (k: keyof MemorySample) => (after[k] - before[k]) / flows;
  return { process: name, flows, rssAfterGc: per('rss'), heapAfterGc: per('heap') };
}

/** Starts `hold` in `ns`, waits until it reports its flows, measures, then ends it. */
async function withHeldFlows(ns: string, name: string, script: string, n: number, diagnostics: string[], measure: () => Promise<void>): Promise<void> {
  const hold = startIn(ns, name, [process.execPath, '-e', script, String(n)]);
  try {
    const heldLine = await hold.waitLine(/^held/, 120_000);
    if (!heldLine.includes(`held ${n}`)) diagnostics.push(`${name}: only "${heldLine}" of ${n} flows answered`);
    await measure();
    hold.send('x');
  } finally {
    await hold.stop(2_000);
  }
}

export async function runUdpBench(s: UdpBenchSettings, log: (line: string) => void): Promise<UdpBenchResults> {
  const diagnostics: string[] = [];
  log('UDP rows: zksd in relay mode (room + exit peer in "world"), iperf3/dnsmasq/echo in world, probes in "client"');
  // The exit peer is started here rather than by the topology, to read its memory reports on its stdout.
  const topo = await createTopology({ exitPeer: false, iperf: true, ssh: false });
  let zksd: ZksdProcess | undefined;
  const procs: NsProcess[] = [];
  try {
    const roomSecret = generateKey();
    // The flow caps raised above the idle-flow count, so every held flow is a live one at both ends.
    const cap = String(Math.max(4096, 3 * s.idleFlows));
    const exit = startIn(topo.ns.world, 'zks exit-peer', [process.execPath, ZKS, 'exit-peer', '--relay', topo.relayUrl!, '--key', topo.key!,
      '--room', roomSecret, '--allow-lan', '--udp-max-flows', cap, '--quiet']);
    procs.push(exit);
    await exit.waitLine(/zks exit-peer ready/, 30_000);
    const echo = startIn(topo.ns.world, 'udp echo', [process.execPath, '-e', ECHO_SERVER]);
    procs.push(echo);
    await echo.waitLine(/echo ready/, 10_000);
    const dnsmasq = startIn(topo.ns.world, 'dnsmasq', ['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv',
      '--no-hosts', '--address=/example.test/10.79.1.77', `--listen-address=${T},${DIRECT}`, '--bind-interfaces', '--port=53',
      '--log-facility=-', '--user=root']);
    procs.push(dnsmasq);
    await dnsmasq.waitStderr(/started, version/, 15_000);
    zksd = await startZksd(topo, ['--room', roomSecret, '--dns-upstream', `${T}:53`, '--no-kill-switch', '--udp-max-flows', cap]);
    await zksIn(topo, zksd, ['route', 'add', `${DIRECT}/32`, '--bypass']);
    const zksdPid = (JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as { pid: number }).pid;

    // Memory first, on fresh processes. As many flows first, held through the measurement: the baseline then has
    // what every flow shares (the datagram connection: a session with its keys and buffers at each end), the flow
    // path's code compiled, and the memory a burst of n new flows leaves fragmented in malloc (freed, not given
    // back); the figure is what n more flows cost a process that already holds n.
    const n = s.idleFlows;
    const warm = n;
    log(`memory: zksd and exit peer with ${warm + n} idle UDP flows vs ${warm} (after GC, SIGUSR2 reports)`);
    const measured = [{ proc: zksd.proc, pid: zksdPid }, { proc: exit, pid: exit.pid }];
    let before: MemorySample[] = [];
    let after: MemorySample[] = [];
    await withHeldFlows(topo.ns.client, 'first udp flows', HOLD, warm, diagnostics, async () => {
      before = await idleMemory(measured, log);
      await withHeldFlows(topo.ns.client, 'more udp flows', HOLD, n, diagnostics, async () => {
        after = await idleMemory(measured, log);
      });
    });
    const memory = [perFlow('zksd', n, before[0], after[0]), perFlow('exit peer', n, before[1], after[1])];

    log(`memory: zks p2p-client with ${warm + n} SOCKS5 UDP associations vs ${warm}`);
    const client = startIn(topo.ns.world, 'zks p2p-client', [process.execPath, ZKS, 'p2p-client', '--relay', topo.relayUrl!, '--key', topo.key!,
      '--room', roomSecret, '--listen', `127.0.0.1:${SOCKS_PORT}`, '--quiet'], { ...process.env, XDG_RUNTIME_DIR: topo.dir });
    procs.push(client);
    await client.waitLine(/zks p2p-client ready/, 30_000);
    const proxy = [{ proc: client, pid: client.pid }];
    await withHeldFlows(topo.ns.world, 'first udp associations', HOLD_SOCKS, warm, diagnostics, async () => {
      before = await idleMemory(proxy, log);
      await withHeldFlows(topo.ns.world, 'more udp associations', HOLD_SOCKS, n, diagnostics, async () => {
        after = await idleMemory(proxy, log);
      });
    });
    memory.push(perFlow('client (zks p2p-client)', n, before[0], after[0]));
    await client.stop(); // idle from here on, but no need to keep it beside the throughput rows
    for (const m of memory) log(`${m.process}: ${(m.rssAfterGc / 1024).toFixed(2)} KiB RSS after GC per flow`);

    log(`iperf3 -u at ${s.rates.join(', ')} Mbit/s, ${s.seconds} s each: direct (bypass) and through zksd → exit`);
    const rows: IperfRow[] = [];
    await iperf(topo, T, 50, 1).catch((e: Error) => {
      diagnostics.push(`warm-up: ${e.message}`);
      log(`warm-up failed: ${e.message}`);
    });
    const top = Math.max(...s.rates);
    const runs = [
      ...s.rates.map((r) => [r, IPERF_WINDOW, false] as const),
      [top, IPERF_WINDOW, true] as const, // the download direction: what QUIC mostly does
      [top, undefined, false] as const,
    ];
    for (const [rate, window, down] of runs) {
      const buffer = window ? `${window.replace('M', ' MiB')}` : 'default';
      const direction = down ? 'down' : 'up';
      const direct = await iperf(topo, DIRECT_IPERF, rate, s.seconds, window, down);
      const countersBefore = await dropCounters(topo, zksd);
      const tunnel = await iperf(topo, T, rate, s.seconds, window, down).catch((e: Error) => {
        diagnostics.push(e.message);
        return { received: NaN, lossPct: NaN, jitterMs: NaN };
      });
      const drops = dropsBetween(countersBefore, await dropCounters(topo, zksd));
      log(`  drops during the tunnel run: ${drops}`);
      if (tunnel.lossPct > 1 && window) diagnostics.push(`${rate} Mbit/s ${down ? 'down' : 'up'} lost ${tunnel.lossPct.toFixed(2)} %: ${drops}`);
      rows.push({ config: 'direct', direction, buffer, offered: rate, ...direct }, { config: 'zksd relay', direction, buffer, offered: rate, ...tunnel });
      log(`${rate} Mbit/s ${direction} (receiver buffer ${buffer}): direct ${direct.received.toFixed(0)} (${direct.lossPct.toFixed(2)} % lost), zksd ${tunnel.received.toFixed(0)} (${tunnel.lossPct.toFixed(2)} % lost)`);
    }

    log(`DNS: ${s.dnsQueries} sequential queries each: direct, UDP flow through the exit, zksd resolver (DNS-over-TCP)`);
    const dns: LatencyRow[] = [];
    for (const [config, host] of [['direct (dnsmasq)', DIRECT], ['zksd relay, UDP flow', T], ['zksd resolver (DNS-over-TCP)', '100.77.0.53']] as const) {
      const r = await probe(topo, host, 53, s.dnsQueries, 0, 'dns');
      dns.push({ config, p50: r.p50, p99: r.p99, lost: r.lost });
    }

    log(`real-time flow: ${s.pings} echoes every 5 ms, idle and during a bulk download through the same link`);
    const idle = await probe(topo, T, ECHO_PORT, s.pings, 5, 'echo');
    const directRt = await probe(topo, DIRECT, ECHO_PORT, s.pings, 5, 'echo');
    // The bulk download's rate, from what zksd writes into its TUN: alone (the links stop pacing their bulk 5 s
    // after the last datagram, PACE_AFTER_DATAGRAM_MS) and beside the real-time flow (paced).
    const tunBytes = async () => Number((await topo.exec('client', 'cat', ['/sys/class/net/zks0/statistics/rx_bytes'])).stdout.toString().trim());
    const rate = async <T>(during: () => Promise<T>): Promise<[T, number]> => {
      const [b0, t0] = [await tunBytes(), performance.now()];
      const r = await during();
      return [r, ((await tunBytes()) - b0) / ((performance.now() - t0) * 1000)];
    };
    const bulk = topo.exec('client', 'curl', ['-s', '-o', '/dev/null', '--max-time', '120', `http://${T}/bytes/${BULK_BYTES}`], { timeoutMs: 130_000 });
    await new Promise((r) => setTimeout(r, PACE_AFTER_DATAGRAM_MS + 500));
    const [, aloneMBps] = await rate(() => new Promise((r) => setTimeout(r, 2_000)));
    const [loaded, pacedMBps] = await rate(() => probe(topo, T, ECHO_PORT, s.pings, 5, 'echo'));
    const stillRunning = await Promise.race([bulk.then(() => false), new Promise<boolean>((r) => setImmediate(() => r(true)))]);
    if (!stillRunning) diagnostics.push('the bulk download ended before the loaded echo run did: the loaded figure is partly idle');
    execFileSync('ip', ['netns', 'exec', topo.ns.client, 'pkill', '-f', `bytes/${BULK_BYTES}`]);
    await bulk.catch(() => {});
    const realtime: LatencyRow[] = [
      { config: 'direct', p50: directRt.p50, p99: directRt.p99, lost: directRt.lost },
      { config: 'zksd relay, idle', p50: idle.p50, p99: idle.p99, lost: idle.lost },
      { config: 'zksd relay, a bulk TCP download alone', p50: NaN, p99: NaN, lost: 0, bulkMBps: aloneMBps },
      { config: 'zksd relay, with a bulk TCP download', p50: loaded.p50, p99: loaded.p99, lost: loaded.lost, bulkMBps: pacedMBps },
    ];

    const at500 = (direction: 'up' | 'down', buffer: (b: string) => boolean) =>
      rows.find((r) => r.config === 'zksd relay' && r.offered === 500 && r.direction === direction && buffer(r.buffer));
    const up500 = at500('up', (b) => b !== 'default');
    const down500 = at500('down', (b) => b !== 'default');
    const up500default = at500('up', (b) => b === 'default');
    const targets: Target[] = [
      ...(up500 && down500 ? [{
        name: `iperf3 -u 500 Mbit/s offered through zksd relay, both directions (receiver buffer ${up500.buffer}): ≤ 1 % loss`,
        pass: up500.lossPct <= 1 && down500.lossPct <= 1,
        value: `up ${up500.lossPct.toFixed(2)} % lost (${up500.received.toFixed(0)} Mbit/s), down ${down500.lossPct.toFixed(2)} % (${down500.received.toFixed(0)} Mbit/s)` +
          (up500default ? `; receiver's default buffer, up: ${up500default.lossPct.toFixed(2)} % lost` : ''),
      }] : []),
      { name: 'real-time p99 with a bulk download ≤ 2× idle', pass: loaded.p99 <= 2 * idle.p99, value: `${loaded.p99.toFixed(2)} ms vs ${idle.p99.toFixed(2)} ms (${(loaded.p99 / idle.p99).toFixed(1)}×)` },
      // Both figures: RSS moves by whole pages and malloc reuses freed memory, so at 2 000 flows it can come out
      // below the heap the flows hold (or even below zero); the heap is then the better floor.
      ...memory.map((m) => ({
        name: `${m.process} memory per idle UDP flow ≤ 4 KiB (RSS and heap+external after GC)`,
        pass: m.rssAfterGc <= 4096 && m.heapAfterGc <= 4096,
        value: `${(m.rssAfterGc / 1024).toFixed(2)} KiB (heap+external ${(m.heapAfterGc / 1024).toFixed(2)} KiB)`,
      })),
    ];
    return { iperf: rows, dns, realtime, memory, targets, diagnostics };
  } finally {
    await zksd?.stop().catch(() => {});
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
    await topo.destroy();
  }
}

export function formatUdp(r: UdpBenchResults): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const lat = (rows: LatencyRow[]) => rows.map((x) => `| ${x.config} | ${f(x.p50, 2)} | ${f(x.p99, 2)} | ${x.lost} |`);
  return [
    '### UDP through zksd in relay mode (TUN → netstack → room → exit peer), vs direct between the namespaces',
    '',
    '| path | direction | receiver buffer | offered Mbit/s | received Mbit/s | loss % | jitter ms |',
    '|---|---|---|---|---|---|---|',
    ...r.iperf.map((x) => `| ${x.config} | ${x.direction} | ${x.buffer} | ${x.offered} | ${f(x.received)} | ${f(x.lossPct, 2)} | ${f(x.jitterMs, 3)} |`),
    '',
    '| DNS query (sequential) | p50 ms | p99 ms | lost |',
    '|---|---|---|---|',
    ...lat(r.dns),
    '',
    '| real-time flow (160 B every 5 ms) | p50 ms | p99 ms | lost | bulk download MB/s |',
    '|---|---|---|---|---|',
    ...r.realtime.map((x) => `| ${x.config} | ${f(x.p50, 2)} | ${f(x.p99, 2)} | ${Number.isFinite(x.p50) ? x.lost : '–'} | ${x.bulkMBps === undefined ? '–' : f(x.bulkMBps)} |`),
    '',
    `| memory per idle UDP flow (${r.memory[0]?.flows ?? 0} more, beside as many already held) | RSS after GC KiB | heap+external after GC KiB |`,
    '|---|---|---|',
    ...r.memory.map((m) => `| ${m.process} | ${f(m.rssAfterGc / 1024, 2)} | ${f(m.heapAfterGc / 1024, 2)} |`),
    '',
    'Client flows are SOCKS5 UDP associations (one TCP control connection + one relay socket + one tunnel flow each). ' +
      'Each process reports its memory on SIGUSR2 after a full, memory-reducing GC, once its RSS has settled, after 6 s idle; ' +
      'kernel socket buffers are in none of the figures.',
    '',
    ...r.targets.map((t) => `- ${t.pass ? 'PASS' : 'MISS'} ${t.name}: ${t.value}`),
    ...r.diagnostics.map((d) => `- note: ${d}`),
  ].join('\n');
}
