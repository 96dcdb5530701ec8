// A fixed-capacity byte ring for TCP send and receive queues (smoltcp's storage::RingBuffer is the model).
// Invariants: 0 ≤ length ≤ capacity; bytes live at [head, head + length) mod storage size; no I/O, no clock.
// Besides the queue it exposes the *unallocated* region after the queued bytes, where the receive path writes
// out-of-order data at an offset before the assembler says it is contiguous (then `enqueueUnallocated`).
// Storage is allocated lazily and grows by doubling up to `capacity` (re-based to head 0 on growth), so a
// thousand idle flows cost a few KiB each instead of their full windows.
//
//   0        head                head+length          storage.length (≤ capacity)
//   |  free  |#### queued ########|~~ unallocated ~~~~|
//            ^ dequeue / peek      ^ enqueue / writeUnallocated(offset)

const EMPTY = new Uint8Array(0);
/** First allocation; small enough for idle flows, large enough that a short exchange never grows it. */
const MIN_STORAGE = 1024;

export class RingBuffer {
  private buf: Uint8Array = EMPTY;
  private readonly cap: number;
  private head = 0;
  private len = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`ring buffer capacity ${capacity}`);
    this.cap = capacity;
  }

  get capacity(): number { return this.cap; }
  get length(): number { return this.len; }
  /** Bytes that can still be enqueued (the receive window of a TCP receive buffer). */
  get free(): number { return this.cap - this.len; }
  get isEmpty(): boolean { return this.len === 0; }
  get isFull(): boolean { return this.len === this.cap; }
  /** Bytes of storage allocated so far (for memory accounting). */
  get allocated(): number { return this.buf.length; }

  /** Makes the first `n` bytes from head addressable (n ≤ capacity): doubles the storage, unwrapped at 0. */
  private reserve(n: number): void {
    const old = this.buf;
    const size = Math.min(this.cap, Math.max(n, old.length * 2, MIN_STORAGE));
    const next = new Uint8Array(size);
    if (old.length > 0) {
      next.set(old.subarray(this.head), 0);
      next.set(old.subarray(0, this.head), old.length - this.head);
    }
    this.buf = next;
    this.head = 0;
  }

  /** Copies as much of `data` as fits; returns the number of bytes taken. */
  enqueue(data: Uint8Array): number {
    const n = this.writeUnallocated(0, data);
    this.len += n;
    return n;
  }

  /**
   * Copies `data` into the unallocated region starting `offset` bytes after the queued data, clamped to the
   * capacity; returns the bytes written (0 when offset is at or past the end). The queue length is unchanged.
   */
  writeUnallocated(offset: number, data: Uint8Array): number {
    const room = this.cap - this.len - offset;
    if (room <= 0 || data.length === 0) return 0;
    const n = Math.min(room, data.length);
    if (this.len + offset + n > this.buf.length) this.reserve(this.len + offset + n);
    const cap = this.buf.length;
    let pos = this.head + this.len + offset;
    if (pos >= cap) pos -= cap;
    const first = Math.min(n, cap - pos);
    this.buf.set(data.subarray(0, first), pos);
    if (first < n) this.buf.set(data.subarray(first, n), 0);
    return n;
  }

  /** Makes `n` bytes of the unallocated region part of the queue (they were written by writeUnallocated). */
  enqueueUnallocated(n: number): void {
    if (n < 0 || n > this.free) throw new RangeError(`enqueueUnallocated(${n}) with ${this.free} free`);
    if (this.len + n > this.buf.length) this.reserve(this.len + n); // never written: zeros, as before
    this.len += n;
  }

  /** Removes and returns up to `max` bytes (a fresh copy). */
  dequeue(max: number = this.len): Uint8Array {
    const n = Math.max(0, Math.min(max, this.len));
    const out = this.peek(0, n);
    const copy = out.buffer === this.buf.buffer ? out.slice() : out;
    this.discard(n);
    return copy;
  }

  /** Removes up to dst.length bytes into `dst`; returns the count. */
  dequeueInto(dst: Uint8Array): number {
    const n = Math.min(dst.length, this.len);
    this.copyOut(0, n, dst);
    this.discard(n);
    return n;
  }

  /**
   * `len` queued bytes starting `offset` bytes after the head, clamped to what is queued. A subarray of the ring
   * when contiguous (valid until the next write), otherwise a copy — into `scratch` when it is large enough
   * (valid until the caller reuses it), else a fresh array.
   */
  peek(offset: number, len: number, scratch?: Uint8Array): Uint8Array {
    const n = Math.max(0, Math.min(len, this.len - offset));
    if (n === 0) return EMPTY;
    const cap = this.buf.length;
    let pos = this.head + offset;
    if (pos >= cap) pos -= cap;
    if (pos + n <= cap) return this.buf.subarray(pos, pos + n);
    const out = scratch !== undefined && scratch.length >= n ? scratch.subarray(0, n) : new Uint8Array(n);
    this.copyOut(offset, n, out);
    return out;
  }

  /** Drops `n` bytes from the head (acknowledged send data, or data the application read). */
  discard(n: number): void {
    if (n < 0 || n > this.len) throw new RangeError(`discard(${n}) with ${this.len} queued`);
    this.len -= n;
    // Never re-base head on empty: the unallocated region may hold out-of-order bytes written relative to it.
    if (n > 0) this.head = (this.head + n) % this.buf.length;
  }

  private copyOut(offset: number, n: number, dst: Uint8Array): void {
    if (n === 0) return;
    const cap = this.buf.length;
    let pos = this.head + offset;
    if (pos >= cap) pos -= cap;
    const first = Math.min(n, cap - pos);
    dst.set(this.buf.subarray(pos, pos + first), 0);
    if (first < n) dst.set(this.buf.subarray(0, n - first), first);
  }
}
