// Collects outgoing frames into one record so that many small frames (WINDOW_UPDATEs, 4 KiB socket reads)
// cost one AEAD call and one WebSocket message. The buffer grows geometrically up to MAX_RECORD_SIZE and a
// record is handed off once it reaches RECORD_FLUSH_THRESHOLD or when the scheduled flush runs.
//
//   buf: [frame][frame][DATA hdr|payload........]      free      |
//        0                                       used          capacity

import { FRAME_HEADER_SIZE, FrameType, MAX_FRAME_PAYLOAD, MAX_RECORD_SIZE, RECORD_FLUSH_THRESHOLD } from './constants';
import { encodedFrameSize, writeFrame, type Frame } from './frames';

const INITIAL_CAPACITY = 16 * 1024;
/** Spare buffers kept for reuse; sealing is pipelined a few records deep at most. */
const MAX_SPARES = 4;

export class RecordBatch {
  private buf: Uint8Array = new Uint8Array(INITIAL_CAPACITY);
  private view = new DataView(this.buf.buffer);
  private used = 0;
  private flushScheduled = false;
  private readonly spares: Uint8Array[] = [];

  constructor(
    private readonly emit: (record: Uint8Array) => void,
    private readonly schedule: (fn: () => void) => void,
  ) {}

  get pendingBytes(): number {
    return this.used;
  }

  push(frame: Frame): void {
    this.reserve(encodedFrameSize(frame));
    this.used = writeFrame(this.buf, this.used, frame);
    this.afterWrite();
  }

  /** Appends DATA frames for `data` (split at MAX_FRAME_PAYLOAD); copies the bytes, so callers may reuse them. */
  pushData(stream: number, data: Uint8Array): void {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, MAX_FRAME_PAYLOAD);
      this.reserve(FRAME_HEADER_SIZE + n);
      const p = this.used;
      this.view.setUint8(p, FrameType.DATA);
      this.view.setUint32(p + 1, stream);
      this.view.setUint32(p + 5, n);
      this.buf.set(data.subarray(off, off + n), p + FRAME_HEADER_SIZE);
      this.used = p + FRAME_HEADER_SIZE + n;
      off += n;
      this.afterWrite();
    }
  }

  /** Emits whatever is buffered now. */
  flush(): void {
    if (this.used === 0) return;
    const record = this.buf.subarray(0, this.used);
    // The emitted record is owned by the receiver until it hands it back through recycle() (sealing may be
    // asynchronous), so continue in a spare or a new buffer sized like the one just filled.
    const want = Math.max(INITIAL_CAPACITY, Math.min(this.buf.length, this.used * 2));
    const spare = this.spares.findIndex((b) => b.length >= want);
    this.buf = spare >= 0 ? this.spares.splice(spare, 1)[0] : new Uint8Array(want);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.used = 0;
    this.emit(record);
  }

  /**
   * Gives back the memory of a record emitted earlier once nothing reads it any more (after sealing), so a
   * bulk transfer reuses a few buffers instead of allocating (and zero-filling) one per record.
   */
  recycle(record: Uint8Array): void {
    if (this.spares.length >= MAX_SPARES || record.byteOffset !== 0) return;
    const whole = new Uint8Array(record.buffer, 0, record.buffer.byteLength);
    if (whole.length >= INITIAL_CAPACITY && whole.length <= MAX_RECORD_SIZE && whole.buffer !== this.buf.buffer) this.spares.push(whole);
  }

  private reserve(n: number): void {
    if (this.used + n > MAX_RECORD_SIZE) this.flush();
    if (this.used + n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < this.used + n) cap *= 2;
    const grown = new Uint8Array(Math.min(cap, MAX_RECORD_SIZE));
    grown.set(this.buf.subarray(0, this.used));
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  private afterWrite(): void {
    if (this.used >= RECORD_FLUSH_THRESHOLD) {
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
