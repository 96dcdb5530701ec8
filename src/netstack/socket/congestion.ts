// Congestion control for one TCP connection: RFC 5681 slow start / congestion avoidance, and fast recovery in one
// of two flavours, chosen when it begins: RFC 6675 SACK-based loss recovery when the peer SACKs (the socket picks
// the segments by the scoreboard, limited by cwnd − pipe), else RFC 6582 NewReno (one hole per partial ACK, cwnd
// inflated per duplicate ACK). Holds cwnd, ssthresh, the duplicate-ACK count and the recovery point; cwnd never
// drops below one MSS. Sequence arithmetic only via wire/seq.ts.

import { seqGe, seqGt, seqLt, seqSub } from '../wire/index';
import { DUP_THRESH } from './scoreboard';

export const Recovery = { NONE: 0, NEWRENO: 1, SACK: 2 } as const;
export type Recovery = (typeof Recovery)[keyof typeof Recovery];

export class Congestion {
  private cwnd_: number;
  private ssthresh = 0x7fffffff;
  private dupAcks_ = 0;
  private mode: Recovery = Recovery.NONE;
  /** RFC 6582 "recover" / RFC 6675 RecoveryPoint: SND.MAX when recovery (or the last timeout) began. */
  private recover: number;

  constructor(
    private readonly mss: number,
    iss: number,
  ) {
    this.cwnd_ = 10 * mss; // RFC 6928 initial window
    this.recover = iss;
  }

  get cwnd(): number { return this.cwnd_; }
  get recovery(): Recovery { return this.mode; }
  get dupAcks(): number { return this.dupAcks_; }

  /**
   * SND.UNA advanced to `ack` by `acked` bytes (the duplicate-ACK count restarts). Returns true on a NewReno
   * partial ACK: the next hole (one segment at the new SND.UNA) must be resent. In SACK recovery the scoreboard
   * names the holes instead.
   */
  ackAdvanced(ack: number, acked: number): boolean {
    let retransmit = false;
    if (this.mode !== Recovery.NONE) {
      if (seqGe(ack, this.recover)) {
        // RFC 6582 §3.2 step 3 / RFC 6675 §5: full ACK, deflate to ssthresh and leave recovery.
        this.mode = Recovery.NONE;
        this.cwnd_ = Math.max(this.ssthresh, this.mss);
      } else if (this.mode === Recovery.NEWRENO) {
        // Partial ACK: resend the next hole (one segment), deflate by what was acked, add back one MSS.
        retransmit = true;
        this.cwnd_ = Math.max(this.cwnd_ - acked + this.mss, this.mss);
      }
    } else if (this.cwnd_ < this.ssthresh) {
      // RFC 5681 §3.1 slow start; RFC 3465 §2.2 appropriate byte counting with L = 2·SMSS, so a stretch ACK (a
      // receiver acknowledging a GRO batch at once) still grows the window.
      this.cwnd_ += Math.min(acked, 2 * this.mss);
    } else {
      // Congestion avoidance, byte-counted (RFC 3465 §2.1 in the per-ACK form of RFC 5681 eq. 3, scaled by the
      // segments acked): about one MSS per window of acknowledged data, whatever the ACK ratio.
      this.cwnd_ += Math.max(1, Math.floor((this.mss * Math.min(acked, this.cwnd_)) / this.cwnd_));
    }
    this.cwnd_ = Math.min(this.cwnd_, 0x40000000);
    this.dupAcks_ = 0;
    return retransmit;
  }

  /**
   * Losses sent before `recover` were (or are being) dealt with: a new recovery may begin only at or beyond it.
   * RFC 6582 §3.2 step 1 (no SACK: the ACK must cover more than recover); RFC 6675 §5.1 (with SACK, HighACK ≥
   * RecoveryPoint: the scoreboard, not the ACK number, tells old losses from new ones).
   */
  mayRecover(sndUna: number, sack: boolean): boolean {
    return this.mode === Recovery.NONE && (sack ? !seqLt(sndUna, this.recover) : seqGt(sndUna, this.recover));
  }

  /**
   * A duplicate ACK: RFC 5681 §2 (no SACK), or RFC 6675 §2 (one that SACKs new data). `lost` is RFC 6675 IsLost of
   * the octet at SND.UNA (only ever true with SACK); `flightSize` as in startRecovery. Returns the recovery that
   * begins now, if any: the socket then resends the first unacknowledged segment at once.
   */
  duplicateAck(sndUna: number, sndMax: number, flightSize: number, sack: boolean, lost: boolean): Recovery {
    this.dupAcks_++;
    if (this.mode === Recovery.NEWRENO && this.dupAcks_ > DUP_THRESH) this.cwnd_ += this.mss;
    if (!this.mayRecover(sndUna, sack)) return Recovery.NONE;
    if (this.dupAcks_ < DUP_THRESH && !lost) return Recovery.NONE; // RFC 6675 §5 step (2)
    if (!sack && this.dupAcks_ !== DUP_THRESH) return Recovery.NONE;
    return this.startRecovery(sndMax, flightSize, sack);
  }

  /**
   * Enters fast recovery (the caller checked mayRecover); also for a loss found by the tail loss probe.
   * `flightSize`: the data outstanding when the loss was detected (RFC 5681 §3.2 (2)).
   */
  startRecovery(sndMax: number, flightSize: number, sack: boolean): Recovery {
    // RFC 5681 §3.2 (2) / RFC 6675 §5 (4.2): ssthresh = FlightSize / 2, at least two segments.
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.recover = sndMax;
    if (sack) {
      this.cwnd_ = this.ssthresh; // RFC 6675 §5 (4.2): no inflation, pipe does the accounting
      this.mode = Recovery.SACK;
    } else {
      this.cwnd_ = this.ssthresh + 3 * this.mss; // RFC 5681 §3.2 (3), then inflate per dup ACK
      this.mode = Recovery.NEWRENO;
    }
    return this.mode;
  }

  /**
   * RFC 8985 §7.4.2: a retransmitted tail loss probe repaired a loss (no D-SACK came back for it): respond as a
   * fast recovery would have, once.
   */
  tailLossRepaired(): void {
    this.ssthresh = Math.max(Math.floor(this.cwnd_ / 2), 2 * this.mss);
    this.cwnd_ = this.ssthresh;
  }

  /** Retransmission timeout with data in flight (SND.UNA..SND.MAX); the socket goes back to SND.UNA. */
  timeout(firstTimeout: boolean, sndUna: number, sndMax: number): void {
    // RFC 5681 §3.1 (4): loss window; ssthresh halves only on the first timeout.
    if (firstTimeout) this.ssthresh = Math.max(Math.floor(seqSub(sndMax, sndUna) / 2), 2 * this.mss);
    this.cwnd_ = this.mss;
    this.mode = Recovery.NONE;
    this.recover = sndMax;
    this.dupAcks_ = 0;
  }
}
