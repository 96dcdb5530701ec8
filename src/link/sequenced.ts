// Sequenced records (docs/PROTOCOL.md §2.5a), the parts SecureLink needs that are not crypto: the 8-byte
// sequence header, the replay queue that keeps every sent record until the peer's PATH_ACK covers it (bounded by
// a byte budget: when it is full, streams stop being writable), and when the receiver acknowledges. Pure: no
// timers, no I/O. The queue is what a second path (issue 11) or a resumed session (issue 13) sends again.

import { readU64BE, writeU64BE } from '../crypto/bytes';

/** Bytes of the clear sequence number in front of every sequenced record. */
export const SEQ_HEADER_SIZE = 8;
/** Sent and not yet acknowledged bytes per session before streams stop being writable. */
export const DEFAULT_REPLAY_BUDGET = 8 * 1024 * 1024;
/**
 * A receiver acknowledges at once after this many bytes since its last PATH_ACK: few enough records are then held
 * that the sender's batch reuses its spare buffers (protocol/batch.ts) instead of allocating one per record.
 */
export const ACK_BYTES = 512 * 1024;
/** A receiver acknowledges at the latest this long after a record arrived that was not acknowledged yet. */
export const ACK_DELAY_MS = 20;
/** Sequence numbers are JavaScript numbers, exact up to 2^53 (the record counter's own limit, §2.5). */
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Writes the sequence header (u64 big endian) at `off`. */
export function writeSeq(buf: Uint8Array, off: number, seq: number): void {
  writeU64BE(buf, off, seq);
}

/** The sequence number at `off`, or -1 when it exceeds 2^53 - 1 (no sender can have reached it). */
export function readSeq(buf: Uint8Array, off: number): number {
  const seq = readU64BE(buf, off);
  return seq > MAX_SEQ ? -1 : seq;
}

/** Who else uses a record's buffer: the queue holds one reference until the record is acknowledged. */
export interface RecordHolder {
  retain(): void;
  release(): void;
}

export interface Sent {
  seq: number;
  message: Uint8Array;
  /** Released once the record is acknowledged (or the queue is dropped): its buffer may be reused. */
  holder: RecordHolder | null;
}

/** Sent records, oldest first, until acknowledged. */
export class ReplayQueue {
  private entries: Sent[] = [];
  private head = 0;
  /** Bytes of the records held. */
  bytes = 0;
  /** The highest PATH_ACK seen: every record below it has arrived. */
  acked = 0;

  constructor(readonly budget = DEFAULT_REPLAY_BUDGET) {}

  get full(): boolean {
    return this.bytes >= this.budget;
  }

  get length(): number {
    return this.entries.length - this.head;
  }

  /** A record just sent, in sequence order. */
  add(seq: number, message: Uint8Array, holder: RecordHolder | null = null): void {
    this.entries.push({ seq, message, holder });
    this.bytes += message.length;
  }

  /**
   * PATH_ACK(next): the peer has every record below `next`. Returns false for an acknowledgement of a record never
   * sent (`next` > `sentNext`, the sealer's next sequence number): the peer is broken or lying. An older one is ignored.
   */
  ack(next: number, sentNext: number): boolean {
    if (next > sentNext) return false;
    if (next <= this.acked) return true;
    this.acked = next;
    while (this.head < this.entries.length && this.entries[this.head].seq < next) {
      const e = this.entries[this.head++];
      this.bytes -= e.message.length;
      e.holder?.release();
    }
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /** The records not yet acknowledged, oldest first (what another path or a resumed session sends again). */
  unacknowledged(): Sent[] {
    return this.entries.slice(this.head);
  }

  /** The session is gone: nothing will be sent again; buffers are released. */
  clear(): void {
    for (let i = this.head; i < this.entries.length; i++) this.entries[i].holder?.release();
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
  }
}

/**
 * When to send PATH_ACK: at once after ACK_BYTES (at most a quarter of the budget, so a sender never stalls on a
 * full queue while the receiver keeps up) arrived since the last one, else ACK_DELAY_MS after the first unacknowledged
 * record. A record that carries nothing but a PATH_ACK is never acknowledged by itself (as TCP never ACKs a pure
 * ACK), so two idle peers do not trade acknowledgements forever; the next acknowledgement covers it anyway.
 */
export class AckPolicy {
  private bytesSinceAck = 0;
  /** Records up to here were delivered (the next expected sequence number). */
  delivered = 0;
  /** The `next` of the last PATH_ACK sent. */
  sent = 0;
  /** A record arrived that asks for an acknowledgement and none has been sent since. */
  owed = false;

  constructor(private readonly ackBytes = ACK_BYTES) {}

  /** A record was delivered; true: send PATH_ACK(this.delivered) now, else arm the delay if `owed`. */
  record(seq: number, bytes: number, ackOnly: boolean): boolean {
    this.delivered = seq + 1;
    this.bytesSinceAck += bytes;
    if (!ackOnly) this.owed = true;
    return this.owed && this.bytesSinceAck >= this.ackBytes;
  }

  /** PATH_ACK(this.delivered) is being sent. */
  acking(): number {
    this.sent = this.delivered;
    this.bytesSinceAck = 0;
    this.owed = false;
    return this.sent;
  }
}

export type Arrival = 'deliver' | 'duplicate' | 'held' | 'gap' | 'overflow';

/**
 * Orders records that came over several paths (docs/design/paths.md §3): the expected one is delivered, an older one
 * is a duplicate, a later one waits here — but only while more than one path is up (on one ordered path a later
 * record means one is lost: a gap) and only up to `limit` bytes (beyond it a path has lost records for good).
 */
export class Resequencer {
  private readonly waiting = new Map<number, Uint8Array>();
  bytes = 0;

  constructor(private readonly limit = DEFAULT_REPLAY_BUDGET) {}

  get size(): number {
    return this.waiting.size;
  }

  arrive(seq: number, expected: number, message: Uint8Array, multipath: boolean): Arrival {
    if (seq === expected) return 'deliver';
    if (seq >= 0 && seq < expected) return 'duplicate';
    if (seq < 0 || !multipath) return 'gap';
    if (this.waiting.has(seq)) return 'duplicate';
    if (this.bytes + message.length > this.limit) return 'overflow';
    this.waiting.set(seq, message);
    this.bytes += message.length;
    return 'held';
  }

  /** The waiting record `expected`, taken out, or null. */
  take(expected: number): Uint8Array | null {
    const message = this.waiting.get(expected);
    if (!message) return null;
    this.waiting.delete(expected);
    this.bytes -= message.length;
    return message;
  }

  clear(): void {
    this.waiting.clear();
    this.bytes = 0;
  }
}
