// A sequenced link's bookkeeping beside SecureLink (PROTOCOL.md §2.5a): the replay queue of sent records and the
// writers' hold it drives, when to acknowledge, and the verdict on each arriving record's number. SecureLink seals,
// opens and sends; this decides what is kept, acknowledged, dropped or held.

import { ZksError } from '../errors/zks-error';
import type { Mux } from '../protocol/mux';
import { HoldReason } from './paths';
import { ACK_BYTES, ACK_DELAY_MS, AckPolicy, readSeq, ReplayQueue, Resequencer, type RecordHolder } from './sequenced';

/** Sequenced records up to this size are kept as a copy in the replay queue rather than in their batch buffer. */
export const SMALL_RECORD = 4096;

export interface SequencingHost {
  readonly mux: Mux;
  /** The sealer's next counter: every record below it was sent. */
  sentNext(): number;
  /** Ends the link (close 4001). */
  fatal(err: ZksError): void;
}

export class Sequencing {
  readonly replay: ReplayQueue;
  private readonly acks: AckPolicy;
  private readonly reseq: Resequencer;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  /** Records that arrived a second time (a resend crossed the original) and were dropped. */
  duplicatesDropped = 0;
  /** Records that overtook an earlier one (over another path) and waited for it. */
  recordsReordered = 0;

  constructor(
    budget: number,
    private readonly host: SequencingHost,
  ) {
    this.replay = new ReplayQueue(budget);
    this.acks = new AckPolicy(Math.min(budget / 4, ACK_BYTES));
    this.reseq = new Resequencer(budget);
  }

  /** A record was sent: it waits for PATH_ACK; a full replay queue stops the writers until one comes. */
  keep(seq: number, message: Uint8Array, holder: RecordHolder | null): void {
    this.replay.add(seq, message, holder);
    if (this.replay.full) this.host.mux.holdSending(true, HoldReason.REPLAY);
  }

  /** PATH_ACK(next) from the peer. */
  pathAck(next: number): void {
    if (!this.replay.ack(next, this.host.sentNext())) {
      const sent = this.host.sentNext();
      this.host.fatal(new ZksError('ZKS_ERR_SEQUENCE', `the peer acknowledged records up to ${next}, but only ${sent} were sent`));
      return;
    }
    if (!this.replay.full) this.host.mux.holdSending(false, HoldReason.REPLAY);
    if (this.replay.bytes <= SMALL_RECORD) this.host.mux.trimRecordBuffers(); // all caught up: idle memory as without
  }

  /**
   * The number in front of `message` when it is the record expected now; -1 when it was dropped (a duplicate,
   * counted), held for later (it overtook one over another path) or ended the link (a gap, an overflow).
   * `owned`: the message is ours to keep (else a held one is copied).
   */
  arrive(message: Uint8Array, expected: number, multipath: boolean, owned: boolean): number {
    const seq = readSeq(message, 0);
    switch (this.reseq.arrive(seq, expected, owned ? message : message.slice(), multipath)) {
      case 'deliver':
        return seq;
      case 'duplicate':
        this.duplicatesDropped++;
        return -1;
      case 'held':
        this.recordsReordered++;
        return -1;
      case 'gap':
        this.host.fatal(new ZksError('ZKS_ERR_SEQUENCE', `record ${seq < 0 ? '≥ 2^53' : seq} arrived where ${expected} was expected: a record is missing`));
        return -1;
      case 'overflow':
        this.host.fatal(new ZksError('ZKS_ERR_SEQUENCE', `${this.reseq.bytes} bytes of later records wait for record ${expected}: a path lost it`));
        return -1;
    }
  }

  /** The held record numbered `expected`, if it came early; taken out. */
  takeHeld(expected: number): Uint8Array | null {
    return this.reseq.take(expected);
  }

  /** A record went to the mux: acknowledge now, or arm the delayed acknowledgement. */
  delivered(seq: number, bytes: number, ackOnly: boolean): void {
    if (this.acks.record(seq, bytes, ackOnly)) return this.sendAck();
    if (!this.acks.owed || this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      if (this.acks.owed) this.sendAck();
    }, ACK_DELAY_MS);
    (this.ackTimer as { unref?: () => void }).unref?.();
  }

  private sendAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.host.mux.sendPathAck(this.acks.acking());
  }

  /** Nothing will be acknowledged or sent again: the session is over (resumption, issue 13, will keep the queue). */
  stop(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.replay.clear();
    this.reseq.clear();
  }
}
