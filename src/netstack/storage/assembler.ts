// Bookkeeping for out-of-order TCP data (RFC 9293 §3.10.7.4 "segments with higher beginning sequence numbers may
// be held"): which byte ranges after the in-order point have arrived. Offsets are relative to the in-order point
// (RCV.NXT); the bytes themselves sit in the receive RingBuffer's unallocated region. Invariant: ranges are sorted,
// non-empty, non-overlapping and non-adjacent; at most `maxRanges` of them (a new hole beyond that is refused).
//
//   offset 0 (RCV.NXT)
//   |--hole--|#### range ####|--hole--|## range ##|
//   removeFront() returns the size of a range starting at 0 and re-bases the rest on its end.

export class Assembler {
  private starts: number[] = [];
  private ends: number[] = [];

  constructor(readonly maxRanges = 32) {}

  get isEmpty(): boolean { return this.starts.length === 0; }
  get rangeCount(): number { return this.starts.length; }

  /** Records [offset, offset + size). Returns false (and records nothing) if that would exceed maxRanges. */
  add(offset: number, size: number): boolean {
    if (size <= 0) return true;
    let start = offset;
    let end = offset + size;
    // Find the ranges that overlap or touch [start, end).
    let i = 0;
    while (i < this.starts.length && this.ends[i] < start) i++;
    let j = i;
    while (j < this.starts.length && this.starts[j] <= end) {
      start = Math.min(start, this.starts[j]);
      end = Math.max(end, this.ends[j]);
      j++;
    }
    const removed = j - i;
    if (removed === 0 && this.starts.length >= this.maxRanges) return false;
    this.starts.splice(i, removed, start);
    this.ends.splice(i, removed, end);
    return true;
  }

  /** If a range starts at offset 0, removes it, re-bases the others on its end and returns its size; else 0. */
  removeFront(): number {
    if (this.starts.length === 0 || this.starts[0] !== 0) return 0;
    const n = this.ends[0];
    this.starts.shift();
    this.ends.shift();
    for (let k = 0; k < this.starts.length; k++) {
      this.starts[k] -= n;
      this.ends[k] -= n;
    }
    return n;
  }

  /** The recorded ranges as [start, end) pairs, lowest first. */
  ranges(): Array<[number, number]> {
    return this.starts.map((s, k) => [s, this.ends[k]]);
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
  }
}
