// RFC 6675 SACK-based loss recovery for one connection: which holes to resend and how much is in the pipe, from the
// send space's scoreboard. Holds HighRxt (`rxtHigh`, an offset from SND.UNA: holes below it were resent in this
// recovery), a widening of IsLost by the tail loss probe (`lostBelow`), and a log of the resent packets so that a
// resend that is itself lost is found without a timeout: once more than (DupThresh − 1)·SMSS of data first sent
// after it has been SACKed (the RFC 6675 IsLost test applied to the resend; RFC 8985 §6 does it by time). Every
// packet it names is at most one MSS and inside the peer's window. Sequence arithmetic only via wire/seq.ts.
//
//   SND.UNA      rxtHigh                lossEdge()          highEnd            SND.MAX
//   |-rxt-|##|-rxt-|##|--lost hole--|####|-----|#####|-hole-|####|-- in flight --|
//    resent        NextSeg (1) next      not lost yet: (4)

import { seqAdd, seqGt, seqLe, seqLt, seqSub } from '../wire/index';
import { DUP_THRESH } from './scoreboard';
import type { SendSpace } from './send';

/** A packet that resends part of a hole: `offset` from SND.UNA. */
export interface HoleSegment { offset: number; len: number; fin: boolean }

/** Resent packets remembered per recovery (beyond this the oldest is forgotten: its loss then waits for the RTO). */
const MAX_LOG = 256;

export class SackRecovery {
  /** RFC 6675 HighRxt, as an offset from SND.UNA. */
  private rxtHigh = 0;
  /** Unsacked data below this offset is lost whatever IsLost says (set from the tail loss probe). */
  private lostBelow = 0;
  // Resent packets of this recovery in sending order: [start, end) and SND.MAX when sent (absolute sequence numbers).
  private logStart: number[] = [];
  private logEnd: number[] = [];
  private logMax: number[] = [];
  // Resends found lost, to go out again before anything else: [start, end), absolute.
  private againStart: number[] = [];
  private againEnd: number[] = [];

  constructor(private readonly snd: SendSpace) {}

  /** A recovery begins: nothing resent yet. */
  start(): void {
    this.rxtHigh = 0;
    this.logStart = [];
    this.logEnd = [];
    this.logMax = [];
    this.againStart = [];
    this.againEnd = [];
  }

  /** Timeout: the go-back-N resend takes over; forget everything. */
  reset(): void {
    this.start();
    this.lostBelow = 0;
  }

  /** Everything unSACKed below `offset` is lost (RFC 8985: sent before data that arrived long enough ago). */
  markLostBelow(offset: number): void {
    this.lostBelow = Math.max(this.lostBelow, offset);
  }

  /** SND.UNA advanced by `acked`. */
  advanced(acked: number): void {
    this.rxtHigh = Math.max(0, this.rxtHigh - acked);
    this.lostBelow = Math.max(0, this.lostBelow - acked);
  }

  /** RFC 6675 IsLost as an edge (offset): unSACKed data below it is lost. */
  lossEdge(): number {
    return Math.min(Math.max(this.snd.sacked.lossEdge(this.snd.mss), this.lostBelow), this.snd.flight());
  }

  /** IsLost(SND.UNA): the octet at SND.UNA is deemed lost (the recovery trigger besides DupThresh). */
  headLost(): boolean {
    return this.snd.sacked.hole(0, this.lossEdge()) !== null;
  }

  /**
   * RFC 6675 SetPipe: unSACKed octets in flight not deemed lost, plus those resent (below HighRxt), less resends
   * known to be lost again.
   *   pipe = unSACKed(0, SND.MAX) − unSACKed(0, lossEdge) + unSACKed(0, HighRxt) − unSACKed(again)
   */
  pipe(lossEdge: number): number {
    const sb = this.snd.sacked;
    const flight = this.snd.flight();
    let pipe = sb.unsackedBelow(flight) - sb.unsackedBelow(lossEdge) + sb.unsackedBelow(Math.min(this.rxtHigh, flight));
    for (let i = 0; i < this.againStart.length; i++) {
      const a = Math.max(0, seqSub(this.againStart[i], this.snd.una));
      const b = Math.max(0, seqSub(this.againEnd[i], this.snd.una));
      pipe -= sb.unsackedBelow(b) - sb.unsackedBelow(a);
    }
    return Math.max(0, pipe);
  }

  /**
   * After an ACK updated the scoreboard: resends now SACKed or acknowledged leave the log; those with more than
   * (DupThresh − 1)·SMSS SACKed beyond the SND.MAX they were sent at are lost again.
   */
  ackProcessed(): void {
    const una = this.snd.una;
    const sb = this.snd.sacked;
    const highSacked = seqAdd(una, sb.highEnd);
    let keep = 0;
    for (let i = 0; i < this.logStart.length; i++) {
      const start = this.logStart[i];
      const end = this.logEnd[i];
      const s = seqSub(start, una);
      const e = seqSub(end, una);
      if (e <= 0 || sb.hole(Math.max(0, s), e) === null) continue; // delivered
      if (!sb.isEmpty && seqSub(highSacked, this.logMax[i]) > (DUP_THRESH - 1) * this.snd.mss) {
        this.againStart.push(seqLt(start, una) ? una : start);
        this.againEnd.push(end);
        continue;
      }
      this.logStart[keep] = start;
      this.logEnd[keep] = end;
      this.logMax[keep] = this.logMax[i];
      keep++;
    }
    this.logStart.length = this.logEnd.length = this.logMax.length = keep;
  }

  /**
   * 2·SRTT went by without cumulative progress and without sending (the socket's probe timer): everything unSACKed
   * in flight was sent that long ago, so it is lost (RFC 8985 §6.3 reaches this by time) — resends included.
   */
  timedOut(): void {
    const una = this.snd.una;
    const sb = this.snd.sacked;
    for (let i = 0; i < this.logStart.length; i++) {
      const e = seqSub(this.logEnd[i], una);
      if (e <= 0 || sb.hole(Math.max(0, seqSub(this.logStart[i], una)), e) === null) continue;
      this.againStart.push(seqLt(this.logStart[i], una) ? una : this.logStart[i]);
      this.againEnd.push(this.logEnd[i]);
    }
    this.logStart.length = this.logEnd.length = this.logMax.length = 0;
    this.markLostBelow(this.snd.flight());
  }

  /**
   * RFC 6675 NextSeg (1), preceded by resends found lost: the next packet resending a lost hole, or null. Rule (2),
   * new data, is the socket's; then `anyHole` is rule (4).
   */
  lostHole(lossEdge: number, mss: number): HoleSegment | null {
    const sb = this.snd.sacked;
    while (this.againStart.length > 0) {
      const a = Math.max(0, seqSub(this.againStart[0], this.snd.una));
      const b = seqSub(this.againEnd[0], this.snd.una);
      const h = b > a ? sb.hole(a, b) : null;
      if (h !== null) {
        const seg = this.segment(h[0], h[1], mss);
        if (seg !== null) return seg;
        return null; // the window holds it back: nothing else goes first
      }
      this.againStart.shift();
      this.againEnd.shift();
    }
    const h = sb.hole(this.rxtHigh, lossEdge);
    return h === null ? null : this.segment(h[0], h[1], mss);
  }

  /** RFC 6675 NextSeg (4): any unSACKed hole above HighRxt below the highest SACKed octet. */
  anyHole(mss: number): HoleSegment | null {
    const h = this.snd.sacked.hole(this.rxtHigh, this.snd.sacked.highEnd);
    return h === null ? null : this.segment(h[0], h[1], mss);
  }

  /** A packet resending [offset, offset + len) (+ FIN) went out (the first of a recovery included). */
  sent(offset: number, len: number, fin: boolean): void {
    const end = offset + len + (fin ? 1 : 0);
    const una = this.snd.una;
    if (this.againStart.length > 0 && seqLe(this.againStart[0], seqAdd(una, offset)) && seqGt(this.againEnd[0], seqAdd(una, offset))) {
      // A resend of a lost resend: the rest of that range, if any, stays queued; HighRxt does not move back.
      if (seqLt(seqAdd(una, end), this.againEnd[0])) this.againStart[0] = seqAdd(una, end);
      else { this.againStart.shift(); this.againEnd.shift(); }
    } else {
      this.rxtHigh = Math.max(this.rxtHigh, end);
    }
    if (this.logStart.length >= MAX_LOG) {
      this.logStart.shift();
      this.logEnd.shift();
      this.logMax.shift();
    }
    this.logStart.push(seqAdd(una, offset));
    this.logEnd.push(seqAdd(una, end));
    this.logMax.push(this.snd.max);
  }

  /** One packet resending the start of the hole [start, end) (offsets), within the peer's window; null if none fits. */
  private segment(start: number, end: number, mss: number): HoleSegment | null {
    const txLen = this.snd.tx.length;
    const wnd = this.snd.window();
    let len = Math.max(0, Math.min(end, start + mss, txLen) - start);
    const full = len;
    if (start + len > wnd) len = Math.max(0, wnd - start);
    // Our FIN sits at offset txLen; it goes along when the packet reaches it and the hole covers it.
    const fin = this.snd.finSeq !== null && len === full && start + len === txLen && end > txLen;
    if (len === 0 && !fin) return null;
    return { offset: start, len, fin };
  }
}
