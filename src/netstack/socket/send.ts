// The send half of one TCP connection (RFC 9293 §3.3.1 send sequence space): SND.UNA/NXT/WND/WL1/WL2 plus SND.MAX,
// the send buffer (tx[0] is the byte at SND.UNA) and our FIN's sequence number. It answers what the windows allow;
// the socket decides when to send and drives the state machine. Invariants: SND.UNA ≤ SND.NXT ≤ SND.MAX (mod 2³²);
// after an RTO SND.NXT is rewound to SND.UNA while ACKs up to SND.MAX stay acceptable, and the resend skips what the
// SACK scoreboard (offsets from SND.UNA, re-based with it) shows the peer holds (RFC 6675 §5.1).
// With segmentation offload a segment may carry up to `maxSegment` bytes (a multiple of the MSS): the kernel cuts
// it into MSS-sized packets, so the byte stream and its packet boundaries are those of plain mode.

import { RingBuffer } from '../storage/ring-buffer';
import { Scoreboard } from './scoreboard';
import { seqAdd, seqGt, seqLe, seqLt, seqSub } from '../wire/index';

export class SendSpace {
  una: number;
  nxt: number;
  /** Highest sequence number ever sent. */
  max: number;
  /** SND.WND, already scaled. */
  wnd: number;
  wl1: number;
  wl2: number;
  /** Largest window the peer ever offered (sender SWS avoidance). */
  maxWnd: number;
  /** Sequence number of our FIN once close() was called (data after it is refused). */
  finSeq: number | null = null;
  readonly tx: RingBuffer;
  /** What the peer SACKed above SND.UNA (empty unless it does SACK). */
  readonly sacked = new Scoreboard();

  constructor(
    iss: number,
    irs: number,
    /** The window of the SYN (RFC 7323 §2.2: never scaled). */
    synWindow: number,
    bufferSize: number,
    /** The peer's window scale shift. */
    readonly shift: number,
    /** Effective send MSS. */
    readonly mss: number,
    /** Largest payload of one emitted segment: the MSS, or a multiple of it with segmentation offload. */
    readonly maxSegment: number = mss,
  ) {
    this.una = this.nxt = this.max = iss;
    this.wnd = this.maxWnd = synWindow;
    this.wl1 = irs;
    this.wl2 = iss;
    this.tx = new RingBuffer(bufferSize);
  }

  /** Sets SND.WND from a segment carrying `window` (already scaled), with SND.WL1/WL2 from it. */
  setWindow(seq: number, ack: number, window: number): void {
    this.wnd = window;
    this.maxWnd = Math.max(this.maxWnd, window);
    this.wl1 = seq;
    this.wl2 = ack;
  }

  /** §3.10.7.4: window update if SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK). */
  maybeUpdateWindow(seq: number, ack: number, window: number): void {
    if (seqLe(this.una, ack) && (seqLt(this.wl1, seq) || (this.wl1 === seq && seqLe(this.wl2, ack)))) {
      this.setWindow(seq, ack, window);
    }
  }

  /** SND.UNA advances to `ack`: acked bytes leave the buffer. Returns how many sequence numbers were acked. */
  advance(ack: number): number {
    const acked = seqSub(ack, this.una);
    this.tx.discard(Math.min(acked, this.tx.length)); // the FIN, if acked, is the one extra
    this.sacked.advance(acked);
    this.una = ack;
    if (seqLt(this.nxt, ack)) this.nxt = ack; // late ACK for data sent before a go-back-N rewind
    return acked;
  }

  /**
   * The peer's window counted from SND.UNA. Its right edge is SND.WL2 + SND.WND — where the segment that carried
   * the window put it — not SND.UNA + SND.WND: an ACK too old to update the window (§3.10.7.4) must not move it.
   */
  window(): number {
    return Math.max(0, seqSub(seqAdd(this.wl2, this.wnd), this.una));
  }

  unsentLen(): number {
    return Math.max(0, this.tx.length - seqSub(this.nxt, this.una)) + (this.finSeq !== null && !seqGt(this.nxt, this.finSeq) ? 1 : 0);
  }

  /** Sequence numbers outstanding: SND.MAX − SND.UNA (our FIN included once sent). */
  flight(): number {
    return seqSub(this.max, this.una);
  }

  /**
   * Where the next new (or go-back-N resent) segment starts: SND.NXT, or past the SACKed range it falls in, as an
   * offset from SND.UNA. Offset 0 is never skipped (RFC 2018 §8: the left edge is resent after a timeout).
   */
  nextOffset(): number {
    const offset = seqSub(this.nxt, this.una);
    if (offset <= 0 || !seqLt(this.nxt, this.max)) return offset;
    const end = this.sacked.sackedEnd(offset);
    return end < 0 ? offset : end;
  }

  /**
   * The next new (or go-back-N resent) segment the windows allow, with sender SWS avoidance. `room`: what the
   * congestion window still allows beyond what is in flight (the caller's pipe or FlightSize accounting).
   * `optLen` bytes of TCP options (SACK blocks) go in every packet, so each packet carries at most MSS − optLen.
   * A resend stops where SACKed data begins; the end of such a hole counts like the end of the queue.
   * Returns `packetLen`: the payload per packet, i.e. the size the kernel cuts an offloaded segment into.
   */
  next(room: number, optLen = 0): { offset: number; len: number; fin: boolean; packetLen: number } | null {
    const offset = this.nextOffset();
    const queued = this.tx.length - offset;
    if (queued < 0) return null; // FIN already sent
    const holeEnd = offset < seqSub(this.max, this.una) ? this.sacked.nextSackedStart(offset) : Infinity;
    const avail = Math.min(queued, holeEnd - offset);
    const mss = Math.max(1, this.mss - optLen);
    const usable = Math.max(0, Math.min(this.window() - offset, room));
    let len = Math.min(avail, usable, this.maxSegment <= this.mss ? mss : Math.floor(this.maxSegment / this.mss) * mss);
    // Several packets in one segment: whole packets only, unless the segment ends the queue (as plain mode would
    // send them: full packets, and a short one only at the end of the data).
    if (len > mss && len < avail) len -= len % mss;
    const fin = this.finSeq !== null && len === queued;
    if (len === 0 && !fin) return null;
    // RFC 9293 §3.8.6.2.1 (sender SWS): a short segment only if it empties the queue (or fills a hole), nothing is
    // in flight, or it fills at least half the largest window the peer offered.
    if (len < mss && len < avail && offset !== 0 && len < this.maxWnd / 2) return null;
    return { offset, len, fin, packetLen: mss };
  }
}
