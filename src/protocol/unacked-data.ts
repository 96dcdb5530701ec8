// DATA a session has sent that its peer has not yet proven read, and the limit on it (docs/PROTOCOL.md §6). A PING
// goes out behind the data; only its PONG — which the peer can send only after reading everything before it —
// counts those bytes as read. Two users of one mechanism: the Worker's memory policy (a fixed maxUnackedBytes and
// an isolate-wide shared budget: workerd's WebSocket has no bufferedAmount) and pacing by delay (delay-pacer.ts),
// which keeps the link's queue short while datagrams flow. The mux sends the PINGs and pauses its writers; this
// decides when. Pure: the clock is injected.

import { DatagramActivity, DelayPacer } from './delay-pacer';

/** How long after the last datagram or echo frame the link stays paced (paceByDelay). */
export const PACE_AFTER_DATAGRAM_MS = 5_000;

/** A limit on unacknowledged DATA shared by several sessions (the Worker: one isolate). */
export interface SharedSendBudget {
  /** True while the sessions hold the whole budget: none of them may send. */
  readonly exhausted: boolean;
  take(n: number): void;
  give(n: number): void;
  /** `poke` runs (maybe later) whenever the budget becomes exhausted or available again; returns the way to unsubscribe. */
  subscribe(poke: () => void): () => void;
}

export interface UnackedLimits {
  maxUnackedBytes?: number;
  sharedBudget?: SharedSendBudget;
  paceByDelay?: boolean;
  datagramActivity?: DatagramActivity;
  now: () => number;
}

/** verdict() bits: put a PING behind the data (unless one is out); hold the writers back. */
export const SEND_PING = 1;
export const SEND_PAUSE = 2;

export class UnackedData {
  /** Whether unacknowledged DATA is limited at all (maxUnackedBytes or paceByDelay): else nothing is counted. */
  readonly limited: boolean;
  private sent = 0;
  private acked = 0;
  /** `sent` when the outstanding PING left, and what was unacknowledged in front of it. */
  private pingMark = 0;
  private pingAhead = 0;
  /** The limit held writers back since the last PONG (the pacer grows it only then). */
  private boundSincePong = false;
  private readonly fixed: number;
  private readonly pacer: DelayPacer | null;
  /** When a datagram or echo frame last went either way, here or on a link sharing our queues. */
  private readonly activity: DatagramActivity;

  constructor(private readonly opts: UnackedLimits) {
    this.fixed = opts.maxUnackedBytes || Infinity;
    this.pacer = opts.paceByDelay ? new DelayPacer() : null;
    this.activity = opts.datagramActivity ?? new DatagramActivity();
    this.limited = this.fixed !== Infinity || this.pacer !== null;
  }

  get bytes(): number {
    return this.sent - this.acked;
  }

  datagramSeen(): void {
    this.activity.lastAt = this.opts.now();
  }

  /** `n` DATA bytes went into the batch (call only when `limited`). */
  add(n: number): void {
    this.sent += n;
    this.opts.sharedBudget?.take(n);
  }

  pingSent(): void {
    this.pingMark = this.sent;
    this.pingAhead = this.sent - this.acked;
  }

  /** The outstanding PING's PONG: what was sent before it is read; its RTT feeds the pacer while it paces. */
  pongReceived(rttMs: number, pingSentAt: number, now: number, writersPaused: boolean): void {
    if (this.pingMark > this.acked) {
      this.opts.sharedBudget?.give(this.pingMark - this.acked);
      this.acked = this.pingMark;
    }
    if (this.pacer && this.pacing(now)) {
      this.pacer.sample(rttMs, pingSentAt, now, this.boundSincePong, this.pingAhead);
      this.boundSincePong = writersPaused;
    }
  }

  /** SEND_PING / SEND_PAUSE bits for now; 0: writers may go on, no PING needed. */
  verdict(): number {
    const max = this.pacing(this.opts.now()) ? Math.min(this.fixed, this.pacer!.limit) : this.fixed;
    if (max === Infinity && !this.opts.sharedBudget) return 0; // paceByDelay alone, between datagrams
    const unacked = this.sent - this.acked;
    const budgetOut = this.opts.sharedBudget?.exhausted ?? false;
    // While a shared budget is out, every session holding part of it keeps a PING out: only PONGs give it back.
    let v = unacked >= max >>> 2 || (budgetOut && unacked > 0) ? SEND_PING : 0;
    if (unacked >= max || budgetOut) {
      v |= SEND_PAUSE;
      this.boundSincePong = true;
    }
    return v;
  }

  /** The session ended: the runtime drops what was queued, so the shared budget gets it all back. */
  release(): void {
    this.opts.sharedBudget?.give(this.sent - this.acked);
    this.acked = this.sent;
  }

  /**
   * The transport is gone for now, the session kept for a resume (relay-worker/direct-session.ts): what it had
   * queued went with it, so the shared budget gets it back; a PONG to a PING sent before acknowledges nothing more.
   */
  transportLost(): void {
    this.release();
    this.pingMark = this.sent;
  }

  /**
   * The pacer's cap applies while datagrams or echoes flow (in the last PACE_AFTER_DATAGRAM_MS): it trades bulk
   * throughput for their latency, which buys nothing when nobody waits behind the bulk.
   */
  private pacing(now: number): boolean {
    return this.pacer !== null && now - this.activity.lastAt < PACE_AFTER_DATAGRAM_MS;
  }
}
