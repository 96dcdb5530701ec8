// Transfer rates over a sliding window, sampled by the daemon (not the UI), so every viewer sees the same numbers
// and a TUI refresh costs nothing on the data path. A meter keeps a small ring of (time, cumulative bytes) samples.
// The flows of one registry are all sampled at the same ticks, so they share one ring of sample times
// (SampleTicks), and a flow keeps its own ring of byte counts only while they move: an idle flow (thousands of
// idle UDP flows in zksd) holds a few numbers instead of 256 bytes of samples.

export const RATE_WINDOW_MS = 2_000;
const SLOTS = 16;

/** The times of the last SLOTS samples, shared by every meter sampled at them. */
export class SampleTicks {
  private readonly times = new Float64Array(SLOTS);
  /** Samples taken so far; the newest is number `count - 1`. */
  count = 0;

  /** A new sample time; every meter on this clock is then sampled once for it. */
  advance(nowMs: number): void {
    this.times[this.count % SLOTS] = nowMs;
    this.count++;
  }

  timeOf(tick: number): number {
    return this.times[tick % SLOTS];
  }
}

/**
 * One meter on a shared SampleTicks. The byte counts of the ticks in the window live in `ring` (up in the first
 * SLOTS entries, down in the rest, by tick % SLOTS) only while they differ; when they have been the same for the
 * whole window the ring is dropped, and refilled with those counts at the next change. The rates are exactly what
 * a full ring would give.
 */
export class TickedRate {
  private ring: Float64Array | null = null;
  private firstTick = -1;
  /** The counts have been lastUp/lastDown at every tick since this one. */
  private sameSince = -1;
  private lastUp = 0;
  private lastDown = 0;
  /** Bytes per second over the window, as of the last sample. */
  upRate = 0;
  downRate = 0;

  /** Records the cumulative counters at the clock's newest tick (advance() first) and recomputes the rates. */
  sample(ticks: SampleTicks, bytesUp: number, bytesDown: number): void {
    const k = ticks.count - 1;
    if (this.firstTick < 0) {
      this.firstTick = this.sameSince = k;
      this.lastUp = bytesUp;
      this.lastDown = bytesDown;
    } else if (bytesUp !== this.lastUp || bytesDown !== this.lastDown) {
      if (this.ring === null) {
        // Every tick still in the window had the previous counts.
        this.ring = new Float64Array(2 * SLOTS);
        this.ring.fill(this.lastUp, 0, SLOTS);
        this.ring.fill(this.lastDown, SLOTS);
      }
      this.lastUp = bytesUp;
      this.lastDown = bytesDown;
      this.sameSince = k;
    }
    const count = Math.min(SLOTS, k - this.firstTick + 1);
    if (this.ring !== null && this.sameSince <= k - count + 1) this.ring = null;
    if (this.ring !== null) {
      this.ring[k % SLOTS] = bytesUp;
      this.ring[SLOTS + (k % SLOTS)] = bytesDown;
    }
    // Oldest sample still inside the window (or the oldest we have).
    const nowMs = ticks.timeOf(k);
    let oldest = k - count + 1;
    while (oldest < k && nowMs - ticks.timeOf(oldest + 1) >= RATE_WINDOW_MS) oldest++;
    const span = nowMs - ticks.timeOf(oldest);
    if (span <= 0 || this.ring === null) {
      this.upRate = this.downRate = 0;
      return;
    }
    this.upRate = ((bytesUp - this.ring[oldest % SLOTS]) * 1000) / span;
    this.downRate = ((bytesDown - this.ring[SLOTS + (oldest % SLOTS)]) * 1000) / span;
  }
}

/** A meter with its own clock (a registry's total). */
export class RateMeter {
  private readonly ticks = new SampleTicks();
  private readonly rate = new TickedRate();

  get upRate(): number {
    return this.rate.upRate;
  }

  get downRate(): number {
    return this.rate.downRate;
  }

  /** Records cumulative byte counters at `nowMs` and recomputes the rates. */
  sample(nowMs: number, bytesUp: number, bytesDown: number): void {
    this.ticks.advance(nowMs);
    this.rate.sample(this.ticks, bytesUp, bytesDown);
  }
}
