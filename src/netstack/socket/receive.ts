// The receive half of one TCP connection (RFC 9293 §3.3.1 receive sequence space): RCV.NXT, the right edge of the
// window we advertised, the receive buffer and the out-of-order assembler, plus the SACK blocks (RFC 2018) that
// describe what the assembler holds. Invariants: the advertised edge never moves left (§3.8.6.2.2: the window is
// not shrunk); assembler offsets count from RCV.NXT. The socket owns the state machine; this owns the bytes.

import { RingBuffer } from '../storage/ring-buffer';
import { Assembler } from '../storage/assembler';
import { TCP_MAX_WINDOW_SCALE, seqAdd, seqGt, seqInWindow, seqMax, seqSub, type SackRange } from '../wire/index';

const MAX_SACK_BLOCKS = 3;
const NO_SACK: readonly SackRange[] = Object.freeze([]);

export class RecvSpace {
  /** RCV.NXT */
  private next: number;
  /** RCV.NXT + the window we last advertised (never moves left). */
  private advEdge: number;
  /** Our window scale shift (RFC 7323 §2.2), 0 unless the SYN offered scaling. */
  readonly shift: number;
  private readonly rx: RingBuffer;
  private readonly asm = new Assembler(32);
  /** Sequence number of the peer's FIN when it arrived beyond a hole. */
  private remoteFinSeq: number | null = null;

  constructor(
    irs: number,
    bufferSize: number,
    scaleOk: boolean,
    private readonly sackOk: boolean,
    /** Our MSS, for receiver SWS avoidance. */
    private readonly mss: number,
  ) {
    this.next = this.advEdge = seqAdd(irs, 1);
    let shift = 0;
    if (scaleOk) while (shift < TCP_MAX_WINDOW_SCALE && bufferSize >> shift > 0xffff) shift++;
    this.shift = shift;
    this.rx = new RingBuffer(bufferSize);
  }

  /** RCV.NXT */
  get nxt(): number { return this.next; }
  get queued(): number { return this.rx.length; }
  get allocated(): number { return this.rx.allocated; }

  /** In-order received bytes (null when none). */
  read(into?: Uint8Array): Uint8Array | null {
    if (this.rx.length === 0) return null;
    return into ? into.subarray(0, this.rx.dequeueInto(into)) : this.rx.dequeue();
  }

  /** §3.10.7.4 first: is a segment of `segLen` (data + SYN + FIN) starting at `seq` acceptable (within RCV.WND)? */
  acceptable(seq: number, segLen: number): boolean {
    const wnd = this.window();
    const end = seqAdd(this.next, wnd);
    // Deliberate difference (as Linux's tcp_sequence): an empty segment AT the right edge is acceptable too. A peer
    // that filled our window beyond a hole sends its pure ACKs with SEG.SEQ = RCV.NXT + RCV.WND; refusing them
    // would stall our sending until a timeout (found by the SACK transfer test).
    if (segLen === 0) return wnd === 0 ? seq === this.next : seqInWindow(seq, this.next, end) || seq === end;
    return (
      // A 1-byte zero-window probe at RCV.NXT is accepted for its ACK (§3.10.7.4 "special allowance"); its data
      // is trimmed below and answered with our (zero) window.
      seq === this.next ||
      (wnd > 0 && (seqInWindow(seq, this.next, end) || seqInWindow(seqAdd(seq, segLen - 1), this.next, end)))
    );
  }

  /**
   * §3.10.7.4 seventh and eighth: stores the part of an acceptable segment's text inside our window and advances
   * RCV.NXT over what is now contiguous. Returns true when the peer's FIN has just been counted (RCV.NXT passed it).
   */
  place(seq: number, payload: Uint8Array, fin: boolean): boolean {
    let data = payload;
    let off = seqSub(seq, this.next);
    if (off < 0) {
      data = data.subarray(Math.min(-off, data.length)); // already received (§3.10.7.4 trim to the window)
      off = 0;
    }
    const wnd = this.window();
    const fits = off + data.length <= wnd;
    if (!fits) data = data.subarray(0, Math.max(0, wnd - off));
    if (data.length > 0 && off === 0 && this.asm.isEmpty) {
      // In order with nothing held beyond: straight into the queue (the common case, no assembler bookkeeping).
      const n = this.rx.writeUnallocated(0, data);
      this.rx.enqueueUnallocated(n);
      this.next = seqAdd(this.next, n);
    } else if (data.length > 0) {
      this.rx.writeUnallocated(off, data);
      if (this.asm.add(off, data.length)) {
        const n = this.asm.removeFront();
        if (n > 0) {
          this.rx.enqueueUnallocated(n);
          this.next = seqAdd(this.next, n);
        }
      }
    }
    if (fin && fits) this.remoteFinSeq = seqAdd(seq, payload.length);
    // §3.10.7.4 eighth: the FIN counts once everything before it has arrived.
    if (this.remoteFinSeq === null || this.next !== this.remoteFinSeq) return false;
    this.next = seqAdd(this.next, 1);
    this.advEdge = seqMax(this.advEdge, this.next);
    this.remoteFinSeq = null;
    this.asm.clear();
    return true;
  }

  /** §3.8.6.2.2 receiver SWS avoidance: open the window once it grew by min(buffer/2, MSS). */
  windowUpdateDue(): boolean {
    return this.rx.free - this.window() >= Math.min(this.rx.capacity / 2, this.mss);
  }

  /** The window field to advertise now; moves the advertised edge right (never left). */
  advertise(syn: boolean): number {
    const cur = this.window();
    const wnd = this.windowUpdateDue() ? this.rx.free : Math.min(cur, this.rx.free);
    const shift = syn ? 0 : this.shift; // RFC 7323 §2.2: a SYN's window is not scaled
    const field = Math.min(wnd >> shift, 0xffff);
    const edge = seqAdd(this.next, field << shift);
    if (seqGt(edge, this.advEdge)) this.advEdge = edge;
    return field;
  }

  /** RFC 2018 blocks for what the assembler holds beyond RCV.NXT (none unless the SYN permitted SACK). */
  sackBlocks(): readonly SackRange[] {
    if (!this.sackOk || this.asm.isEmpty) return NO_SACK;
    return this.asm
      .ranges()
      .slice(0, MAX_SACK_BLOCKS)
      .map(([s, e]): SackRange => [seqAdd(this.next, s), seqAdd(this.next, e)]);
  }

  /** Bytes the SACK option takes in each segment we send now (NOP NOP kind len + 8 per block; 0 without). */
  sackOptionLen(): number {
    return !this.sackOk || this.asm.isEmpty ? 0 : 4 + 8 * Math.min(MAX_SACK_BLOCKS, this.asm.rangeCount);
  }

  /** RCV.WND as we advertised it: from RCV.NXT to the advertised edge. */
  private window(): number {
    return Math.max(0, seqSub(this.advEdge, this.next));
  }
}
