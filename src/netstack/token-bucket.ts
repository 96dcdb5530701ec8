// A token bucket on the caller's clock (nowMs; the netstack reads none): `burst` tokens at most, refilled at
// `perSecond`. The interface limits the ICMP errors it originates with one (RFC 4443 §2.4(f) MUST, RFC 1812
// §4.3.2.8 SHOULD), as Linux does with icmp_msgs_per_sec / icmp_msgs_burst (1000 / 50).

export class TokenBucket {
  private tokens: number;
  private lastMs: number | null = null;

  constructor(private readonly perSecond: number, private readonly burst: number) {
    this.tokens = burst;
  }

  /** Takes one token if there is one. A clock that goes backwards refills nothing. */
  take(nowMs: number): boolean {
    if (this.lastMs !== null && nowMs > this.lastMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.perSecond) / 1000);
    }
    if (this.lastMs === null || nowMs > this.lastMs) this.lastMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
