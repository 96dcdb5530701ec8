// RFC 8985 §7 tail loss probe for one connection (SACK peers only): when nothing was ACKed for 2·SRTT, ask the peer
// what it has — one packet outside cwnd — instead of waiting for the RTO; what the answer reveals lost starts the
// SACK recovery. In SACK recovery the same timer, once per cumulative advance, re-sends the resends not yet
// delivered. Holds the probe timer and, while a probe is unanswered, where it started and SND.MAX after it
// (TLP.end_seq). No clock: callers pass nowMs. Sequence arithmetic only via wire/seq.ts.

import { seqGe, seqGt, seqLe, seqSub, type TcpRepr } from '../wire/index';
import { Recovery, type Congestion } from './congestion';
import type { SackRecovery } from './recovery';
import type { RttEstimator } from './rtt';
import type { SendSpace } from './send';

/** RFC 8985 §7.2 WCDelAckT: a lone segment may wait for the peer's delayed-ACK timer. */
const WC_DEL_ACK_MS = 200;
/** Floor of the probe timeout (as Linux): a faster probe would race the peer's ordinary ACKs. */
const MIN_PTO_MS = 10;

/** The probe packet: `offset` from SND.UNA. */
export interface ProbeSegment { offset: number; len: number; fin: boolean }

export class TailLossProbe {
  /** When the probe timer fires (absolute ms); null when it is not armed. */
  deadline: number | null = null;
  /** The timer fired with no loss to mark: a probe goes out at the next dispatch. */
  owed = false;
  /** TLP.end_seq: SND.MAX after the unanswered probe (null: no probe unanswered). */
  private end: number | null = null;
  private start = 0;
  /** The probe resent data (no new data could go). */
  private retransmit = false;
  /** A D-SACK reported the probe: it was a needless copy. */
  private dsack = false;
  /** In SACK recovery the timer runs once per cumulative advance. */
  private recoveryProbed = false;

  constructor(
    private readonly snd: SendSpace,
    private readonly cc: Congestion,
    private readonly rec: SackRecovery,
    private readonly rtt: RttEstimator,
    private readonly sackOk: boolean,
  ) {}

  /**
   * RFC 8985 §7.2: (re)start the timer at 2·SRTT (plus the peer's worst delayed ACK when one segment is in flight),
   * if it would fire before the RTO. `sending`: the connection's state sends data.
   */
  arm(nowMs: number, sending: boolean, rtoDeadline: number | null): void {
    this.deadline = null;
    if (!this.allowed(sending)) return;
    let pto = Math.max(2 * (this.rtt.smoothed as number), MIN_PTO_MS);
    if (this.snd.flight() <= this.snd.mss) pto += WC_DEL_ACK_MS;
    const at = nowMs + pto;
    if (rtoDeadline === null || at < rtoDeadline) this.deadline = at;
  }

  /**
   * The timer fired: nothing was ACKed for 2·SRTT. Holes the scoreboard already shows are then lost (data after them
   * arrived long enough ago: RFC 8985's time-based detection) and true is returned: the caller starts recovery. In
   * recovery the resends not yet delivered go again; otherwise a probe is owed.
   */
  fire(sending: boolean): boolean {
    this.deadline = null;
    if (!this.allowed(sending)) return false;
    const sb = this.snd.sacked;
    if (this.cc.recovery === Recovery.SACK) {
      this.recoveryProbed = true;
      this.rec.timedOut();
      return false;
    }
    if (!sb.isEmpty && sb.hole(0, sb.highEnd) !== null) {
      this.rec.markLostBelow(sb.highEnd);
      return true;
    }
    this.owed = true;
    return false;
  }

  /**
   * RFC 8985 §7.3: the probe packet — new data if there is some and the peer's window takes it, else the last packet
   * sent again; null when neither fits. `mss`: payload room of one packet.
   */
  choose(mss: number): ProbeSegment | null {
    const snd = this.snd;
    const flight = snd.flight();
    const txLen = snd.tx.length;
    const room = snd.window() - flight;
    if (flight < txLen && room > 0) {
      const len = Math.min(mss, txLen - flight, room);
      return { offset: flight, len, fin: snd.finSeq !== null && flight + len === txLen };
    }
    if (flight > 0 && Math.min(flight, txLen) <= snd.window()) {
      const dataEnd = Math.min(flight, txLen);
      const offset = Math.max(0, dataEnd - mss);
      return { offset, len: dataEnd - offset, fin: flight > txLen }; // our FIN was sent: the last thing in flight
    }
    return null;
  }

  /** The probe [seq, end) went out: SND.NXT/SND.MAX move if it was new data. Returns whether it was a resend. */
  sent(seq: number, end: number): boolean {
    const snd = this.snd;
    this.retransmit = !seqGt(end, snd.max);
    if (!this.retransmit) snd.nxt = snd.max = end;
    this.start = seq;
    this.end = snd.max;
    this.dsack = false;
    return this.retransmit;
  }

  /**
   * RFC 8985 §7.4: an ACK (taken into the scoreboard) while a probe may be unanswered. A D-SACK means the probe was a
   * needless copy (only ACKs were lost); an ACK beyond it without one means a retransmitted probe repaired a tail loss
   * (respond once); the probe SACKed above a hole means everything unSACKed sent before it is lost (the recovery
   * that follows repairs it).
   */
  answered(seg: TcpRepr, ack: number): void {
    if (this.end === null) return;
    const blocks = seg.sackRanges;
    // RFC 2883 §4: a D-SACK is a first block below the cumulative ACK or inside the second block.
    if (this.sackOk && blocks.length > 0 && (seqLe(blocks[0][1], ack) || (blocks.length > 1 && seqGe(blocks[0][0], blocks[1][0]) && seqLe(blocks[0][1], blocks[1][1])))) {
      this.dsack = true;
    }
    if (seqGe(ack, this.end)) {
      if (this.retransmit && !this.dsack) this.cc.tailLossRepaired();
      this.end = null;
      return;
    }
    const at = seqSub(this.start, this.snd.una);
    if (at > 0 && this.snd.sacked.sackedEnd(at) >= 0) this.rec.markLostBelow(at);
  }

  /** SND.UNA advanced: in recovery the timer may run once more. */
  advanced(): void {
    this.recoveryProbed = false;
  }

  /** A recovery began: its own window reduction covers a loss the probe revealed. */
  recoveryStarted(): void {
    this.end = null;
    this.recoveryProbed = false;
  }

  /** The RTO fired (or the connection closed): no probe timer, no probe unanswered. */
  cancel(): void {
    this.deadline = null;
    this.end = null;
  }

  /**
   * The timer may run: SACK peer, an RTT sample, data in flight, no go-back-N resend under way; outside recovery
   * (fast or after a timeout) with no probe unanswered, or in SACK recovery once per cumulative advance.
   */
  private allowed(sending: boolean): boolean {
    const snd = this.snd;
    if (!this.sackOk || this.rtt.smoothed === null || !sending) return false;
    if (snd.una === snd.max || snd.nxt !== snd.max) return false;
    if (this.cc.recovery === Recovery.SACK) return !this.recoveryProbed;
    return this.end === null && this.cc.mayRecover(snd.una, true);
  }
}
