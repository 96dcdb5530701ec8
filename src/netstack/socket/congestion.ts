// Congestion control for one TCP connection: RFC 5681 slow start / congestion avoidance / fast retransmit with the
// RFC 6582 NewReno recovery. Holds cwnd, ssthresh, the duplicate-ACK count and the recovery point; the socket tells
// it what the ACKs did and it answers whether the first unacked segment must be sent again. cwnd never drops
// below one MSS. Sequence arithmetic only via wire/seq.ts.

import { seqGe, seqGt, seqSub } from '../wire/index';

export class NewReno {
  private cwnd_: number;
  private ssthresh = 0x7fffffff;
  private dupAcks = 0;
  private inRecovery = false;
  /** RFC 6582 "recover": SND.MAX when recovery (or the last timeout) began. */
  private recover: number;

  constructor(
    private readonly mss: number,
    iss: number,
  ) {
    this.cwnd_ = 10 * mss; // RFC 6928 initial window
    this.recover = iss;
  }

  get cwnd(): number { return this.cwnd_; }

  /**
   * SND.UNA advanced to `ack` by `acked` bytes. Returns true on a NewReno partial ACK: the next hole (one segment
   * at the new SND.UNA) must be resent.
   */
  ackAdvanced(ack: number, acked: number): boolean {
    let retransmit = false;
    if (this.inRecovery) {
      if (seqGe(ack, this.recover)) {
        // RFC 6582 §3.2 step 3, full ACK: deflate to ssthresh and leave recovery.
        this.inRecovery = false;
        this.cwnd_ = Math.max(this.ssthresh, this.mss);
      } else {
        // Partial ACK: resend the next hole (one segment), deflate by what was acked, add back one MSS.
        retransmit = true;
        this.cwnd_ = Math.max(this.cwnd_ - acked + this.mss, this.mss);
      }
    } else if (this.cwnd_ < this.ssthresh) {
      this.cwnd_ += Math.min(acked, this.mss); // RFC 5681 §3.1 slow start
    } else {
      this.cwnd_ += Math.max(1, Math.floor((this.mss * this.mss) / this.cwnd_)); // congestion avoidance
    }
    this.cwnd_ = Math.min(this.cwnd_, 0x40000000);
    this.dupAcks = 0;
    return retransmit;
  }

  /** An RFC 5681 §2 duplicate ACK. Returns true when the first unacked segment must be fast-retransmitted. */
  duplicateAck(sndUna: number, sndMax: number): boolean {
    this.dupAcks++;
    if (this.dupAcks === 3 && !this.inRecovery && seqGt(sndUna, this.recover)) {
      // RFC 5681 §3.2 / RFC 6582 §3.2: resend ONLY the first unacked segment, then inflate per dup ACK.
      const flight = seqSub(sndMax, sndUna);
      this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.mss);
      this.cwnd_ = this.ssthresh + 3 * this.mss;
      this.inRecovery = true;
      this.recover = sndMax;
      return true;
    } else if (this.inRecovery && this.dupAcks > 3) {
      this.cwnd_ += this.mss;
    }
    return false;
  }

  /** Retransmission timeout with data in flight (SND.UNA..SND.MAX); the socket goes back to SND.UNA. */
  timeout(firstTimeout: boolean, sndUna: number, sndMax: number): void {
    // RFC 5681 §3.1 (4): loss window; ssthresh halves only on the first timeout.
    if (firstTimeout) this.ssthresh = Math.max(Math.floor(seqSub(sndMax, sndUna) / 2), 2 * this.mss);
    this.cwnd_ = this.mss;
    this.inRecovery = false;
    this.recover = sndMax;
    this.dupAcks = 0;
  }
}
