// Output memory for the interface: packets are carved one after another out of one reusable chunk instead of a
// fresh (zeroed, garbage-collected) buffer each. A round ends when the caller has written every packet of it
// (the TUN write is synchronous): `reset()` makes the chunk reusable. A round that outgrows the chunk gets a larger
// one; packets already handed out keep the old chunk alive, so nothing handed out in a round is ever overwritten
// within it. Callers write every byte of what alloc returns (contents are stale).

const MIN_CHUNK = 256 * 1024;
const MAX_CHUNK = 16 * 1024 * 1024;

export class PacketArena {
  private chunk = new Uint8Array(0);
  private used = 0;

  /** Bytes currently reserved for output. */
  get size(): number { return this.chunk.length; }

  /** A region of `n` bytes, valid until the next reset(). */
  alloc(n: number): Uint8Array {
    if (this.used + n > this.chunk.length) {
      // Outgrown: a new chunk (the old one lives on in the packets already handed out this round).
      this.chunk = new Uint8Array(Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, 2 * this.chunk.length, n)));
      if (n > this.chunk.length) return new Uint8Array(n);
      this.used = 0;
    }
    const out = this.chunk.subarray(this.used, this.used + n);
    this.used += (n + 7) & ~7; // 8-byte aligned starts for the checksum's 32-bit reads
    return out;
  }

  /** Every packet handed out so far has been consumed: their memory may be reused. */
  reset(): void {
    this.used = 0;
  }
}
