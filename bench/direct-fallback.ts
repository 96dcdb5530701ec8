// Part of `npm run bench:direct` (root): how long a silently cut direct path takes to hand a running download back
// to the room. Each round builds the namespace topology of test/direct (client / router with the Worker / exit),
// starts a rate-limited download through `zks p2p-client` once the direct path is up (TCP, or WebRTC with TCP
// blocked), lets it run on the path, then drops everything between the sides in the router and times until the
// room's counter moves again (data flowing on the room). The download must still complete intact. Fresh processes
// per round: the client would wait 30 s before its next offer.

import { pseudoSha256 } from '../test/fixtures/pseudo-bytes';
import { createDirectTopology, ORIGIN_PORT } from '../test/direct/direct-topology';
import { percentile } from './lib/measure';

const MB = 1024 * 1024;

export interface FallbackResult {
  via: 'tcp' | 'webrtc';
  /** Cut → first room bytes of the download, ms, per round. */
  ms: number[];
  p50: number;
  p99: number;
  failures: string[];
}

export async function runFallbackBench(rounds: number, via: 'tcp' | 'webrtc', log: (l: string) => void): Promise<FallbackResult> {
  const ms: number[] = [];
  const failures: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const topo = await createDirectTopology();
    try {
      if (via === 'webrtc') await topo.block('tcp');
      const { client } = await topo.startPeers([], []);
      await client.waitStderr(via === 'tcp' ? /direct TCP path up/ : /direct path up \(direct/, 30_000);
      const carried = (c: { tcp: number; direct: number }) => (via === 'tcp' ? c.tcp : c.direct);
      const n = 200 * MB;
      const dl = topo.exec('client', 'bash', ['-c',
        `set -o pipefail; curl -sS --fail --limit-rate 25M --socks5-hostname 127.0.0.1:1080 http://127.0.0.1:${ORIGIN_PORT}/bytes/${n} | sha256sum`]);
      const start = await topo.counters();
      // Bounded polls: until 20 MB crossed the direct path.
      for (let i = 0; i < 2_000 && carried(await topo.counters()) - carried(start) < 20 * MB; i++);
      const before = await topo.counters();
      const cutAt = performance.now();
      await topo.block('direct');
      let resumedAt = NaN;
      for (let i = 0; i < 2_000; i++) {
        if ((await topo.counters()).room - before.room > 256 * 1024) {
          resumedAt = performance.now();
          break;
        }
      }
      const r = await dl;
      const sha = r.stdout.toString().split(' ')[0];
      if (r.code !== 0 || sha !== pseudoSha256(n)) failures.push(`round ${round + 1}: download failed (${r.code}) ${r.stderr.trim()}`);
      if (Number.isFinite(resumedAt)) ms.push(resumedAt - cutAt);
      else failures.push(`round ${round + 1}: the room never carried the rest`);
      log(`fallback (${via}) round ${round + 1}/${rounds}: ${Number.isFinite(resumedAt) ? `${Math.round(resumedAt - cutAt)} ms` : 'no fallback'}`);
    } finally {
      await topo.destroy();
    }
  }
  return { via, ms, p50: percentile(ms, 50), p99: percentile(ms, 99), failures };
}

export function formatFallback(r: FallbackResult): string {
  return [
    `### Direct ${r.via === 'tcp' ? 'TCP' : 'WebRTC'} path cut silently during a download → data on the room again (${r.ms.length} rounds)`, '',
    `p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms (each: ${r.ms.map((x) => x.toFixed(0)).join(', ')} ms); target ≤ 2 000 ms`,
    ...r.failures.map((f) => `- ${f}`),
  ].join('\n');
}
