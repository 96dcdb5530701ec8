// A token bucket for one socket's message rate (the room's per-socket limit): `ratePerSecond` tokens refill
// continuously up to `burst`; each message takes one. Pure arithmetic on the caller's clock, so it survives
// Workers' coarse timers (Date.now() only moves between events) and needs no timer of its own.

export class RateBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** Takes one token; false when the socket is over its rate (the caller closes it). */
  take(nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
