// The passive side of one TCP connection (RFC 9293), terminating a flow an application sent into the TUN so its
// byte stream can become a tunnel stream. No I/O and no clock: `process(seg, nowMs)` takes one demultiplexed,
// checksum-verified segment, `dispatch(nowMs, emit)` hands out everything to send now, `pollAt()` names the next
// deadline. Options: MSS, window scale (RFC 7323 §2), SACK-permitted and SACK (RFC 2018: we send blocks for what we
// hold, and keep a scoreboard of the peer's); no timestamps. Loss recovery: RFC 6298 RTO; RFC 6675 SACK-based
// recovery when the peer SACKs, else RFC 5681/6582 NewReno. Seq arithmetic only via wire/seq.ts.
//
// Send space (RFC 9293 §3.3.1)                         Receive space (§3.3.1)
//      SND.UNA        SND.NXT   SND.MAX      UNA+WND        RCV.NXT                  rcvAdvEdge
//   ----|#### in flight ####|######|-- usable --|--          ---|=== window we advertised ===|---
//       tx[0]: first unacked byte                               rx unallocated[0]; assembler offsets from here
// SND.MAX is the highest sequence ever sent: after an RTO, SND.NXT is rewound to SND.UNA (go-back-N over what the
// peer has not SACKed) while ACKs up to SND.MAX stay acceptable. During SACK recovery SND.NXT stays at SND.MAX and
// holes are resent one packet at a time from HighRxt upwards (RFC 6675 NextSeg), while cwnd − pipe allows.
// rcvAdvEdge never moves left (§3.8.6.2.2: the window is not shrunk).
// This file is the state machine; send.ts / receive.ts hold the two spaces, scoreboard.ts the peer's SACKs,
// recovery.ts the RFC 6675 holes and pipe, tail-probe.ts the RFC 8985 tail loss probe, rtt.ts the RTO,
// congestion.ts cwnd and the recovery mode.
// Segmentation offload (cfg.maxSegment > MSS): dispatch may emit segments of several MSS, never beyond the peer's
// window or cwnd, and tells the caller the per-packet size the kernel must cut them into.

import { Congestion, Recovery } from './congestion';
import { negotiate, withDefaults, type TcpSocketConfig } from './options';
import { RecvSpace } from './receive';
import { SackRecovery } from './recovery';
import { SendSpace } from './send';
import { TcpState, receivesData, sendsData } from './state';
import { RttEstimator } from './rtt';
import { TailLossProbe } from './tail-probe';
import {
  TcpFlags,
  seqAdd,
  seqGe,
  seqGt,
  seqLe,
  seqLt,
  seqSub,
  TcpRepr,
} from '../wire/index';

const NO_DATA = new Uint8Array(0);
/** Where a segment that spans the send ring's wrap is gathered: emit serialises it before the next one. */
const WRAPPED = new Uint8Array(0x10000);

export { TcpState };
export type { TcpSocketConfig };

/** dispatch's callback: `seg` (payload aliasing the send buffer) and the payload bytes per packet on the wire. */
export type SegmentSink = (seg: TcpRepr, packetLen: number) => void;

/** One data segment to emit: `offset` from SND.UNA; `hole` when it resends a hole during SACK recovery. */
interface Outgoing { offset: number; len: number; fin: boolean; packetLen: number; hole: boolean }

export interface TcpSocketStats {
  /** Segments sent again (RTO, fast retransmit, NewReno partial ACK, SACK recovery, SYN-ACK). */
  retransmits: number;
  timeouts: number;
  fastRetransmits: number;
  /** RFC 8985 tail loss probes sent. */
  probes: number;
}

export class TcpSocket {
  private st: TcpState = TcpState.SYN_PENDING;
  private readonly localPort: number;
  private readonly remotePort: number;
  private readonly cfg: Required<TcpSocketConfig>;
  readonly stats: TcpSocketStats = { retransmits: 0, timeouts: 0, fastRetransmits: 0, probes: 0 };

  // Send sequence variables (RFC 9293 §3.3.1) plus SND.MAX, with the send buffer and our FIN.
  private readonly iss: number;
  private readonly snd: SendSpace;
  // Receive sequence variables: RCV.NXT and the advertised window live in `rcv` with the receive buffer.
  private readonly irs: number;
  private readonly rcv: RecvSpace;
  private readonly wsOk: boolean;
  private readonly sackOk: boolean;

  private peerFin = false;

  // Timers (absolute ms) and RFC 6298 state.
  private rtoDeadline: number | null = null;
  private timeWaitDeadline: number | null = null;
  private readonly rtt: RttEstimator;
  private retries = 0;

  // Congestion control, RFC 5681 + RFC 6675 (SACK) or RFC 6582 (NewReno).
  private readonly cc: Congestion;
  /** RFC 6675 recovery state: HighRxt, the resent packets, what the tail loss probe showed lost. */
  private readonly rec: SackRecovery;

  /** RFC 8985 tail loss probe (SACK peers only). */
  private readonly tlp: TailLossProbe;
  /**
   * FlightSize right after data last went out. ACKs are processed in batches before the next dispatch, so the
   * flight at the moment a loss is detected can be far below what was outstanding: FlightSize for the window
   * reduction is the larger of the two (RFC 5681 §3.2 means the data in the network, not a batching artefact).
   */
  private sentFlight = 0;

  // Output owed at the next dispatch.
  private ackPending = false;
  private synAckPending = false;
  private retransmitFirst = false;
  private rstPending: TcpRepr | null = null;
  /** Told when an application call (accept, send, recv, close, …) left something for dispatch to do. */
  private waker: (() => void) | null = null;

  private constructor(syn: TcpRepr, cfg: TcpSocketConfig) {
    this.cfg = withDefaults(cfg);
    this.localPort = syn.dstPort;
    this.remotePort = syn.srcPort;
    this.iss = cfg.initialSeq >>> 0;
    this.irs = syn.seq;
    const { wsOk, sndShift, sackOk, sndMss } = negotiate(syn, cfg);
    this.wsOk = wsOk;
    this.sackOk = sackOk;
    this.rcv = new RecvSpace(syn.seq, cfg.rxBufferSize, wsOk, sackOk, cfg.mss);
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    this.snd = new SendSpace(this.iss, syn.seq, syn.window, cfg.txBufferSize, sndShift, sndMss, Math.max(sndMss, cfg.maxSegment ?? 0));
    this.rtt = new RttEstimator(this.cfg.initialRtoMs, this.cfg.minRtoMs, this.cfg.maxRtoMs);
    this.cc = new Congestion(sndMss, this.iss);
    this.rec = new SackRecovery(this.snd);
    this.tlp = new TailLossProbe(this.snd, this.cc, this.rec, this.rtt, sackOk);
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
  get recvQueued(): number { return this.rcv.queued; }
  get sendQueued(): number { return this.snd.tx.length; }
  /** Bytes send() would take now (0 after close()). */
  get sendSpace(): number { return this.canQueueSend() ? this.snd.tx.free : 0; }
  /** Current RTO in ms (for tests and counters). */
  get rtoMs(): number { return this.rtt.rto; }
  get congestionWindow(): number { return this.cc.cwnd; }
  /** The peer's window in bytes, already scaled. */
  get peerWindow(): number { return this.snd.wnd; }
  /** MSS of the segments we send (the peer's, capped by ours). */
  get sendMss(): number { return this.snd.mss; }
  /** Bytes of buffer storage allocated (storage grows with use, up to the configured sizes). */
  get allocatedBytes(): number { return this.snd.tx.allocated + this.rcv.allocated; }

  /** `fn` runs whenever an application call leaves output for dispatch (the interface's dirty set). */
  setWaker(fn: (() => void) | null): void {
    this.waker = fn;
  }

  private wake(): void {
    this.waker?.();
  }

  // ---------------------------------------------------------------- application side

  /** The tunnel's CONNECT succeeded: send the SYN-ACK at the next dispatch. */
  accept(_nowMs: number): void {
    if (this.st !== TcpState.SYN_PENDING) return;
    this.st = TcpState.SYN_RECEIVED;
    this.synAckPending = true;
    this.wake();
  }

  /**
   * The tunnel's CONNECT failed: the next dispatch emits <SEQ=0><ACK=ISN+1><CTL=RST,ACK> ("connection refused").
   * A daemon that prefers ICMP unreachable simply drops the socket without dispatching.
   */
  refuse(): void {
    if (this.st !== TcpState.SYN_PENDING) return;
    this.rstPending = this.segment(0, TcpFlags.RST | TcpFlags.ACK, NO_DATA, seqAdd(this.irs, 1), 0);
    this.st = TcpState.CLOSED;
    this.wake();
  }

  /** Copies what fits into the send buffer; returns the bytes taken (0 = full: stop reading the tunnel stream). */
  send(data: Uint8Array): number {
    if (!this.canQueueSend()) return 0;
    const n = this.snd.tx.enqueue(data);
    if (n > 0) this.wake();
    return n;
  }

  /** In-order received bytes (null when none). Reading opens the window; a window update follows when due. */
  recv(into?: Uint8Array): Uint8Array | null {
    const out = this.rcv.read(into);
    if (out === null) return null;
    if (receivesData(this.st) && this.rcv.windowUpdateDue() && !this.ackPending) {
      this.ackPending = true;
      this.wake();
    }
    return out;
  }

  /** Half-close: our FIN follows the queued data; receiving continues (RFC 9293 §3.10.4). */
  close(): void {
    this.wake();
    switch (this.st) {
      case TcpState.SYN_PENDING:
        this.refuse();
        return;
      case TcpState.SYN_RECEIVED: // §3.10.4: FIN queued until ESTABLISHED
        this.snd.finSeq = seqAdd(this.iss, 1 + this.snd.tx.length);
        return;
      case TcpState.ESTABLISHED:
        this.snd.finSeq = seqAdd(this.snd.una, this.snd.tx.length);
        this.st = TcpState.FIN_WAIT_1;
        return;
      case TcpState.CLOSE_WAIT:
        this.snd.finSeq = seqAdd(this.snd.una, this.snd.tx.length);
        this.st = TcpState.LAST_ACK;
        return;
      default:
        return; // already closing or closed
    }
  }

  /** RST now (RFC 9293 §3.10.5); the socket is CLOSED at once, the RST leaves at the next dispatch. */
  abort(): void {
    this.wake();
    this.reset();
  }

  private reset(): void {
    switch (this.st) {
      case TcpState.SYN_PENDING:
        this.refuse();
        return;
      case TcpState.CLOSED:
      case TcpState.TIME_WAIT:
        this.enterClosed();
        return;
      default:
        this.rstPending = this.segment(this.snd.nxt, TcpFlags.RST | TcpFlags.ACK, NO_DATA);
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
    if (!this.rcv.acceptable(seg.seq, segLen)) {
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
      if (seg.seq === this.rcv.nxt) this.enterClosed();
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
    if (receivesData(this.st)) this.processData(seg, nowMs);
  }

  /** §3.10.7.4 fifth, per state. Returns false when the segment is dropped. */
  private processAck(seg: TcpRepr, nowMs: number): boolean {
    const ack = seg.ack;
    switch (this.st) {
      case TcpState.SYN_RECEIVED:
        // §3.10.7.4 SYN-RECEIVED: SND.UNA < SEG.ACK =< SND.NXT → ESTABLISHED; otherwise <SEQ=SEG.ACK><CTL=RST>.
        if (!(seqLt(this.snd.una, ack) && seqLe(ack, this.snd.max))) {
          this.rstPending = this.segment(ack, TcpFlags.RST, NO_DATA, 0);
          return false;
        }
        this.rtt.sample(ack, nowMs);
        this.snd.una = this.snd.nxt = seqAdd(this.iss, 1);
        this.retries = 0;
        this.rtoDeadline = null;
        this.rtt.resetBackoff();
        this.snd.setWindow(seg.seq, ack, seg.window << this.snd.shift);
        this.st = this.snd.finSeq === null ? TcpState.ESTABLISHED : TcpState.FIN_WAIT_1; // a close() during the handshake
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
    if (seqGt(ack, this.snd.max)) {
      this.ackPending = true;
      return false;
    }
    const window = seg.window << this.snd.shift;
    const advanced = seqGt(ack, this.snd.una);
    if (advanced) this.ackAdvanced(ack, nowMs);
    // RFC 6675 §5: the scoreboard takes the SACK blocks of every ACK, after the cumulative ACK.
    const sackInfo = this.sackOk && seg.sackRanges.length > 0;
    const newlySacked = sackInfo ? this.snd.sacked.update(seg.sackRanges, this.snd.una, this.snd.flight()) : 0;
    this.tlp.answered(seg, ack);
    if (this.cc.recovery === Recovery.SACK && (advanced || newlySacked > 0)) this.rec.ackProcessed();
    const duplicate = sackInfo
      ? // RFC 6675 §2: an ACK that SACKs new data is a duplicate, cumulative or not, whatever its window says (a
        // receiver holding out-of-order data changes its window as it goes).
        newlySacked > 0
      : // RFC 5681 §2: nothing new, outstanding data, no data/SYN/FIN, same window (and not a zero-window probe
        // answer: those would otherwise trigger fast retransmits of the probe).
        !advanced &&
        ack === this.snd.una &&
        this.snd.max !== this.snd.una &&
        seg.payload.length === 0 &&
        !(seg.flags & (TcpFlags.SYN | TcpFlags.FIN)) &&
        window === this.snd.wnd &&
        window > 0;
    if (duplicate) this.duplicateAck();
    if (advanced) this.tlp.arm(nowMs, sendsData(this.st), this.rtoDeadline); // RFC 8985 §7.2: restarted by an ACK of new data
    if (seqGe(ack, this.snd.una)) this.retries = 0; // the peer is alive (also answers to window probes)
    this.snd.maybeUpdateWindow(seg.seq, ack, window); // §3.10.7.4 window update (SND.WL1/WL2)

    const finAcked = this.snd.finSeq !== null && seqGt(this.snd.una, this.snd.finSeq);
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

  /**
   * RFC 5681 §3.2 / RFC 6582 §3.2 (no SACK): the third duplicate resends ONLY the first unacked segment. RFC 6675
   * §5 (the peer SACKs): DupThresh duplicates or IsLost(SND.UNA) start recovery with that same segment; the rest
   * follows in dispatch as cwnd − pipe allows.
   */
  private duplicateAck(): void {
    const sb = this.snd.sacked;
    const sack = !sb.isEmpty;
    const lost = sack && this.rec.headLost();
    if (this.cc.duplicateAck(this.snd.una, this.snd.max, this.flightSize(), sack, lost) !== Recovery.NONE) this.recoveryStarted();
  }

  private flightSize(): number {
    return Math.max(this.snd.flight(), this.sentFlight);
  }

  private recoveryStarted(): void {
    this.retransmitFirst = true;
    this.stats.fastRetransmits++;
    this.rec.start();
    this.rtt.cancel(); // the timed segment's ACK would now wait for the repair (or be the repair's)
    this.tlp.recoveryStarted();
  }

  private ackAdvanced(ack: number, nowMs: number): void {
    const acked = this.snd.advance(ack);
    this.rec.advanced(acked);
    this.tlp.advanced();
    this.rtt.sample(ack, nowMs);
    // RFC 6298 §5.2/5.3: stop the timer when all is acked, else restart it.
    this.rtoDeadline = this.snd.una === this.snd.max ? null : nowMs + this.rtt.rto;
    if (this.cc.ackAdvanced(ack, acked)) this.retransmitFirst = true; // NewReno partial ACK
  }

  private processData(seg: TcpRepr, _nowMs: number): void {
    const fin = (seg.flags & TcpFlags.FIN) !== 0;
    if (seg.payload.length === 0 && !fin) return;
    this.ackPending = true; // one ACK per dispatch batch, whatever happened below
    // §3.10.7.4 eighth: the FIN counts once everything before it has arrived.
    if (this.rcv.place(seg.seq, seg.payload, fin)) {
      this.peerFin = true;
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
    if (this.ackPending || this.synAckPending || this.retransmitFirst || this.tlp.owed || this.nextSegment(this.rcv.sackOptionLen()) !== null) return 0;
    if (this.rtoDeadline === null && this.persistDue()) return 0; // the persist timer must be armed
    const p = this.tlp.deadline;
    const r = this.rtoDeadline;
    const a = p === null ? r : r === null ? p : Math.min(p, r);
    const b = this.timeWaitDeadline;
    if (a === null) return b;
    return b === null ? a : Math.min(a, b);
  }

  /** Everything to send now. `emit` must serialise the segment before returning: payloads alias the send buffer. */
  dispatch(nowMs: number, emit: SegmentSink): void {
    this.runTimers(nowMs);
    if (this.rstPending) {
      const r = this.rstPending;
      this.rstPending = null;
      emit(r, this.snd.mss);
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
          const s = this.segment(this.iss, TcpFlags.SYN | TcpFlags.ACK, NO_DATA);
          s.mss = this.cfg.mss;
          s.windowScale = this.wsOk ? this.rcv.shift : null;
          s.sackPermitted = this.sackOk;
          if (this.snd.max === this.iss) {
            this.rtt.startSample(seqAdd(this.iss, 1), nowMs);
          } else {
            this.stats.retransmits++;
          }
          this.snd.nxt = this.snd.max = seqAdd(this.iss, 1);
          if (this.rtoDeadline === null) this.rtoDeadline = nowMs + this.rtt.rto;
          emit(s, this.snd.mss);
        } else if (this.ackPending) {
          this.ackPending = false;
          emit(this.segment(this.snd.nxt, TcpFlags.ACK, NO_DATA), this.snd.mss);
        }
        return;
      default:
        break;
    }

    let sent = false;
    let sentData = false;
    const optLen = this.rcv.sackOptionLen(); // SACK blocks ride in every packet: less room for data
    if (this.retransmitFirst && sendsData(this.st)) {
      this.retransmitFirst = false;
      // One packet at SND.UNA (fast retransmit, partial ACK, RTO, window probe); 1 byte into a zero window.
      const outstanding = this.snd.tx.length + (this.snd.finSeq !== null ? 1 : 0);
      const wnd = this.snd.window();
      const mss = Math.max(1, this.snd.mss - optLen);
      // Up to the first SACKed range, unless the peer claims to hold SND.UNA itself (RFC 2018 §8: resend anyway).
      const sackedAt = this.snd.sacked.nextSackedStart(0);
      const n = Math.min(this.snd.tx.length, mss, Math.max(wnd, 1), sackedAt > 0 ? sackedAt : Infinity);
      if (outstanding > 0) {
        const fin = this.snd.finSeq !== null && n === this.snd.tx.length && (wnd > 0 || n === 0);
        emit(this.segment(this.snd.una, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (n > 0 && n === this.snd.tx.length ? TcpFlags.PSH : 0), this.snd.tx.peek(0, n, WRAPPED)), mss);
        const end = seqAdd(this.snd.una, n + (fin ? 1 : 0));
        if (seqLt(this.snd.nxt, end)) this.snd.nxt = end;
        if (seqLt(this.snd.max, end)) this.snd.max = end;
        else this.stats.retransmits++;
        if (this.cc.recovery === Recovery.SACK) this.rec.sent(0, n, fin); // RFC 6675 (4.3): HighRxt
        if (this.rtoDeadline === null) this.rtoDeadline = nowMs + this.rtt.rto;
        sent = sentData = true;
      }
    }
    this.retransmitFirst = false;
    if (this.tlp.owed) {
      this.tlp.owed = false;
      if (sendsData(this.st) && this.sendProbe(nowMs, optLen, emit)) sent = true;
    }

    // Bounded: every segment moves SND.NXT or HighRxt forward by at least one sequence number.
    for (let next = this.nextSegment(optLen); next !== null; next = this.nextSegment(optLen)) {
      const { offset, len, fin, packetLen, hole } = next;
      const seq = seqAdd(this.snd.una, offset);
      const isNew = !seqLt(seq, this.snd.max);
      emit(this.segment(seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (len > 0 && offset + len === this.snd.tx.length ? TcpFlags.PSH : 0), this.snd.tx.peek(offset, len, WRAPPED)), packetLen);
      const end = seqAdd(seq, len + (fin ? 1 : 0));
      // Karn: only first transmissions are timed, and none during recovery (their ACKs wait behind the holes).
      if (seqGt(end, this.snd.max) && !this.rtt.timing && this.cc.recovery === Recovery.NONE) this.startSample(seq, len, fin, packetLen, nowMs);
      if (!isNew) this.stats.retransmits++;
      if (hole) this.rec.sent(offset, len, fin);
      else this.snd.nxt = end;
      if (seqGt(end, this.snd.max)) this.snd.max = end;
      if (this.rtoDeadline === null) this.rtoDeadline = nowMs + this.rtt.rto; // RFC 6298 §5.1
      sent = sentData = true;
    }

    // RFC 8985 §7.2: restarted by new data (in SACK recovery by any data: it watches the resends).
    if (sentData) {
      this.sentFlight = this.snd.flight();
      this.tlp.arm(nowMs, sendsData(this.st), this.rtoDeadline);
    }
    // Persist timer: data waiting behind a zero window and nothing in flight → probe on the RTO backoff.
    if (this.rtoDeadline === null && this.persistDue()) {
      this.rtoDeadline = nowMs + this.rtt.rto;
    }
    if (this.ackPending && !sent) emit(this.segment(this.snd.nxt, TcpFlags.ACK, NO_DATA), this.snd.mss);
    this.ackPending = false;
  }

  private runTimers(nowMs: number): void {
    if (this.timeWaitDeadline !== null && nowMs >= this.timeWaitDeadline) {
      this.enterClosed();
      return;
    }
    if (this.tlp.deadline !== null && nowMs >= this.tlp.deadline && this.tlp.fire(sendsData(this.st))) {
      this.cc.startRecovery(this.snd.max, this.flightSize(), true);
      this.recoveryStarted();
    }
    if (this.rtoDeadline === null || nowMs < this.rtoDeadline) return;
    this.tlp.cancel();
    this.rec.reset();
    this.sentFlight = 0;
    const probing = this.snd.una === this.snd.max; // persist timer: nothing in flight
    if (!probing && ++this.retries > this.cfg.maxRetries) {
      this.reset(); // RFC 9293 §3.8.3 R2: give up
      return;
    }
    this.stats.timeouts++;
    if (this.st === TcpState.SYN_RECEIVED) {
      this.synAckPending = true;
    } else {
      if (!probing) {
        // RFC 5681 §3.1 (4): loss window, go-back-N from SND.UNA; ssthresh halves only on the first timeout.
        // RFC 6675 §5.1: the resend skips what the peer SACKed — unless this is a repeated timeout, when the peer
        // may have reneged (RFC 2018 §8) and the scoreboard is forgotten.
        this.cc.timeout(this.retries === 1, this.snd.una, this.snd.max);
        if (this.retries > 1) this.snd.sacked.clear();
        this.snd.nxt = this.snd.una;
      }
      this.retransmitFirst = true;
    }
    this.rtt.backoff(); // Karn's rule, then RFC 6298 §5.5
    this.rtoDeadline = nowMs + this.rtt.rto;
  }

  /**
   * Times the first packet of the segment that goes out for the first time (seq ≥ SND.MAX), cut as the kernel cuts
   * an offloaded segment: an offloaded segment then samples exactly as the same packets sent one by one.
   */
  private startSample(seq: number, len: number, fin: boolean, packetLen: number, nowMs: number): void {
    const before = seqSub(this.snd.max, seq);
    const first = before > 0 ? Math.ceil(before / packetLen) * packetLen : 0;
    if (first >= len && !(len === 0 && first === 0)) return; // only data already sent, or the FIN behind it
    const pieceEnd = Math.min(first + packetLen, len);
    this.rtt.startSample(seqAdd(seq, pieceEnd + (fin && pieceEnd === len ? 1 : 0)), nowMs);
  }

  /** RFC 8985 §7.3: the owed probe, outside cwnd; then the RTO restarts. Returns whether a segment went out. */
  private sendProbe(nowMs: number, optLen: number, emit: SegmentSink): boolean {
    const mss = Math.max(1, this.snd.mss - optLen);
    const p = this.tlp.choose(mss);
    if (p === null) return false;
    const { offset, len, fin } = p;
    const seq = seqAdd(this.snd.una, offset);
    const txLen = this.snd.tx.length;
    emit(this.segment(seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (len > 0 && offset + len === txLen ? TcpFlags.PSH : 0), this.snd.tx.peek(offset, len, WRAPPED)), mss);
    if (this.tlp.sent(seq, seqAdd(seq, len + (fin ? 1 : 0)))) this.stats.retransmits++;
    this.stats.probes++;
    this.rtoDeadline = nowMs + this.rtt.rto;
    return true;
  }

  /**
   * The next data segment the windows allow, if this state sends data. Outside SACK recovery: new data, or the
   * go-back-N resend after an RTO, with FlightSize less what the peer SACKed against cwnd. In SACK recovery, RFC
   * 6675 NextSeg while cwnd − pipe ≥ 1 SMSS: resends found lost again, (1) a lost hole above HighRxt, (2) new
   * data, (4) any other hole below the highest SACKed octet — each hole one packet at a time (recovery.ts).
   */
  private nextSegment(optLen: number): Outgoing | null {
    if (!sendsData(this.st)) return null;
    const snd = this.snd;
    const sb = snd.sacked;
    if (this.cc.recovery !== Recovery.SACK) {
      const off = seqSub(snd.nxt, snd.una);
      const n = snd.next(this.cc.cwnd - off + sb.sackedBelow(off), optLen);
      return n === null ? null : { ...n, hole: false };
    }
    const mss = Math.max(1, snd.mss - optLen);
    const lossEdge = this.rec.lossEdge();
    const room = this.cc.cwnd - this.rec.pipe(lossEdge);
    if (room < mss) return null;
    const lost = this.rec.lostHole(lossEdge, mss);
    if (lost !== null) return { ...lost, packetLen: mss, hole: true };
    const n = snd.next(room, optLen);
    if (n !== null) return { ...n, hole: false };
    const any = this.rec.anyHole(mss);
    return any === null ? null : { ...any, packetLen: mss, hole: true };
  }

  private persistDue(): boolean {
    return sendsData(this.st) && this.snd.window() === 0 && this.snd.una === this.snd.max && this.snd.unsentLen() > 0;
  }

  private canQueueSend(): boolean {
    if (this.snd.finSeq !== null) return false;
    return this.st === TcpState.SYN_PENDING || this.st === TcpState.SYN_RECEIVED || this.st === TcpState.ESTABLISHED || this.st === TcpState.CLOSE_WAIT;
  }

  private segment(seq: number, flags: number, payload: Uint8Array, ack: number = this.rcv.nxt, window?: number): TcpRepr {
    const hasAck = (flags & TcpFlags.ACK) !== 0;
    const rst = (flags & TcpFlags.RST) !== 0;
    return TcpRepr.plain({
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq,
      ack: hasAck ? ack : 0,
      flags,
      window: window ?? (rst ? 0 : this.rcv.advertise((flags & TcpFlags.SYN) !== 0)),
      sackRanges: rst ? [] : this.rcv.sackBlocks(),
      payload,
    });
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
    this.ackPending = this.synAckPending = this.retransmitFirst = this.tlp.owed = false;
    this.tlp.cancel();
  }
}
