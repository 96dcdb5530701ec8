// Transfer rates over a sliding window, sampled by the daemon (not the UI), so every viewer sees the same numbers
// and a TUI refresh costs nothing on the data path. A meter keeps a small ring of (time, cumulative bytes) samples.

export const RATE_WINDOW_MS = 2_000;
const SLOTS = 16;

export class RateMeter {
  private readonly t = new Float64Array(SLOTS);
  private readonly up = new Float64Array(SLOTS);
  private readonly down = new Float64Array(SLOTS);
  private head = 0;
  private count = 0;
  /** Bytes per second over the window, as of the last sample. */
  upRate = 0;
  downRate = 0;

  /** Records cumulative byte counters at `nowMs` and recomputes the rates. */
  sample(nowMs: number, bytesUp: number, bytesDown: number): void {
    this.t[this.head] = nowMs;
    this.up[this.head] = bytesUp;
    this.down[this.head] = bytesDown;
    this.head = (this.head + 1) % SLOTS;
    if (this.count < SLOTS) this.count++;
    // Oldest sample still inside the window (or the oldest we have).
    let oldest = (this.head - this.count + SLOTS) % SLOTS;
    for (let i = 0; i < this.count - 1; i++) {
      const idx = (oldest + 1) % SLOTS;
      if (nowMs - this.t[idx] < RATE_WINDOW_MS) break;
      oldest = idx;
    }
    const span = nowMs - this.t[oldest];
    const latest = (this.head - 1 + SLOTS) % SLOTS;
    if (span <= 0) {
      this.upRate = this.downRate = 0;
      return;
    }
    this.upRate = ((this.up[latest] - this.up[oldest]) * 1000) / span;
    this.downRate = ((this.down[latest] - this.down[oldest]) * 1000) / span;
  }
}
