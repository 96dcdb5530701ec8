// What `zks ping` prints, as ping(8) of iputils prints it (ping/ping_common.c: the reply line, finish()), plus a
// marker on every answer saying how the exit got it: "(icmp)" for a real echo reply, "(tcp:443)" for the time of a
// TCP connect. Pure functions: the numbers are computed like iputils does, in integer microseconds, so the summary
// of the same round-trip times matches its output digit for digit (test/cli/ping-view.test.ts checks real ping).

import { EchoFailure, type EchoResult } from '../protocol/datagram-types';

/** ping's "56(84) bytes of data" line; with --tcp, the port that is timed instead. */
export function formatPingHeader(host: string, payloadSize: number, tcpPort?: number): string {
  if (tcpPort !== undefined) return `PING ${host}: TCP connect to port ${tcpPort} (tcp:${tcpPort}).`;
  return `PING ${host} ${payloadSize}(${payloadSize + 28}) bytes of data.`;
}

/** A round trip in whole microseconds, as ping measures it. */
export function rttMicros(rttMs: number): number {
  return Math.max(0, Math.round(rttMs * 1000));
}

/** ping's time=… value: 3 decimals below 1 ms, 2 below 10, 1 below 100, none above (rounded as it rounds). */
export function formatRttMs(rttMs: number): string {
  const t = rttMicros(rttMs);
  if (t >= 100_000 - 50) return `${Math.floor((t + 500) / 1000)}`;
  if (t >= 10_000 - 5) return `${Math.floor((t + 50) / 1000)}.${Math.floor(((t + 50) % 1000) / 100)}`;
  if (t >= 1000) return `${Math.floor((t + 5) / 1000)}.${String(Math.floor(((t + 5) % 1000) / 10)).padStart(2, '0')}`;
  return `0.${String(t).padStart(3, '0')}`;
}

/**
 * The line for one answer, or null for a timeout (ping prints nothing for a lost packet):
 *   64 bytes from 10.1.2.3: icmp_seq=1 ttl=64 time=0.412 ms (icmp)
 *   from 10.1.2.3: icmp_seq=1 time=12.3 ms (tcp:443)          (nothing is echoed over TCP, and no TTL is seen)
 *   From 10.1.2.1 icmp_seq=1 Destination Host Unreachable     (the router's ICMP error, as ping prints it)
 */
export function formatEchoLine(seq: number, result: EchoResult): string | null {
  if (result.ok) {
    const time = `time=${formatRttMs(result.rttMs)} ms`;
    if (result.method === 'tcp') return `from ${result.address}: icmp_seq=${seq} ${time} (tcp:${result.tcpPort})`;
    const ttl = result.ttl > 0 ? ` ttl=${result.ttl}` : '';
    return `${result.payload.length + 8} bytes from ${result.address}: icmp_seq=${seq}${ttl} ${time} (icmp)`;
  }
  if (result.code === EchoFailure.TIMEOUT) return null;
  // The exit words ICMP errors "From ROUTER: TEXT"; ping puts the sequence number between the two.
  const icmp = /^From (\S+): (.+)$/.exec(result.message);
  if (icmp) return `From ${icmp[1]} icmp_seq=${seq} ${icmp[2]}`;
  return `icmp_seq=${seq} ${result.message}`;
}

/** Counts what ping's summary needs; feed it every request sent and every result. */
export class PingStats {
  transmitted = 0;
  received = 0;
  /** Answers that were an error (unreachable, refused by policy...), ping's "+N errors". */
  errors = 0;
  private readonly rtts: number[] = [];

  sent(): void {
    this.transmitted++;
  }

  record(result: EchoResult): void {
    if (result.ok) {
      this.received++;
      this.rtts.push(rttMicros(result.rttMs));
    } else if (result.code !== EchoFailure.TIMEOUT) {
      this.errors++;
    }
  }

  /** ping's closing lines; `elapsedMs` is the time from the first request to the end. */
  summary(host: string, elapsedMs: number): string[] {
    return formatPingSummary({ host, transmitted: this.transmitted, errors: this.errors, rttsMicros: this.rtts, elapsedMs });
  }
}

export interface PingSummaryInput {
  host: string;
  transmitted: number;
  errors: number;
  /** One per reply received, whole microseconds. */
  rttsMicros: readonly number[];
  elapsedMs: number;
}

/**
 *   --- host ping statistics ---
 *   5 packets transmitted, 4 received, +1 errors, 20% packet loss, time 4005ms
 *   rtt min/avg/max/mdev = 0.041/0.052/0.067/0.011 ms
 * The loss is C's %g of a float; mdev is iputils' integer sqrt(mean(t²) − mean(t)²) over microseconds.
 */
export function formatPingSummary(s: PingSummaryInput): string[] {
  const received = s.rttsMicros.length;
  let counts = `${s.transmitted} packets transmitted, ${received} received`;
  if (s.errors > 0) counts += `, +${s.errors} errors`;
  if (s.transmitted > 0) {
    const loss = Math.fround(((s.transmitted - received) * 100) / s.transmitted);
    counts += `, ${formatG(loss)}% packet loss, time ${Math.round(s.elapsedMs)}ms`;
  }
  const lines = [`--- ${s.host} ping statistics ---`, counts];
  if (received > 0) {
    const { min, avg, max, mdev } = rttStats(s.rttsMicros);
    lines.push(`rtt min/avg/max/mdev = ${micros(min)}/${micros(avg)}/${micros(max)}/${micros(mdev)} ms`);
  }
  return lines;
}

/** min, avg, max and mdev in microseconds, computed as iputils' finish() does (integer division, its llsqrt). */
export function rttStats(rtts: readonly number[]): { min: number; avg: number; max: number; mdev: number } {
  if (rtts.length === 0) return { min: 0, avg: 0, max: 0, mdev: 0 };
  const total = BigInt(rtts.length);
  let [sum, sum2, min, max] = [0n, 0n, Infinity, 0];
  for (const t of rtts) {
    sum += BigInt(t);
    sum2 += BigInt(t) * BigInt(t);
    min = Math.min(min, t);
    max = Math.max(max, t);
  }
  const avg = sum / total;
  // "This slightly clumsy computation order is important to avoid integer rounding errors for small ping times."
  const variance = sum < 2_147_483_647n ? (sum2 - (sum * sum) / total) / total : sum2 / total - avg * avg;
  return { min, avg: Number(avg), max, mdev: Number(integerSqrt(variance)) };
}

/** iputils' llsqrt, step for step: Newton's method on integers from the value down. It returns the step that
 * stopped the descent, which can be one above the floor of the root (llsqrt(3) = 2): ping prints that. */
function integerSqrt(a: bigint): bigint {
  let prev = 0x7fff_ffff_ffff_ffffn; // LLONG_MAX
  let x = a;
  if (x > 0n) {
    while (x < prev) {
      prev = x;
      x = (x + a / x) / 2n;
    }
  }
  return x;
}

const micros = (us: number) => `${Math.trunc(us / 1000)}.${String(us % 1000).padStart(3, '0')}`;

/** C printf's %g (6 significant digits, trailing zeros dropped, exponent form outside 1e-4 ≤ |v| < 1e6). */
export function formatG(v: number): string {
  if (v === 0) return '0';
  const [mantissa, e] = v.toExponential(5).split('e');
  const exp = Number(e);
  const strip = (t: string) => (t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t);
  if (exp < -4 || exp >= 6) return `${strip(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return strip(v.toFixed(5 - exp));
}
