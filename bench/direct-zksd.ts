// `npm run bench:direct -- zksd` (root): zksd in relay mode between two network namespaces, with and without the
// direct paths, in ONE run: the Worker and `zks exit-peer` in "world", zksd and the clients in "client" (the test
// topology, test/daemon/topology.ts). Per path: iperf3 TCP, one stream, both directions (MB/s); iperf3 -u at
// offered rates (what arrived, loss); zksd's and the exit peer's CPU-s/GB on the TCP runs. The room path is
// measured first, then zksd restarts with --direct (the TCP path), then with --direct --no-direct-tcp (WebRTC).
// Everything stays inside the namespaces the run creates.

import { readFileSync } from 'node:fs';
import { ADDR, createTopology, type Topology } from '../test/daemon/topology';
import { startZksd, zksIn, type ZksdProcess } from '../test/daemon/zksd-helpers';

type ZksdPath = 'room' | 'direct TCP' | 'direct WebRTC';
const ZKSD_FLAGS: Record<ZksdPath, string[]> = { room: [], 'direct TCP': ['--direct'], 'direct WebRTC': ['--direct', '--no-direct-tcp'] };
const UP_LINE: Record<ZksdPath, RegExp | null> = { room: null, 'direct TCP': /direct TCP path up/, 'direct WebRTC': /direct path up \(direct/ };

export interface ZksdPathRow {
  path: ZksdPath;
  tcpDownMBps: number;
  tcpUpMBps: number;
  udp: Array<{ offeredMbit: number; receivedMbit: number; lossPct: number }>;
  cpuPerGB: { zksd: number; exit: number };
}

const SECONDS = 5;
const RATES = [100, 300];

function cpuSecondsOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function pidOf(topo: Topology, re: RegExp): Promise<number> {
  const r = await topo.exec('world', 'pgrep', ['-f', re.source]);
  const pid = Number(r.stdout.toString().split('\n')[0]);
  if (!pid) throw new Error(`no process matching ${re} in world`);
  return pid;
}

async function iperfTcp(topo: Topology, down: boolean): Promise<number> {
  const r = await topo.exec('client', 'iperf3', ['-c', ADDR.tunnelOnly, '-p', '5201', '-t', String(SECONDS), ...(down ? ['-R'] : []), '--json'], { timeoutMs: (SECONDS + 30) * 1000 });
  if (!r.stdout.length) throw new Error(`iperf3 TCP${down ? ' -R' : ''} printed nothing (exit ${r.code}, ${r.ms} ms): ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout.toString()) as { error?: string; end?: { sum_received?: { bytes: number; seconds: number } } };
  if (j.error || !j.end?.sum_received) throw new Error(`iperf3 TCP: ${j.error ?? 'no summary'}`);
  return j.end.sum_received.bytes / j.end.sum_received.seconds / 1e6;
}

async function iperfUdp(topo: Topology, mbit: number): Promise<{ receivedMbit: number; lossPct: number }> {
  const r = await topo.exec('client', 'iperf3', ['-c', ADDR.tunnelOnly, '-p', '5201', '-u', '-b', `${mbit}M`, '-l', '1200', '-t', String(SECONDS), '--json'], { timeoutMs: (SECONDS + 30) * 1000 });
  const j = JSON.parse(r.stdout.toString()) as { error?: string; end?: { sum?: { bits_per_second: number; lost_percent: number } } };
  if (j.error || !j.end?.sum) throw new Error(`iperf3 -u at ${mbit} Mbit/s: ${j.error ?? 'no summary'}`);
  return { receivedMbit: (j.end.sum.bits_per_second * (1 - j.end.sum.lost_percent / 100)) / 1e6, lossPct: j.end.sum.lost_percent };
}

async function measure(topo: Topology, zksd: ZksdProcess, path: ZksdPath, log: (l: string) => void): Promise<ZksdPathRow> {
  const zksdPid = (JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as { pid: number }).pid;
  const exitPid = await pidOf(topo, /zks\.js exit-peer/);
  let cpu = { zksd: 0, exit: 0 };
  let bytes = 0;
  const tcp = async (down: boolean) => {
    const [z, e] = [cpuSecondsOf(zksdPid), cpuSecondsOf(exitPid)];
    const mbps = await iperfTcp(topo, down);
    cpu = { zksd: cpu.zksd + cpuSecondsOf(zksdPid) - z, exit: cpu.exit + cpuSecondsOf(exitPid) - e };
    bytes += mbps * 1e6 * SECONDS;
    return mbps;
  };
  log(`${path}: iperf3 TCP down, up`);
  const tcpDownMBps = await tcp(true);
  const tcpUpMBps = await tcp(false);
  const udp = [];
  for (const rate of RATES) {
    log(`${path}: iperf3 -u ${rate} Mbit/s`);
    udp.push({ offeredMbit: rate, ...(await iperfUdp(topo, rate)) });
  }
  return { path, tcpDownMBps, tcpUpMBps, udp, cpuPerGB: { zksd: cpu.zksd / (bytes / 1e9), exit: cpu.exit / (bytes / 1e9) } };
}

export async function runZksdDirectBench(log: (l: string) => void): Promise<ZksdPathRow[]> {
  const topo = await createTopology({ exitPeer: true, iperf: true, ssh: false });
  const rows: ZksdPathRow[] = [];
  try {
    for (const path of ['room', 'direct TCP', 'direct WebRTC'] as const) {
      const zksd = await startZksd(topo, ['--room', topo.roomSecret!, ...ZKSD_FLAGS[path]]);
      try {
        if (UP_LINE[path]) await zksd.proc.waitStderr(UP_LINE[path]!, 30_000);
        rows.push(await measure(topo, zksd, path, log).catch((err: Error) => {
          throw new Error(`${path}: ${err.message}\nzksd's last log lines:\n${zksd.proc.stderr().slice(-3000)}`);
        }));
        if (path !== 'room') {
          const st = await zksIn(topo, zksd, ['status', '--json']);
          if (st.code !== 0) throw new Error(`zks status failed (${st.code}): ${st.stderr.trim()}; zksd: ${zksd.proc.stderr().slice(-2000)}`);
          const link = (JSON.parse(st.stdout.toString()) as { connections: Array<{ path: string }> }).connections[0];
          if (link?.path !== 'direct') throw new Error(`the direct path was not in use at the end (${link?.path})`);
        }
      } finally {
        await zksd.stop();
      }
    }
  } finally {
    await topo.destroy();
  }
  return rows;
}

export function formatZksdDirect(rows: ZksdPathRow[]): string {
  const room = rows.find((r) => r.path === 'room');
  const lines = [
    `### zksd relay mode between namespaces: room vs direct path (iperf3, ${SECONDS} s each, one run)`, '',
    `| path | TCP down MB/s | TCP up MB/s | ÷ room | ${RATES.map((r) => `UDP ${r} Mbit/s: arrived, loss`).join(' | ')} | CPU-s/GB zksd / exit |`,
    `|---|---|---|---|${RATES.map(() => '---|').join('')}---|`,
  ];
  for (const r of rows) {
    const ratio = room ? `${(r.tcpDownMBps / room.tcpDownMBps).toFixed(2)} / ${(r.tcpUpMBps / room.tcpUpMBps).toFixed(2)}` : '–';
    lines.push(`| ${r.path} | ${r.tcpDownMBps.toFixed(0)} | ${r.tcpUpMBps.toFixed(0)} | ${ratio} | ` +
      `${r.udp.map((u) => `${u.receivedMbit.toFixed(0)} Mbit/s, ${u.lossPct.toFixed(1)} %`).join(' | ')} | ` +
      `${r.cpuPerGB.zksd.toFixed(2)} / ${r.cpuPerGB.exit.toFixed(2)} |`);
  }
  return lines.join('\n');
}
