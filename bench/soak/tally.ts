// What a soak driver is told and what it reports back: its configuration, the per-kind tally of finished flows
// (counts, bytes both ways, sha256/echo mismatches, durations) and the JSON lines it prints. Shared by the driver
// process and the soak's report, so both read one definition.
import type { FlowResult, Target } from './flows';
import type { UdpStats } from './udp-flows';

export const KINDS = ['bulk down', 'bulk up', 'short', 'idle', 'udp long', 'udp short'] as const;
export type Kind = (typeof KINDS)[number];

export interface DriverConfig {
  lane: string;
  /** SOCKS5 port on 127.0.0.1; absent: connect straight (zksd's TUN carries it). */
  socksPort?: number;
  target: Target;
  bulkBytes: number;
  /** Bytes per second of each bulk transfer (0: unpaced). */
  bulkRate: number;
  shortPerSec: number;
  shortBytes: number;
  idle: number;
  udpFlows: number;
  udpIntervalMs: number;
  udpBytes: number;
  udpShortPerSec: number;
  /** A flow not done in this long fails (longer than a resume grace period plus a Worker restart). */
  flowTimeoutMs: number;
  /** At most this many short flows (TCP and UDP each) in flight; beyond it a tick is skipped and counted. */
  maxInFlight: number;
}

export interface KindSummary {
  flows: number;
  ok: number;
  failed: number;
  corrupt: number;
  sent: number;
  received: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** udp long only: datagram counters summed over the flows. */
  udp?: UdpStats;
}

export type DriverEvent =
  | { ev: 'ready'; lane: string }
  | { ev: 'fail'; lane: string; kind: Kind; id: number; t: number; error: string; ms: number }
  | { ev: 'tick'; lane: string; t: number; done: Record<Kind, number>; failed: number; inFlight: number; skipped: number }
  | { ev: 'summary'; lane: string; kinds: Record<Kind, KindSummary>; skipped: number };

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export class Tally {
  private readonly rows = new Map<Kind, { r: Omit<KindSummary, 'p50Ms' | 'p99Ms' | 'maxMs'>; ms: number[] }>();

  constructor() {
    for (const k of KINDS) this.rows.set(k, { r: { flows: 0, ok: 0, failed: 0, corrupt: 0, sent: 0, received: 0 }, ms: [] });
  }

  add(kind: Kind, res: FlowResult, udp?: UdpStats): void {
    const row = this.rows.get(kind)!;
    row.r.flows++;
    if (res.ok) row.r.ok++;
    else row.r.failed++;
    if (res.corrupt) row.r.corrupt++;
    row.r.sent += res.sent;
    row.r.received += res.received;
    row.ms.push(res.ms);
    if (udp) {
      const u = (row.r.udp ??= { sent: 0, received: 0, duplicates: 0, corrupt: 0, maxSilenceMs: 0 });
      u.sent += udp.sent;
      u.received += udp.received;
      u.duplicates += udp.duplicates;
      u.corrupt += udp.corrupt;
      u.maxSilenceMs = Math.max(u.maxSilenceMs, udp.maxSilenceMs);
    }
  }

  done(): Record<Kind, number> {
    return Object.fromEntries(KINDS.map((k) => [k, this.rows.get(k)!.r.flows])) as Record<Kind, number>;
  }

  failed(): number {
    return KINDS.reduce((n, k) => n + this.rows.get(k)!.r.failed, 0);
  }

  summary(): Record<Kind, KindSummary> {
    return Object.fromEntries(KINDS.map((k) => {
      const { r, ms } = this.rows.get(k)!;
      return [k, { ...r, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99), maxMs: ms.length ? ms.reduce((a, b) => Math.max(a, b)) : NaN }];
    })) as Record<Kind, KindSummary>;
  }
}
