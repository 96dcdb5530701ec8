// The passive side of one TCP connection (RFC 9293), terminating a flow an application sent into the TUN so its
// byte stream can become a tunnel stream. No I/O and no clock: `process(seg, nowMs)` takes one demultiplexed,
// checksum-verified segment, `dispatch(nowMs, emit)` hands out everything to send now, `pollAt()` names the next
// deadline. Options: MSS, window scale (RFC 7323 §2), SACK-permitted (RFC 2018; we send SACK blocks, ignore received
// ones); no timestamps. Loss recovery: RFC 6298 RTO + RFC 5681/6582 NewReno. Seq arithmetic only via wire/seq.ts.
//
// Send space (RFC 9293 §3.3.1)                         Receive space (§3.3.1)
//      SND.UNA        SND.NXT   SND.MAX      UNA+WND        RCV.NXT                  rcvAdvEdge
//   ----|#### in flight ####|######|-- usable --|--          ---|=== window we advertised ===|---
//       tx[0]: first unacked byte                               rx unallocated[0]; assembler offsets from here
// SND.MAX is the highest sequence ever sent: after an RTO, SND.NXT is rewound to SND.UNA (go-back-N) while ACKs up
// to SND.MAX stay acceptable. rcvAdvEdge never moves left (§3.8.6.2.2: the window is not shrunk).

import { RingBuffer } from '../storage/ring-buffer';
import { Assembler } from '../storage/assembler';
import {
  TcpFlags,
  TCP_MAX_WINDOW_SCALE,
  seqAdd,
  seqGe,
  seqGt,
  seqInWindow,
  seqLe,
  seqLt,
  seqMax,
  seqSub,
  type SackRange,
  type TcpRepr,
} from '../wire/index';

export const TcpState = {
  /** SYN received, waiting for the application's accept() (the tunnel's CONNECT) or refuse(). Nothing sent yet. */
  SYN_PENDING: 'SYN_PENDING',
  SYN_RECEIVED: 'SYN_RECEIVED',
  ESTABLISHED: 'ESTABLISHED',
  FIN_WAIT_1: 'FIN_WAIT_1',
  FIN_WAIT_2: 'FIN_WAIT_2',
  CLOSE_WAIT: 'CLOSE_WAIT',
  CLOSING: 'CLOSING',
  LAST_ACK: 'LAST_ACK',
  TIME_WAIT: 'TIME_WAIT',
  CLOSED: 'CLOSED',
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export interface TcpSocketConfig {
  /** Our MSS (TUN MTU − 40 for IPv4); segments we send are also capped by it. */
  mss: number;
  rxBufferSize: number;
  txBufferSize: number;
  /** Our ISS, injected (tests pick values near 2^32). */
  initialSeq: number;
  /** TIME_WAIT length; default 2000 ms (bounded: our peer is a local application, not the Internet). */
  timeWaitMs?: number;
  /** RFC 6298 §2.4 says 1 s; default 200 ms for a local TUN peer (Linux uses the same floor). */
  minRtoMs?: number;
  /** Default 60 000 ms (RFC 6298 §2.5). */
  maxRtoMs?: number;
  /** Initial RTO before any sample (RFC 6298 §2.1); default 1000 ms. */
  initialRtoMs?: number;
  /** Consecutive timeouts without any acceptable ACK before the connection is reset; default 10. */
  maxRetries?: number;
}

export interface TcpSocketStats {
  /** Segments sent again (RTO, fast retransmit, NewReno partial ACK, SYN-ACK). */
  retransmits: number;
  timeouts: number;
  fastRetransmits: number;
}

const DEFAULT_MSS = 536; // RFC 9293 §3.7.1: assumed when the SYN carries no MSS option
const MAX_SACK_BLOCKS = 3;

export class TcpSocket {
  private st: TcpState = TcpState.SYN_PENDING;
  private readonly localPort: number;
  private readonly remotePort: number;
  private readonly cfg: Required<TcpSocketConfig>;
  readonly stats: TcpSocketStats = { retransmits: 0, timeouts: 0, fastRetransmits: 0 };

  // Send sequence variables (RFC 9293 §3.3.1) plus SND.MAX.
  private readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  private sndMax: number;
  private sndWnd: number;
  private sndWl1: number;
  private sndWl2: number;
  private maxSndWnd: number;
  private readonly sndShift: number;
  private readonly sndMss: number;
  // Receive sequence variables.
  private readonly irs: number;
  private rcvNxt: number;
  private rcvAdvEdge: number;
  private readonly rcvShift: number;
  private readonly wsOk: boolean;
  private readonly sackOk: boolean;

  private readonly rx: RingBuffer;
  private readonly tx: RingBuffer;
  private readonly asm = new Assembler(32);

  /** Sequence number of our FIN once close() was called (data after it is refused). */
  private finSeq: number | null = null;
  /** Sequence number of the peer's FIN when it arrived beyond a hole. */
  private remoteFinSeq: number | null = null;
  private peerFin = false;

  // Timers (absolute ms) and RFC 6298 state.
  private rtoDeadline: number | null = null;
  private timeWaitDeadline: number | null = null;
  private rto: number;
  private srtt: number | null = null;
  private rttvar = 0;
  private rttSeq: number | null = null;
  private rttStart = 0;
  private retries = 0;

  // Congestion control, RFC 5681 + RFC 6582 (NewReno).
  private cwnd: number;
  private ssthresh = 0x7fffffff;
  private dupAcks = 0;
  private inRecovery = false;
  private recover: number;

  // Output owed at the next dispatch.
  private ackPending = false;
  private synAckPending = false;
  private retransmitFirst = false;
  private rstPending: TcpRepr | null = null;

  private constructor(syn: TcpRepr, cfg: TcpSocketConfig) {
    this.cfg = {
      timeWaitMs: 2000,
      minRtoMs: 200,
      maxRtoMs: 60_000,
      initialRtoMs: 1000,
      maxRetries: 10,
      ...cfg,
    };
    this.localPort = syn.dstPort;
    this.remotePort = syn.srcPort;
    this.iss = cfg.initialSeq >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.recover = this.iss;
    this.irs = syn.seq;
    this.rcvNxt = this.rcvAdvEdge = seqAdd(syn.seq, 1);
    // RFC 7323 §2.2: window scaling only if the SYN offered it; §2.3: a shift above 14 is used as 14.
    this.wsOk = syn.windowScale !== null;
    this.sndShift = this.wsOk ? Math.min(syn.windowScale as number, TCP_MAX_WINDOW_SCALE) : 0;
    let shift = 0;
    if (this.wsOk) while (shift < TCP_MAX_WINDOW_SCALE && cfg.rxBufferSize >> shift > 0xffff) shift++;
    this.rcvShift = shift;
    this.sackOk = syn.sackPermitted;
    this.sndMss = Math.max(1, Math.min(syn.mss ?? DEFAULT_MSS, cfg.mss));
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    this.sndWnd = this.maxSndWnd = syn.window;
    this.sndWl1 = syn.seq;
    this.sndWl2 = this.iss;
    this.rx = new RingBuffer(cfg.rxBufferSize);
    this.tx = new RingBuffer(cfg.txBufferSize);
    this.rto = this.cfg.initialRtoMs;
    this.cwnd = 10 * this.sndMss; // RFC 6928 initial window
  }

  /**
   * A socket for an incoming SYN, in SYN_PENDING until accept()/refuse(). 'reject' when the segment cannot open a
   * connection (RFC 9293 §3.10.7.2: RST → ignore; ACK → the caller answers <SEQ=SEG.ACK><CTL=RST>; no SYN → drop).
   */
  static fromSyn(syn: TcpRepr, _nowMs: number, cfg: TcpSocketConfig): TcpSocket | 'reject' {
    const f = syn.flags;
    if (!(f & TcpFlags.SYN) || f & (TcpFlags.ACK | TcpFlags.RST | TcpFlags.FIN)) return 'reject';
    if (cfg.mss < 1 || cfg.rxBufferSize < 1 || cfg.txBufferSize < 1) throw new RangeError('TcpSocketConfig: sizes must be ≥ 1');
    return new TcpSocket(syn, cfg);
  }

  get state(): TcpState { return this.st; }
  /** The peer's FIN was received in order: no more data will arrive (what is queued can still be read). */
  get remoteClosed(): boolean { return this.peerFin; }
  get recvQueued(): number { return this.rx.length; }
  get sendQueued(): number { return this.tx.length; }
  /** Bytes send() would take now (0 after close()). */
  get sendSpace(): number { return this.canQueueSend() ? this.tx.free : 0; }
  /** Current RTO in ms (for tests and counters). */
  get rtoMs(): number { return this.rto; }
  get congestionWindow(): number { return this.cwnd; }
  /** The peer's window in bytes, already scaled. */
  get peerWindow(): number { return this.sndWnd; }

  // ---------------------------------------------------------------- application side

  /** The tunnel's CONNECT succeeded: send the SYN-ACK at the next dispatch. */
  accept(_nowMs: number): void {
    if (this.st !== TcpState.SYN_PENDING) return;
    this.st = TcpState.SYN_RECEIVED;
    this.synAckPending = true;
  }

  /**
   * The tunnel's CONNECT failed: the next dispatch emits <SEQ=0><ACK=ISN+1><CTL=RST,ACK> ("connection refused").
   * A daemon that prefers ICMP unreachable simply drops the socket without dispatching.
   */
  refuse(): void {
    if (this.st !== TcpState.SYN_PENDING) return;
    this.rstPending = this.segment(0, TcpFlags.RST | TcpFlags.ACK, new Uint8Array(0), seqAdd(this.irs, 1), 0);
    this.st = TcpState.CLOSED;
  }

  /** Copies what fits into the send buffer; returns the bytes taken (0 = full: stop reading the tunnel stream). */
  send(data: Uint8Array): number {
    if (!this.canQueueSend()) return 0;
    return this.tx.enqueue(data);
  }

  /** In-order received bytes (null when none). Reading opens the window; a window update follows when due. */
  recv(into?: Uint8Array): Uint8Array | null {
    if (this.rx.length === 0) return null;
    const out = into ? into.subarray(0, this.rx.dequeueInto(into)) : this.rx.dequeue();
    if (this.receiving() && this.windowUpdateDue()) this.ackPending = true;
    return out;
  }

  /** Half-close: our FIN follows the queued data; receiving continues (RFC 9293 §3.10.4). */
  close(): void {
    switch (this.st) {
      case TcpState.SYN_PENDING:
        this.refuse();
        return;
      case TcpState.SYN_RECEIVED: // §3.10.4: FIN queued until ESTABLISHED
        this.finSeq = seqAdd(this.iss, 1 + this.tx.length);
        return;
      case TcpState.ESTABLISHED:
        this.finSeq = seqAdd(this.sndUna, this.tx.length);
        this.st = TcpState.FIN_WAIT_1;
        return;
      case TcpState.CLOSE_WAIT:
        this.finSeq = seqAdd(this.sndUna, this.tx.length);
        this.st = TcpState.LAST_ACK;
        return;
      default:
        return; // already closing or closed
    }
  }

  /** RST now (RFC 9293 §3.10.5); the socket is CLOSED at once, the RST leaves at the next dispatch. */
  abort(): void {
    switch (this.st) {
      case TcpState.SYN_PENDING:
        this.refuse();
        return;
      case TcpState.CLOSED:
      case TcpState.TIME_WAIT:
        this.enterClosed();
        return;
      default:
        this.rstPending = this.segment(this.sndNxt, TcpFlags.RST | TcpFlags.ACK, new Uint8Array(0));
        this.enterClosed();
    }
  }

  // ---------------------------------------------------------------- incoming segments

  /**
   * One incoming segment for this 4-tuple. A CLOSED socket ignores everything: the caller (the interface) answers
   * segments for closed or unknown 4-tuples with a RST per RFC 9293 §3.10.7.1.
   */
  process(seg: TcpRepr, nowMs: number): void {
    const f = seg.flags;
    const rst = (f & TcpFlags.RST) !== 0;
    const syn = (f & TcpFlags.SYN) !== 0;
    switch (this.st) {
      case TcpState.CLOSED:
        return; // §3.10.7.1: the caller answers with RST
      case TcpState.SYN_PENDING:
        // Still LISTEN from the peer's view (§3.10.7.2): a RST for the pending SYN ends it; retransmitted SYNs wait.
        if (rst && seg.seq === seqAdd(this.irs, 1)) this.enterClosed();
        return;
      default:
        break;
    }

    // §3.10.7.4 first: is the segment acceptable (within RCV.WND)?
    const segLen = seg.payload.length + (syn ? 1 : 0) + (f & TcpFlags.FIN ? 1 : 0);
    const wnd = Math.max(0, seqSub(this.rcvAdvEdge, this.rcvNxt));
    const end = seqAdd(this.rcvNxt, wnd);
    let acceptable: boolean;
    if (segLen === 0) acceptable = wnd === 0 ? seg.seq === this.rcvNxt : seqInWindow(seg.seq, this.rcvNxt, end);
    else
      acceptable =
        // A 1-byte zero-window probe at RCV.NXT is accepted for its ACK (§3.10.7.4 "special allowance"); its data
        // is trimmed below and answered with our (zero) window.
        seg.seq === this.rcvNxt ||
        (wnd > 0 && (seqInWindow(seg.seq, this.rcvNxt, end) || seqInWindow(seqAdd(seg.seq, segLen - 1), this.rcvNxt, end)));
    if (!acceptable) {
      if (rst) return; // §3.10.7.4: unacceptable RST is dropped
      if (this.st === TcpState.SYN_RECEIVED && syn && seg.seq === this.irs) {
        // Deliberate difference: a retransmitted SYN means our SYN-ACK was lost; resend it at once (as Linux does)
        // rather than the plain ACK of §3.10.7.4.
        this.synAckPending = true;
        return;
      }
      if (this.st === TcpState.TIME_WAIT && f & TcpFlags.FIN) this.timeWaitDeadline = nowMs + this.cfg.timeWaitMs; // §3.10.7.4 eighth: restart 2MSL
      this.ackPending = true; // §3.10.7.4: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, also answers zero-window probes
      return;
    }

    // §3.10.7.4 second: RST. RFC 5961 §3.2: only an exact RCV.NXT match resets; in-window others get a challenge ACK.
    if (rst) {
      if (seg.seq === this.rcvNxt) this.enterClosed();
      else this.ackPending = true;
      return;
    }
    // §3.10.7.4 fourth: SYN in a synchronized state → RFC 5961 §4 challenge ACK, drop.
    if (syn) {
      this.ackPending = true;
      return;
    }
    // §3.10.7.4 fifth: no ACK bit → drop.
    if (!(f & TcpFlags.ACK)) return;
    if (!this.processAck(seg, nowMs)) return;

    // §3.10.7.4 seventh: segment text, in the states that still receive.
    if (this.receiving()) this.processData(seg, nowMs);
  }

  /** §3.10.7.4 fifth, per state. Returns false when the segment is dropped. */
  private processAck(seg: TcpRepr, nowMs: number): boolean {
    const ack = seg.ack;
    switch (this.st) {
      case TcpState.SYN_RECEIVED:
        // §3.10.7.4 SYN-RECEIVED: SND.UNA < SEG.ACK =< SND.NXT → ESTABLISHED; otherwise <SEQ=SEG.ACK><CTL=RST>.
        if (!(seqLt(this.sndUna, ack) && seqLe(ack, this.sndMax))) {
          this.rstPending = this.segment(ack, TcpFlags.RST, new Uint8Array(0), 0);
          return false;
        }
        this.sampleRtt(ack, nowMs);
        this.sndUna = this.sndNxt = seqAdd(this.iss, 1);
        this.retries = 0;
        this.rtoDeadline = null;
        this.rto = this.rtoFromSrtt();
        this.sndWnd = seg.window << this.sndShift;
        this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
        this.sndWl1 = seg.seq;
        this.sndWl2 = ack;
        this.st = this.finSeq === null ? TcpState.ESTABLISHED : TcpState.FIN_WAIT_1; // a close() during the handshake
        return true;
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
      case TcpState.CLOSING:
      case TcpState.LAST_ACK:
      case TcpState.TIME_WAIT:
        break;
      default:
        return false;
    }

    // §3.10.7.4 ESTABLISHED: an ACK for something not yet sent → ACK and drop (SND.MAX, not SND.NXT, after an RTO).
    if (seqGt(ack, this.sndMax)) {
      this.ackPending = true;
      return false;
    }
    const window = seg.window << this.sndShift;
    if (seqGt(ack, this.sndUna)) {
      this.ackAdvanced(ack, nowMs);
    } else if (
      // RFC 5681 §2 duplicate ACK: nothing new, outstanding data, no data/SYN/FIN, same window (and not a
      // zero-window probe answer: those would otherwise trigger fast retransmits of the probe).
      ack === this.sndUna &&
      this.sndMax !== this.sndUna &&
      seg.payload.length === 0 &&
      !(seg.flags & (TcpFlags.SYN | TcpFlags.FIN)) &&
      window === this.sndWnd &&
      window > 0
    ) {
      this.duplicateAck();
    }
    if (seqGe(ack, this.sndUna)) this.retries = 0; // the peer is alive (also answers to window probes)
    // §3.10.7.4: window update if SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK).
    if (seqLe(this.sndUna, ack) && (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack)))) {
      this.sndWnd = window;
      this.maxSndWnd = Math.max(this.maxSndWnd, window);
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
    }

    const finAcked = this.finSeq !== null && seqGt(this.sndUna, this.finSeq);
    switch (this.st) {
      case TcpState.FIN_WAIT_1: // §3.10.7.4 FIN-WAIT-1: our FIN acknowledged → FIN-WAIT-2
        if (finAcked) this.st = TcpState.FIN_WAIT_2;
        return true;
      case TcpState.CLOSING: // §3.10.7.4 CLOSING: FIN acknowledged → TIME-WAIT
        if (finAcked) this.enterTimeWait(nowMs);
        return true;
      case TcpState.LAST_ACK: // §3.10.7.4 LAST-ACK: FIN acknowledged → CLOSED
        if (finAcked) this.enterClosed();
        return false;
      default:
        return true;
    }
  }

  private ackAdvanced(ack: number, nowMs: number): void {
    const acked = seqSub(ack, this.sndUna);
    this.tx.discard(Math.min(acked, this.tx.length)); // the FIN, if acked, is the one extra
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack; // late ACK for data sent before a go-back-N rewind
    this.sampleRtt(ack, nowMs);
    // RFC 6298 §5.2/5.3: stop the timer when all is acked, else restart it.
    this.rtoDeadline = this.sndUna === this.sndMax ? null : nowMs + this.rto;
    if (this.inRecovery) {
      if (seqGe(ack, this.recover)) {
        // RFC 6582 §3.2 step 3, full ACK: deflate to ssthresh and leave recovery.
        this.inRecovery = false;
        this.cwnd = Math.max(this.ssthresh, this.sndMss);
      } else {
        // Partial ACK: resend the next hole (one segment), deflate by what was acked, add back one MSS.
        this.retransmitFirst = true;
        this.cwnd = Math.max(this.cwnd - acked + this.sndMss, this.sndMss);
      }
    } else if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, this.sndMss); // RFC 5681 §3.1 slow start
    } else {
      this.cwnd += Math.max(1, Math.floor((this.sndMss * this.sndMss) / this.cwnd)); // congestion avoidance
    }
    this.cwnd = Math.min(this.cwnd, 0x40000000);
    this.dupAcks = 0;
  }

  private duplicateAck(): void {
    this.dupAcks++;
    if (this.dupAcks === 3 && !this.inRecovery && seqGt(this.sndUna, this.recover)) {
      // RFC 5681 §3.2 / RFC 6582 §3.2: resend ONLY the first unacked segment, then inflate per dup ACK.
      const flight = seqSub(this.sndMax, this.sndUna);
      this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.sndMss);
      this.cwnd = this.ssthresh + 3 * this.sndMss;
      this.inRecovery = true;
      this.recover = this.sndMax;
      this.retransmitFirst = true;
      this.stats.fastRetransmits++;
    } else if (this.inRecovery && this.dupAcks > 3) {
      this.cwnd += this.sndMss;
    }
  }

  private processData(seg: TcpRepr, _nowMs: number): void {
    const fin = (seg.flags & TcpFlags.FIN) !== 0;
    if (seg.payload.length === 0 && !fin) return;
    this.ackPending = true; // one ACK per dispatch batch, whatever happened below
    let data = seg.payload;
    let off = seqSub(seg.seq, this.rcvNxt);
    if (off < 0) {
      data = data.subarray(Math.min(-off, data.length)); // already received (§3.10.7.4 trim to the window)
      off = 0;
    }
    const wnd = Math.max(0, seqSub(this.rcvAdvEdge, this.rcvNxt));
    const fits = off + data.length <= wnd;
    if (!fits) data = data.subarray(0, Math.max(0, wnd - off));
    if (data.length > 0) {
      this.rx.writeUnallocated(off, data);
      if (this.asm.add(off, data.length)) {
        const n = this.asm.removeFront();
        if (n > 0) {
          this.rx.enqueueUnallocated(n);
          this.rcvNxt = seqAdd(this.rcvNxt, n);
        }
      }
    }
    if (fin && fits) this.remoteFinSeq = seqAdd(seg.seq, seg.payload.length);
    // §3.10.7.4 eighth: the FIN counts once everything before it has arrived.
    if (this.remoteFinSeq !== null && this.rcvNxt === this.remoteFinSeq) {
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.rcvAdvEdge = seqMax(this.rcvAdvEdge, this.rcvNxt);
      this.remoteFinSeq = null;
      this.peerFin = true;
      this.asm.clear();
      switch (this.st) {
        case TcpState.ESTABLISHED: this.st = TcpState.CLOSE_WAIT; break;
        case TcpState.FIN_WAIT_1: this.st = TcpState.CLOSING; break; // our FIN not yet acked (else FIN-WAIT-2)
        case TcpState.FIN_WAIT_2: this.enterTimeWait(_nowMs); break;
        default: break;
      }
    }
  }

  // ---------------------------------------------------------------- timers and output

  /** The next time dispatch() must run: a value ≤ now means "now"; null means only input can wake the socket. */
  pollAt(): number | null {
    if (this.rstPending) return 0;
    if (this.st === TcpState.CLOSED || this.st === TcpState.SYN_PENDING) return null;
    if (this.ackPending || this.synAckPending || this.retransmitFirst || this.nextSend() !== null) return 0;
    if (this.rtoDeadline === null && this.persistDue()) return 0; // the persist timer must be armed
    const a = this.rtoDeadline;
    const b = this.timeWaitDeadline;
    if (a === null) return b;
    return b === null ? a : Math.min(a, b);
  }

  /** Everything to send now. `emit` must serialise the segment before returning: payloads alias the send buffer. */
  dispatch(nowMs: number, emit: (seg: TcpRepr) => void): void {
    this.runTimers(nowMs);
    if (this.rstPending) {
      const r = this.rstPending;
      this.rstPending = null;
      emit(r);
    }
    switch (this.st) {
      case TcpState.CLOSED:
      case TcpState.SYN_PENDING:
        return;
      case TcpState.SYN_RECEIVED:
        // §3.10.7.2: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> with our options, echoing only what the SYN offered.
        if (this.synAckPending) {
          this.synAckPending = false;
          this.ackPending = false;
          const s = this.segment(this.iss, TcpFlags.SYN | TcpFlags.ACK, new Uint8Array(0));
          s.mss = this.cfg.mss;
          s.windowScale = this.wsOk ? this.rcvShift : null;
          s.sackPermitted = this.sackOk;
          if (this.sndMax === this.iss) {
            this.rttSeq = seqAdd(this.iss, 1);
            this.rttStart = nowMs;
          } else {
            this.stats.retransmits++;
          }
          this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
          if (this.rtoDeadline === null) this.rtoDeadline = nowMs + this.rto;
          emit(s);
        } else if (this.ackPending) {
          this.ackPending = false;
          emit(this.segment(this.sndNxt, TcpFlags.ACK, new Uint8Array(0)));
        }
        return;
      default:
        break;
    }

    let sent = false;
    if (this.retransmitFirst && this.sendingData()) {
      this.retransmitFirst = false;
      // One segment at SND.UNA (fast retransmit, partial ACK, RTO, window probe); 1 byte into a zero window.
      const outstanding = this.tx.length + (this.finSeq !== null ? 1 : 0);
      const wnd = this.sendWindow();
      const n = Math.min(this.tx.length, this.sndMss, Math.max(wnd, 1));
      if (outstanding > 0) {
        const fin = this.finSeq !== null && n === this.tx.length && (wnd > 0 || n === 0);
        emit(this.segment(this.sndUna, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (n > 0 && n === this.tx.length ? TcpFlags.PSH : 0), this.tx.peek(0, n)));
        const end = seqAdd(this.sndUna, n + (fin ? 1 : 0));
        if (seqLt(this.sndNxt, end)) this.sndNxt = end;
        if (seqLt(this.sndMax, end)) this.sndMax = end;
        else this.stats.retransmits++;
        if (this.rtoDeadline === null) this.rtoDeadline = nowMs + this.rto;
        sent = true;
      }
    }
    this.retransmitFirst = false;

    for (let next = this.nextSend(); next !== null; next = this.nextSend()) {
      const { offset, len, fin } = next;
      const seq = this.sndNxt;
      const isNew = !seqLt(seq, this.sndMax);
      emit(this.segment(seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (len > 0 && offset + len === this.tx.length ? TcpFlags.PSH : 0), this.tx.peek(offset, len)));
      const end = seqAdd(seq, len + (fin ? 1 : 0));
      if (isNew && this.rttSeq === null) {
        this.rttSeq = end; // Karn: only segments sent for the first time are timed
        this.rttStart = nowMs;
      }
      if (!isNew) this.stats.retransmits++;
      this.sndNxt = end;
      if (seqGt(end, this.sndMax)) this.sndMax = end;
      if (this.rtoDeadline === null) this.rtoDeadline = nowMs + this.rto; // RFC 6298 §5.1
      sent = true;
    }

    // Persist timer: data waiting behind a zero window and nothing in flight → probe on the RTO backoff.
    if (this.rtoDeadline === null && this.persistDue()) {
      this.rtoDeadline = nowMs + this.rto;
    }
    if (this.ackPending && !sent) emit(this.segment(this.sndNxt, TcpFlags.ACK, new Uint8Array(0)));
    this.ackPending = false;
  }

  private runTimers(nowMs: number): void {
    if (this.timeWaitDeadline !== null && nowMs >= this.timeWaitDeadline) {
      this.enterClosed();
      return;
    }
    if (this.rtoDeadline === null || nowMs < this.rtoDeadline) return;
    const probing = this.sndUna === this.sndMax; // persist timer: nothing in flight
    if (!probing && ++this.retries > this.cfg.maxRetries) {
      this.abort(); // RFC 9293 §3.8.3 R2: give up
      return;
    }
    this.stats.timeouts++;
    this.rttSeq = null; // Karn's rule
    if (this.st === TcpState.SYN_RECEIVED) {
      this.synAckPending = true;
    } else {
      if (!probing) {
        // RFC 5681 §3.1 (4): loss window, go-back-N from SND.UNA; ssthresh halves only on the first timeout.
        if (this.retries === 1) this.ssthresh = Math.max(Math.floor(seqSub(this.sndMax, this.sndUna) / 2), 2 * this.sndMss);
        this.cwnd = this.sndMss;
        this.sndNxt = this.sndUna;
        this.inRecovery = false;
        this.recover = this.sndMax;
        this.dupAcks = 0;
      }
      this.retransmitFirst = true;
    }
    this.rto = Math.min(this.rto * 2, this.cfg.maxRtoMs); // RFC 6298 §5.5
    this.rtoDeadline = nowMs + this.rto;
  }

  /** The next new (or go-back-N resent) segment the windows allow, with receiver-side SWS avoidance. */
  private nextSend(): { offset: number; len: number; fin: boolean } | null {
    if (!this.sendingData()) return null;
    const offset = seqSub(this.sndNxt, this.sndUna);
    const avail = this.tx.length - offset;
    if (avail < 0) return null; // FIN already sent
    const usable = Math.max(0, seqSub(seqAdd(this.sndUna, Math.min(this.sendWindow(), this.cwnd)), this.sndNxt));
    const len = Math.min(avail, this.sndMss, usable);
    const fin = this.finSeq !== null && len === avail;
    if (len === 0 && !fin) return null;
    // RFC 9293 §3.8.6.2.1 (sender SWS): a short segment only if it empties the queue, nothing is in flight,
    // or it fills at least half the largest window the peer offered.
    if (len < this.sndMss && len < avail && this.sndNxt !== this.sndUna && len < this.maxSndWnd / 2) return null;
    return { offset, len, fin };
  }

  private persistDue(): boolean {
    return this.sendingData() && this.sendWindow() === 0 && this.sndUna === this.sndMax && this.unsentLen() > 0;
  }

  /**
   * The peer's window counted from SND.UNA. Its right edge is SND.WL2 + SND.WND — where the segment that carried
   * the window put it — not SND.UNA + SND.WND: an ACK too old to update the window (§3.10.7.4) must not move it.
   */
  private sendWindow(): number {
    return Math.max(0, seqSub(seqAdd(this.sndWl2, this.sndWnd), this.sndUna));
  }

  private unsentLen(): number {
    return Math.max(0, this.tx.length - seqSub(this.sndNxt, this.sndUna)) + (this.finSeq !== null && !seqGt(this.sndNxt, this.finSeq) ? 1 : 0);
  }

  private sendingData(): boolean {
    switch (this.st) {
      case TcpState.ESTABLISHED:
      case TcpState.CLOSE_WAIT:
      case TcpState.FIN_WAIT_1:
      case TcpState.CLOSING:
      case TcpState.LAST_ACK:
        return true;
      default:
        return false;
    }
  }

  private receiving(): boolean {
    return this.st === TcpState.ESTABLISHED || this.st === TcpState.FIN_WAIT_1 || this.st === TcpState.FIN_WAIT_2;
  }

  private canQueueSend(): boolean {
    if (this.finSeq !== null) return false;
    return this.st === TcpState.SYN_PENDING || this.st === TcpState.SYN_RECEIVED || this.st === TcpState.ESTABLISHED || this.st === TcpState.CLOSE_WAIT;
  }

  /** §3.8.6.2.2 receiver SWS avoidance: open the window once it grew by min(buffer/2, MSS). */
  private windowUpdateDue(): boolean {
    const cur = Math.max(0, seqSub(this.rcvAdvEdge, this.rcvNxt));
    return this.rx.free - cur >= Math.min(this.rx.capacity / 2, this.cfg.mss);
  }

  /** The window field to advertise now; moves rcvAdvEdge right (never left). */
  private advertise(syn: boolean): number {
    const cur = Math.max(0, seqSub(this.rcvAdvEdge, this.rcvNxt));
    const wnd = this.windowUpdateDue() ? this.rx.free : Math.min(cur, this.rx.free);
    const shift = syn ? 0 : this.rcvShift; // RFC 7323 §2.2: a SYN's window is not scaled
    const field = Math.min(wnd >> shift, 0xffff);
    const edge = seqAdd(this.rcvNxt, field << shift);
    if (seqGt(edge, this.rcvAdvEdge)) this.rcvAdvEdge = edge;
    return field;
  }

  private sackBlocks(): SackRange[] {
    if (!this.sackOk || this.asm.isEmpty) return [];
    return this.asm
      .ranges()
      .slice(0, MAX_SACK_BLOCKS)
      .map(([s, e]): SackRange => [seqAdd(this.rcvNxt, s), seqAdd(this.rcvNxt, e)]);
  }

  private segment(seq: number, flags: number, payload: Uint8Array, ack: number = this.rcvNxt, window?: number): TcpRepr {
    const hasAck = (flags & TcpFlags.ACK) !== 0;
    const rst = (flags & TcpFlags.RST) !== 0;
    return {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq,
      ack: hasAck ? ack : 0,
      flags,
      window: window ?? (rst ? 0 : this.advertise((flags & TcpFlags.SYN) !== 0)),
      urgent: 0,
      mss: null,
      windowScale: null,
      sackPermitted: false,
      sackRanges: rst ? [] : this.sackBlocks(),
      timestamp: null,
      payload,
    };
  }

  private sampleRtt(ack: number, nowMs: number): void {
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
    this.rto = this.rtoFromSrtt();
  }

  private rtoFromSrtt(): number {
    if (this.srtt === null) return this.rto;
    const rto = this.srtt + Math.max(1, 4 * this.rttvar);
    return Math.min(Math.max(rto, this.cfg.minRtoMs), this.cfg.maxRtoMs);
  }

  private enterTimeWait(nowMs: number): void {
    this.st = TcpState.TIME_WAIT;
    this.rtoDeadline = null;
    this.timeWaitDeadline = nowMs + this.cfg.timeWaitMs;
  }

  private enterClosed(): void {
    this.st = TcpState.CLOSED;
    this.rtoDeadline = null;
    this.timeWaitDeadline = null;
    this.ackPending = this.synAckPending = this.retransmitFirst = false;
  }
}
