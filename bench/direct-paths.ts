// Part of `npm run bench:direct` (root; `-- paths` runs only this): every path of a relay-mode session between two
// network namespaces, in ONE run — the topology of test/direct (client / router with the Worker and coturn / exit),
// `zks p2p-client` ↔ `zks exit-peer`, curl through the client's SOCKS5 port to the origin beside the exit. Per path:
// download and upload MB/s (curl, 200 MB each, sha256 checked), connect latency (time to the first byte of a small
// GET through a new stream, p50 / p99 of 20), and which router counter carried the bytes (proof of the path):
//   room    — `--no-direct`;
//   tcp     — the default (direct TCP path);
//   webrtc  — TCP between the sides blocked in the router;
//   turn    — everything between the sides blocked, `--turn` to coturn on the router.
// Fresh namespaces per path; everything stays inside them.

import { pseudoSha256 } from '../test/fixtures/pseudo-bytes';
import { ADDR, createDirectTopology, ORIGIN_PORT, TURN, type DirectTopology } from '../test/direct/direct-topology';
import { percentile } from './lib/measure';

const MB = 1024 * 1024;
const SIZE = 200 * MB;

type PathName = 'room' | 'tcp' | 'webrtc' | 'turn';

export interface PathRow {
  path: PathName;
  downMBps: number;
  upMBps: number;
  connectP50: number;
  connectP99: number;
  /** Router counter bytes per byte moved: which way the transfers went. */
  share: { room: number; tcp: number; udp: number; turn: number };
}

const turnArgs = ['--turn', `turn:${ADDR.relayClientSide}:${TURN.port}`, '--turn-user', TURN.user, '--turn-pass', TURN.pass];
const SETUP: Record<PathName, { block?: 'tcp' | 'direct'; args: string[]; up: RegExp | null }> = {
  room: { args: ['--no-direct'], up: null },
  tcp: { args: [], up: /direct TCP path up/ },
  webrtc: { block: 'tcp', args: [], up: /direct path up \(direct/ },
  turn: { block: 'direct', args: turnArgs, up: /direct path up \(turn/ },
};

async function curl(t: DirectTopology, args: string): Promise<string> {
  const r = await t.exec('client', 'bash', ['-c', `set -o pipefail; curl -sS --fail --socks5-hostname 127.0.0.1:1080 ${args}`], 600_000);
  if (r.code !== 0) throw new Error(`curl ${args} failed (${r.code}): ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
}

async function measurePath(path: PathName, log: (l: string) => void): Promise<PathRow> {
  const s = SETUP[path];
  const topo = await createDirectTopology({ turn: path === 'turn' });
  try {
    if (s.block) await topo.block(s.block);
    const { client } = await topo.startPeers(s.args, s.args);
    await curl(topo, `-o /dev/null http://127.0.0.1:${ORIGIN_PORT}/bytes/1000`); // opens the session
    if (s.up) await client.waitStderr(s.up, 30_000);
    log(`paths: ${path} up; measuring`);
    const before = await topo.counters();
    // The body to sha256sum (stdout), curl's speed to stderr.
    const dl = await topo.exec('client', 'bash', ['-c',
      `set -o pipefail; curl -sS --fail --socks5-hostname 127.0.0.1:1080 -w '%{stderr}%{speed_download}' http://127.0.0.1:${ORIGIN_PORT}/bytes/${SIZE} | sha256sum`], 600_000);
    if (dl.code !== 0 || dl.stdout.toString().split(' ')[0] !== pseudoSha256(SIZE)) throw new Error(`${path}: download failed or its sha256 is wrong: ${dl.stderr.toString()}`);
    const down = dl.stderr.toString().trim().split(/\s+/);
    const up = await curl(topo, `-w '%{speed_upload}' -o /dev/null -T - -X POST http://127.0.0.1:${ORIGIN_PORT}/sha256 < <(head -c ${SIZE} /dev/zero)`);
    const after = await topo.counters();
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      latencies.push(Number(await curl(topo, `-o /dev/null -w '%{time_starttransfer}' http://127.0.0.1:${ORIGIN_PORT}/`)) * 1000);
    }
    const moved = 2 * SIZE;
    return {
      path,
      downMBps: Number(down[down.length - 1]) / 1e6,
      upMBps: Number(up) / 1e6,
      connectP50: percentile(latencies, 50),
      connectP99: percentile(latencies, 99),
      share: {
        room: (after.room - before.room) / moved, tcp: (after.tcp - before.tcp) / moved,
        udp: (after.direct - before.direct) / moved, turn: (after.turn - before.turn) / moved,
      },
    };
  } finally {
    await topo.destroy();
  }
}

export async function runPathsBench(log: (l: string) => void): Promise<PathRow[]> {
  const rows: PathRow[] = [];
  for (const path of ['room', 'tcp', 'webrtc', 'turn'] as const) rows.push(await measurePath(path, log));
  return rows;
}

export function formatPaths(rows: PathRow[]): string {
  const room = rows.find((r) => r.path === 'room')!;
  const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
  return [
    `### Every path between namespaces (curl through zks p2p-client, ${SIZE / MB} MB each way, one run)`, '',
    '| path | down MB/s | up MB/s | ÷ room | connect (first byte) p50 / p99 ms | bytes seen on room / direct TCP / direct UDP / TURN |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.path} | ${r.downMBps.toFixed(0)} | ${r.upMBps.toFixed(0)} | ` +
      `${(r.downMBps / room.downMBps).toFixed(2)} / ${(r.upMBps / room.upMBps).toFixed(2)} | ${r.connectP50.toFixed(1)} / ${r.connectP99.toFixed(1)} | ` +
      `${pct(r.share.room)} / ${pct(r.share.tcp)} / ${pct(r.share.udp)} / ${pct(r.share.turn)} |`),
  ].join('\n');
}
