// `zks ping` output against iputils ping itself: ping runs in the test topology (test/exit/ping-topology.ts); its
// per-reply times (exact microseconds below 1 ms) go through our summary, which must print the same statistics
// lines digit for digit, and each reply line must be ping's plus the "(icmp)" marker. The exit's pinger, in the same
// namespace, words the router's error so that our line equals ping's "From … Destination Host Unreachable".
// Named cases cover what the topology cannot produce (times ≥ 1 ms, partial loss), computed by iputils' formula.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EchoFailure, type EchoResult } from '../../src/protocol/datagram-types';
import { PingStats, formatEchoLine, formatG, formatPingHeader, formatPingSummary, formatRttMs, rttStats } from '../../src/cli/ping-view';
import { createPingTopology, PING_ADDR as A, type PingTopology } from '../exit/ping-topology';

const PROBE = fileURLToPath(new URL('../exit/fixtures/ping-probe.ts', import.meta.url));

const icmpReply = (address: string, rttMs: number, ttl = 64, size = 56): EchoResult =>
  ({ ok: true, method: 'icmp', tcpPort: 443, address, ttl, rttMs, payload: new Uint8Array(size) });

interface PingRun { replies: Array<{ line: string; address: string; seq: number; ttl: number; micros: number }>; errors: string[]; summary: string[] }

/** Splits ping's output into reply lines (with their fields), error lines and the summary. */
function parsePing(stdout: string): PingRun {
  const lines = stdout.trim().split('\n');
  const replies = lines.flatMap((line) => {
    // Below 1 ms ping prints exact microseconds (3 decimals); above, fewer digits (micros: NaN, not exact).
    const m = /^64 bytes from (\S+): icmp_seq=(\d+) ttl=(\d+) time=(\d+)(?:\.(\d+))? ms$/.exec(line);
    const micros = m && m[5]?.length === 3 ? Number(m[4]) * 1000 + Number(m[5]) : NaN;
    return m ? [{ line, address: m[1], seq: Number(m[2]), ttl: Number(m[3]), micros }] : [];
  });
  const at = lines.findIndex((l) => l.startsWith('--- '));
  return { replies, errors: lines.filter((l) => l.startsWith('From ')), summary: lines.slice(at) };
}
const elapsedOf = (summary: string[]) => Number(/time (\d+)ms/.exec(summary[1])![1]);

describe('against iputils ping in a network namespace', () => {
  let topo: PingTopology;
  beforeAll(async () => {
    topo = await createPingTopology();
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('the same round-trip times give the same reply lines and statistics (IPv4 and IPv6)', async () => {
    for (const host of [A.up, A.up6]) {
      // Only a run whose every reply took under 1 ms gives exact times for the summary; a loaded machine may need
      // a few runs (bounded) to get one.
      let run = parsePing('');
      for (let attempt = 0; attempt < 8; attempt++) {
        const r = await topo.exec('ping', ['-n', '-c', '12', '-i', '0.05', host]);
        expect(r.code, r.stderr).toBe(0);
        run = parsePing(r.stdout.toString());
        expect(run.replies, r.stdout.toString()).toHaveLength(12);
        if (run.replies.every((x) => Number.isFinite(x.micros))) break;
      }
      const stats = new PingStats();
      for (const reply of run.replies) {
        expect(reply.micros, 'sub-millisecond replies print exact microseconds').toBeLessThan(1000);
        const result = icmpReply(reply.address, reply.micros / 1000, reply.ttl);
        expect(formatEchoLine(reply.seq, result)).toBe(`${reply.line} (icmp)`);
        stats.sent();
        stats.record(result);
      }
      expect(stats.summary(host, elapsedOf(run.summary))).toEqual(run.summary);
    }
  });

  it('100 % loss (a black hole): the same summary, no rtt line', async () => {
    const r = await topo.exec('ping', ['-n', '-c', '2', '-i', '0.2', '-W', '0.3', A.blackhole]);
    const run = parsePing(r.stdout.toString());
    expect(run.summary[1]).toMatch(/^2 packets transmitted, 0 received, 100% packet loss/);
    const stats = new PingStats();
    for (let i = 0; i < 2; i++) {
      stats.sent();
      const lost: EchoResult = { ok: false, code: EchoFailure.TIMEOUT, message: 'no answer' };
      expect(formatEchoLine(i + 1, lost)).toBeNull();
      stats.record(lost);
    }
    expect(stats.summary(A.blackhole, elapsedOf(run.summary))).toEqual(run.summary);
  });

  it("an unreachable route: the exit's error, printed by us, is ping's line; errors counted as ping counts them", async () => {
    await topo.pingGroupRange(0, 2147483647);
    const r = await topo.exec('ping', ['-n', '-c', '1', A.unreachable]);
    const run = parsePing(r.stdout.toString());
    expect(run.errors).toEqual([`From ${A.world} icmp_seq=1 Destination Host Unreachable`]);
    const probe = await topo.exec(process.execPath, ['--import', 'tsx', PROBE, JSON.stringify({ requests: [{ host: A.unreachable, seq: 1, timeoutMs: 5_000 }] })]);
    expect(probe.code, probe.stderr).toBe(0);
    const result = (JSON.parse(probe.stdout.toString()) as { results: EchoResult[] }).results[0];
    expect(formatEchoLine(1, result)).toBe(run.errors[0]);
    const stats = new PingStats();
    stats.sent();
    stats.record(result);
    expect(stats.summary(A.unreachable, elapsedOf(run.summary))).toEqual(run.summary);
  });
});

describe('named cases (iputils formula)', () => {
  it('rtt min/avg/max/mdev in integer microseconds, with its llsqrt', () => {
    // tsum 6000, tsum2 14e6: tmvar = (14e6 − 6000²/3)/3 = 666 666 → 816.
    expect(rttStats([1000, 2000, 3000])).toEqual({ min: 1000, avg: 2000, max: 3000, mdev: 816 });
    // tsum 4, tsum2 16: tmvar = (16 − 16/4)/4 = 3, and llsqrt(3) is 2, one above the floor of √3: ping prints 0.002.
    expect(rttStats([0, 0, 0, 4])).toEqual({ min: 0, avg: 1, max: 4, mdev: 2 });
    expect(rttStats([41, 67, 52])).toEqual({ min: 41, avg: 53, max: 67, mdev: 10 }); // tmvar (8874 − 160²/3)/3 = 113
    expect(rttStats([5])).toEqual({ min: 5, avg: 5, max: 5, mdev: 0 });
    expect(rttStats([])).toEqual({ min: 0, avg: 0, max: 0, mdev: 0 });
    // Past INT_MAX microseconds in total iputils switches to mean(t²) − mean(t)².
    expect(rttStats([2_000_000_000, 2_000_000_002])).toEqual({ min: 2_000_000_000, avg: 2_000_000_001, max: 2_000_000_002, mdev: 1 });
  });

  it("equals iputils' own finish() arithmetic, compiled from C, for random round-trip lists", () => {
    const dir = mkdtempSync(join(tmpdir(), 'zks-ping-ref-'));
    try {
      // Transcribed from iputils ping/ping_common.c (finish() and llsqrt()): reads "n t1 … tn" lines.
      writeFileSync(join(dir, 'ref.c'), `#include <limits.h>
#include <stdio.h>
static long llsqrt(long long a) { long long prev = LLONG_MAX; long long x = a;
  if (x > 0) { while (x < prev) { prev = x; x = (x + (a / x)) / 2; } } return (long)x; }
int main(void) { long n; while (scanf("%ld", &n) == 1) {
  long long tsum = 0, tsum2 = 0, tmin = LLONG_MAX, tmax = 0, t;
  for (long i = 0; i < n; i++) { scanf("%lld", &t); tsum += t; tsum2 += t * t; if (t < tmin) tmin = t; if (t > tmax) tmax = t; }
  long total = n; long tmavg = tsum / total; long long tmvar;
  if (tsum < INT_MAX) tmvar = (tsum2 - ((tsum * tsum) / total)) / total; else tmvar = (tsum2 / total) - (tmavg * tmavg);
  printf("%lld %ld %lld %ld\\n", tmin, tmavg, tmax, llsqrt(tmvar)); } return 0; }
`);
      const cc = spawnSync('gcc', ['-O2', '-o', join(dir, 'ref'), join(dir, 'ref.c')], { encoding: 'utf8' });
      expect(cc.status, cc.stderr).toBe(0);
      const lists = fc.sample(fc.array(fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 3_000_000 })), { minLength: 1, maxLength: 40 }), 500);
      const out = spawnSync(join(dir, 'ref'), { input: lists.map((l) => `${l.length} ${l.join(' ')}`).join('\n'), encoding: 'utf8' });
      const want = out.stdout.trim().split('\n');
      expect(want).toHaveLength(lists.length);
      lists.forEach((l, i) => {
        const { min, avg, max, mdev } = rttStats(l);
        expect(`${min} ${avg} ${max} ${mdev}`, l.join(' ')).toBe(want[i]);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('packet loss as C prints a float with %g', () => {
    const loss = (tx: number, rx: number) =>
      formatPingSummary({ host: 'h', transmitted: tx, errors: 0, rttsMicros: Array(rx).fill(100), elapsedMs: 0 })[1];
    expect(loss(3, 2)).toBe('3 packets transmitted, 2 received, 33.3333% packet loss, time 0ms');
    expect(loss(3, 1)).toBe('3 packets transmitted, 1 received, 66.6667% packet loss, time 0ms');
    expect(loss(8, 7)).toBe('8 packets transmitted, 7 received, 12.5% packet loss, time 0ms');
    expect(loss(1, 1)).toBe('1 packets transmitted, 1 received, 0% packet loss, time 0ms');
    expect(loss(0, 0)).toBe('0 packets transmitted, 0 received');
    expect([formatG(1e-5), formatG(1234567), formatG(0.0001), formatG(99.99999)]).toEqual(['1e-05', '1.23457e+06', '0.0001', '100']);
  });

  it('time= with 3, 2, 1 and 0 decimals, rounded where ping rounds', () => {
    expect([0.412, 0.0004, 1.234, 1.235, 9.994, 9.995, 12.34, 99.949, 99.95, 123.4].map(formatRttMs))
      .toEqual(['0.412', '0.000', '1.23', '1.24', '9.99', '10.0', '12.3', '99.9', '100', '123']);
  });

  it('reply lines: icmp with bytes and TTL, tcp with its port and neither, errors as ping words them', () => {
    expect(formatEchoLine(1, icmpReply('10.1.2.3', 0.412))).toBe('64 bytes from 10.1.2.3: icmp_seq=1 ttl=64 time=0.412 ms (icmp)');
    expect(formatEchoLine(2, { ok: true, method: 'tcp', tcpPort: 443, address: '10.1.2.3', ttl: 0, rttMs: 12.34, payload: new Uint8Array(0) }))
      .toBe('from 10.1.2.3: icmp_seq=2 time=12.3 ms (tcp:443)');
    expect(formatEchoLine(3, { ok: false, code: EchoFailure.FORBIDDEN, message: 'target is a loopback address' }))
      .toBe('icmp_seq=3 target is a loopback address');
    expect(formatPingHeader('example.org', 56)).toBe('PING example.org 56(84) bytes of data.');
    expect(formatPingHeader('example.org', 56, 443)).toBe('PING example.org: TCP connect to port 443 (tcp:443).');
  });

  it('errors are counted apart from losses', () => {
    const stats = new PingStats();
    const results: EchoResult[] = [
      icmpReply('h', 1), { ok: false, code: EchoFailure.UNREACHABLE, message: 'x' }, { ok: false, code: EchoFailure.TIMEOUT, message: 'y' }, icmpReply('h', 3),
    ];
    for (const r of results) {
      stats.sent();
      stats.record(r);
    }
    expect(stats.summary('h', 3004.6)).toEqual([
      '--- h ping statistics ---',
      '4 packets transmitted, 2 received, +1 errors, 50% packet loss, time 3005ms',
      'rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms',
    ]);
  });
});
