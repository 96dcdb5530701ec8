// A FIFO of received chunks for the streaming decoders (socks5-parser, http-connect-parser).
// push() keeps the caller's chunk as is; consume(n) returns a view when the n bytes sit in one chunk and copies only
// when they span chunks, so the data path never concatenates per chunk. Invariant: chunks[0] has > offset bytes.

export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private offset = 0; // bytes of chunks[0] already consumed
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Byte at position i (0 = oldest unconsumed byte). The caller checks i < length. */
  peek(i: number): number {
    let pos = i + this.offset;
    for (const c of this.chunks) {
      if (pos < c.length) return c[pos];
      pos -= c.length;
    }
    return -1;
  }

  /** Removes and returns the next n bytes (n <= length): a view into a chunk when possible, else a copy. */
  consume(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0];
    if (first.length - this.offset >= n) {
      const view = first.subarray(this.offset, this.offset + n);
      this.skip(n);
      return view;
    }
    const out = new Uint8Array(n); // the field spans chunks: the one place we copy
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const take = Math.min(n - filled, c.length - this.offset);
      out.set(c.subarray(this.offset, this.offset + take), filled);
      filled += take;
      this.skip(take);
    }
    return out;
  }

  /** Removes and returns every queued byte (empty when nothing is queued). */
  takeAll(): Uint8Array {
    return this.consume(this.total);
  }

  private skip(n: number): void {
    this.total -= n;
    this.offset += n;
    while (this.chunks.length > 0 && this.offset >= this.chunks[0].length) {
      this.offset -= this.chunks[0].length;
      this.chunks.shift();
    }
  }
}
