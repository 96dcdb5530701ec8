// Collects outgoing frames into one record so that many small frames (WINDOW_UPDATEs, 4 KiB socket reads)
// cost one AEAD call and one WebSocket message. The buffer grows geometrically up to MAX_RECORD_SIZE and a
// record is handed off once it reaches RECORD_FLUSH_THRESHOLD or when the scheduled flush runs.
// Consecutive writes to one stream extend the DATA frame that ends the record instead of adding a frame each:
// the receiver hands every DATA frame to its socket in one write() (a syscall), so 32 frames of 4 KiB (the
// Worker's socket reads) would cost 32 syscalls where one 128 KiB frame costs one.
// With `room`, every buffer keeps `head` free bytes in front of the record and `tail` after it, so the transport
// can seal the record in place (tag after it) and put its own header in front without a copy.
//
//   buf: [head][frame][frame][DATA hdr|payload........][tail]   free   |
//        0     head                                    used          capacity

import { FRAME_HEADER_SIZE, FrameType, MAX_FRAME_PAYLOAD, MAX_RECORD_SIZE, RECORD_FLUSH_THRESHOLD } from './constants';
import { encodedFrameSize, writeFrame, type Frame } from './frames';

const INITIAL_CAPACITY = 16 * 1024;
const PONG_SIZE = FRAME_HEADER_SIZE + 8;
/** Spare buffers kept for reuse by default: records sealed in place come back once the socket has written them. */
const DEFAULT_SPARES = 4;

/** Free bytes the transport wants around each record (see the diagram above). */
export interface RecordRoom {
  head: number;
  tail: number;
  /**
   * Spare buffers to keep (default 4). A transport that holds records longer (sequenced records wait for the peer's
   * acknowledgement, link/sequenced.ts) needs more in rotation, or every record would cost a fresh zeroed buffer.
   */
  spares?: number;
}

export class RecordBatch {
  private buf: Uint8Array = new Uint8Array(INITIAL_CAPACITY);
  private view = new DataView(this.buf.buffer);
  private used = 0;
  private flushScheduled = false;
  /** Offset of the DATA frame that ends the buffer (it may still grow), or -1. */
  private openDataAt = -1;
  private openDataStream = 0;
  /** Offset of the PONG frame in the record being assembled, or -1 (at most one PONG per record). */
  private pongAt = -1;

  private readonly head: number;
  private readonly tail: number;
  private readonly maxSpares: number;

  /** `spares` may be shared with another batch of the same transport (the mux's datagram batch, same room). */
  constructor(
    private readonly emit: (record: Uint8Array) => void,
    private readonly schedule: (fn: () => void) => void,
    private readonly spares: Uint8Array[] = [],
    room: RecordRoom = { head: 0, tail: 0 },
  ) {
    this.head = room.head;
    this.tail = room.tail;
    this.maxSpares = room.spares ?? DEFAULT_SPARES;
    this.used = this.head;
  }

  get pendingBytes(): number {
    return this.used - this.head;
  }

  push(frame: Frame): void {
    this.reserve(encodedFrameSize(frame));
    this.used = writeFrame(this.buf, this.used, frame);
    this.openDataAt = -1;
    this.afterWrite();
  }

  /**
   * Queues a PONG; if the record being assembled already holds one, that one is made to echo `opaque` (the newest
   * PING) instead. So a flood of PINGs costs one PONG per record we send, never one per PING.
   */
  pushPong(opaque: Uint8Array): void {
    if (this.pongAt >= 0) {
      this.buf.set(opaque.subarray(0, PONG_SIZE - FRAME_HEADER_SIZE), this.pongAt + FRAME_HEADER_SIZE);
      return;
    }
    const frame = { type: FrameType.PONG, stream: 0, opaque } as const;
    this.reserve(PONG_SIZE);
    this.pongAt = this.used;
    this.used = writeFrame(this.buf, this.used, frame);
    this.openDataAt = -1;
    this.afterWrite();
  }

  /**
   * Appends `data` as DATA for `stream` (frames of at most MAX_FRAME_PAYLOAD), extending the record's last frame
   * when it is DATA of the same stream; copies the bytes, so callers may reuse them.
   */
  pushData(stream: number, data: Uint8Array): void {
    let off = 0;
    while (off < data.length) {
      const extended = this.extendOpenData(stream, data.subarray(off));
      if (extended > 0) {
        off += extended;
        this.afterWrite();
        continue;
      }
      const n = Math.min(data.length - off, MAX_FRAME_PAYLOAD);
      this.reserve(FRAME_HEADER_SIZE + n);
      const p = this.used;
      this.view.setUint8(p, FrameType.DATA);
      this.view.setUint32(p + 1, stream);
      this.view.setUint32(p + 5, n);
      this.buf.set(data.subarray(off, off + n), p + FRAME_HEADER_SIZE);
      this.used = p + FRAME_HEADER_SIZE + n;
      this.openDataAt = p;
      this.openDataStream = stream;
      off += n;
      this.afterWrite();
    }
  }

  /** Appends as much of `data` as fits to the open DATA frame of `stream`; returns how many bytes it took. */
  private extendOpenData(stream: number, data: Uint8Array): number {
    if (this.openDataAt < 0 || this.openDataStream !== stream) return 0;
    const length = this.view.getUint32(this.openDataAt + 5);
    const n = Math.min(data.length, MAX_FRAME_PAYLOAD - length, MAX_RECORD_SIZE - this.pendingBytes);
    if (n <= 0) return 0;
    this.grow(this.used + n);
    this.buf.set(data.subarray(0, n), this.used);
    this.view.setUint32(this.openDataAt + 5, length + n);
    this.used += n;
    return n;
  }

  /** Emits whatever is buffered now. */
  flush(): void {
    if (this.used === this.head) return;
    const record = this.buf.subarray(this.head, this.used);
    // The emitted record is owned by the receiver until it hands it back through recycle() (sealing may be
    // asynchronous), so continue in a spare or a new buffer sized like the one just filled.
    const want = Math.max(INITIAL_CAPACITY, Math.min(this.buf.length, (this.used + this.tail) * 2));
    // The smallest spare that fits: a large one stays for the next large record.
    let spare = -1;
    for (let i = 0; i < this.spares.length; i++) {
      if (this.spares[i].length >= want && (spare < 0 || this.spares[i].length < this.spares[spare].length)) spare = i;
    }
    this.buf = spare >= 0 ? this.spares.splice(spare, 1)[0] : new Uint8Array(want);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.used = this.head;
    this.openDataAt = -1;
    this.pongAt = -1;
    this.emit(record);
  }

  /**
   * Gives back the memory of a record emitted earlier once nothing reads it any more (after sealing), so a
   * bulk transfer reuses a few buffers instead of allocating (and zero-filling) one per record.
   */
  recycle(record: Uint8Array): void {
    if (record.byteOffset !== this.head) return;
    const whole = new Uint8Array(record.buffer, 0, record.buffer.byteLength);
    if (
      whole.length < INITIAL_CAPACITY || whole.length > this.maxCapacity || whole.buffer === this.buf.buffer ||
      this.spares.some((b) => b.buffer === whole.buffer)
    ) {
      return;
    }
    if (this.spares.length < this.maxSpares) return void this.spares.push(whole);
    // Full: keep the larger buffers, which bulk records need (a small one is cheap to allocate).
    let smallest = 0;
    for (let i = 1; i < this.spares.length; i++) if (this.spares[i].length < this.spares[smallest].length) smallest = i;
    if (this.spares[smallest].length < whole.length) this.spares[smallest] = whole;
  }

  /** Keeps at most DEFAULT_SPARES spare buffers (the largest): the transport went quiet, memory goes back. */
  trimSpares(): void {
    if (this.spares.length <= DEFAULT_SPARES) return;
    this.spares.sort((a, b) => b.length - a.length);
    this.spares.length = DEFAULT_SPARES;
  }

  /** A buffer never needs more than a full record and the room around it. */
  private get maxCapacity(): number {
    return this.head + MAX_RECORD_SIZE + this.tail;
  }

  private reserve(n: number): void {
    if (this.pendingBytes + n > MAX_RECORD_SIZE) this.flush();
    this.grow(this.used + n);
  }

  /** Makes the buffer hold at least `size` bytes plus the tail room (at most maxCapacity), keeping what it holds. */
  private grow(size: number): void {
    size += this.tail;
    if (size <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < size) cap *= 2;
    const grown = new Uint8Array(Math.min(cap, this.maxCapacity));
    grown.set(this.buf.subarray(0, this.used));
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  private afterWrite(): void {
    if (this.pendingBytes >= RECORD_FLUSH_THRESHOLD) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }
}
