// How much DATA a sender keeps in flight on one link, chosen by the queueing delay it causes. A link is one TCP
// connection (through the relay), so everything queued on it — in our socket, the kernel's buffers, the relay's —
// sits in front of every datagram, PONG and new stream's first bytes: a bulk download with its full stream windows
// out (2 MiB each) kept ~1–2 MiB waiting ahead of a VoIP packet, 15–25 ms at a few hundred MB/s. A fixed smaller
// cap would starve long paths, so the cap follows the round-trip time of the PINGs that travel behind the data
// (mux.ts): a sample near the path's smallest RTT means the cap could grow, one well above it means our own data
// is queued and the cap shrinks (Vegas / LEDBAT style, with a target of a few ms instead of LEDBAT's 100).
// Pure: the mux feeds samples with its injected clock.

/**
 * Queueing delay above the path's base RTT that the sender tolerates before it shrinks its cap: this much, or a
 * quarter of the base RTT on a long path (whose own jitter is larger, and a tighter cap would starve it).
 */
export const PACER_TARGET_DELAY_MS = 1.5;
export const PACER_MIN_BYTES = 64 * 1024;
export const PACER_INITIAL_BYTES = 512 * 1024;
export const PACER_MAX_BYTES = 32 * 1024 * 1024;
/**
 * How long a base RTT is trusted. A sender whose cap keeps a queue never sees the path's own RTT, so after each
 * period it probes: the cap drops to its floor until a PING with at most that much ahead of it returns (its RTT is
 * the path's, give or take the floor's own bytes), then comes back. A few round trips at a lower rate every 10 s.
 */
export const PACER_BASE_RTT_PERIOD_MS = 10_000;
const MIN_STEP_BYTES = 16 * 1024;

/**
 * When a datagram or echo frame last went over any of the links that share queues (an exit's room connection
 * carries every session; a client's pool has a dedicated datagram link beside its stream links): their bulk is
 * paced while datagrams flow on any of them. Shared by reference; the mux updates it.
 */
export class DatagramActivity {
  lastAt = -Infinity;
}

export class DelayPacer {
  /** Unacknowledged DATA bytes allowed now. */
  limit: number;
  /** The path's base RTT, ms: the smallest sample since the last probe began (Infinity before the first). */
  private base = Infinity;
  /** While probing: the cap to return to, and when the probe began. */
  private probe: { resume: number; since: number } | null;
  private probedAt = -Infinity;
  /** When the cap last shrank: samples of PINGs sent before it still show the queue it was shrunk for. */
  private shrunkAt = -Infinity;

  constructor(
    private readonly targetMs = PACER_TARGET_DELAY_MS,
    private readonly minBytes = PACER_MIN_BYTES,
    private readonly maxBytes = PACER_MAX_BYTES,
  ) {
    // The first samples tell the base RTT: start with a probe (a few KiB of PING spacing, so it ends at once).
    this.limit = minBytes;
    this.probe = { resume: PACER_INITIAL_BYTES, since: -Infinity };
  }

  /** The path's base RTT as learnt so far, ms (Infinity before the first sample). */
  get baseRttMs(): number {
    return this.base;
  }

  /**
   * One PING's round trip: sent at `sentAt` behind `bytesAhead` unacknowledged DATA bytes, answered `rttMs` later
   * (at `now`). `capBound`: the cap held writers back since the previous sample — only then can a larger one help.
   */
  sample(rttMs: number, sentAt: number, now: number, capBound: boolean, bytesAhead: number): void {
    if (!(rttMs >= 0)) return;
    this.base = Math.min(this.base, rttMs);
    if (this.probe) {
      if (sentAt < this.probe.since || bytesAhead > this.minBytes) return; // still draining the old queue
      this.limit = this.probe.resume;
      this.probe = null;
      this.probedAt = now;
      return;
    }
    if (now - this.probedAt >= PACER_BASE_RTT_PERIOD_MS) {
      this.probe = { resume: this.limit, since: now };
      this.base = rttMs;
      this.limit = this.minBytes;
      return;
    }
    const queued = rttMs - this.base;
    const target = Math.max(this.targetMs, this.base / 4);
    if (queued > target) {
      if (sentAt < this.shrunkAt) return; // that queue was built under the old cap
      this.limit = Math.max(this.minBytes, Math.floor(this.limit * 0.75));
      this.shrunkAt = now;
    } else if (queued <= target / 2 && capBound) {
      // A quarter more, but no more than the target's worth of the rate it just saw (limit per RTT): on a long
      // path a quarter of the cap would be a queue of a quarter of the RTT at once.
      const step = Math.min(this.limit >>> 2, (this.limit * target) / rttMs);
      this.limit = Math.min(this.maxBytes, this.limit + Math.max(MIN_STEP_BYTES, Math.floor(step)));
    }
  }
}
