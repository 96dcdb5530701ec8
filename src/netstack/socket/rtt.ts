// Retransmission timer state for one TCP connection (RFC 6298): SRTT, RTTVAR and the RTO they yield, clamped to
// [min, max]. At most one segment is timed at a time, and never a retransmitted one (Karn's rule, §3); a timeout
// drops the sample in flight and doubles the RTO (§5.5) until the next valid sample recomputes it.
// No clock: callers pass nowMs. Sequence comparison only via wire/seq.ts.

import { seqLt } from '../wire/index';

export class RttEstimator {
  private cur: number;
  private srtt: number | null = null;
  private rttvar = 0;
  /** Sequence number whose acknowledgement ends the sample in flight (null: nothing is being timed). */
  private rttSeq: number | null = null;
  private rttStart = 0;

  constructor(
    initialRtoMs: number,
    private readonly minRtoMs: number,
    private readonly maxRtoMs: number,
  ) {
    this.cur = initialRtoMs; // RFC 6298 §2.1
  }

  /** Current RTO in ms. */
  get rto(): number { return this.cur; }
  /** SRTT in ms (null before the first sample). */
  get smoothed(): number | null { return this.srtt; }
  /** A sample is in flight. */
  get timing(): boolean { return this.rttSeq !== null; }

  /** Time the segment whose ACK reaches `seq`; sent at `nowMs`. Callers only time first transmissions (Karn). */
  startSample(seq: number, nowMs: number): void {
    this.rttSeq = seq;
    this.rttStart = nowMs;
  }

  /** An acceptable ACK arrived: completes the sample in flight if it covers the timed sequence number. */
  sample(ack: number, nowMs: number): void {
    if (this.rttSeq === null || seqLt(ack, this.rttSeq)) return;
    const r = Math.max(0, nowMs - this.rttStart);
    this.rttSeq = null;
    // RFC 6298 §2.2/2.3 (α = 1/8, β = 1/4, G = 1 ms)
    if (this.srtt === null) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.cur = this.fromSrtt();
  }

  /** Forget the sample in flight (its segment is being resent, or its ACK will wait behind a loss). */
  cancel(): void {
    this.rttSeq = null;
  }

  /** Retransmission timeout: Karn's rule drops the sample in flight; RFC 6298 §5.5 backs the timer off. */
  backoff(): void {
    this.rttSeq = null;
    this.cur = Math.min(this.cur * 2, this.maxRtoMs);
  }

  /** Undo any backoff: the RTO again follows SRTT (unchanged while there is no sample yet). */
  resetBackoff(): void {
    this.cur = this.fromSrtt();
  }

  private fromSrtt(): number {
    if (this.srtt === null) return this.cur;
    const rto = this.srtt + Math.max(1, 4 * this.rttvar);
    return Math.min(Math.max(rto, this.minRtoMs), this.maxRtoMs);
  }
}
