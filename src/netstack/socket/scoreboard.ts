// The sender's SACK scoreboard (RFC 6675 §3, fed by the peer's RFC 2018 SACK blocks): which ranges above SND.UNA
// the peer holds, plus the loss-recovery queries of RFC 6675 §4 (IsLost, the holes NextSeg walks, the octets
// SetPipe counts). Offsets count from SND.UNA, like the send buffer (offset 0 = tx[0]); `advance(n)` re-bases on a
// cumulative ACK. Invariants: ranges sorted, non-empty, disjoint, non-adjacent, all within (0, flight]; at most
// MAX_RANGES of them (dropping a range only forgets information: the data is then resent, never lost).
//
//   offset 0 (SND.UNA)                                         flight (SND.MAX)
//   |--hole--|#### SACKed ####|--hole--|## SACKed ##|--not yet SACKed--|
//   lossEdge(): unSACKed octets below it are lost (IsLost: DupThresh ranges or > (DupThresh−1)·SMSS SACKed above)

import { seqSub, type SackRange } from '../wire/index';

/** RFC 6675 §2 DupThresh. */
export const DUP_THRESH = 3;
const MAX_RANGES = 64;

export class Scoreboard {
  private starts: number[] = [];
  private ends: number[] = [];
  private total = 0;

  get isEmpty(): boolean { return this.starts.length === 0; }
  /** Octets SACKed above SND.UNA. */
  get sacked(): number { return this.total; }
  /** One past the highest SACKed offset (0 when nothing is SACKed). */
  get highEnd(): number { return this.ends.length > 0 ? this.ends[this.ends.length - 1] : 0; }

  /**
   * Records the peer's SACK blocks for a send space at `una` with `flight` sequence numbers outstanding. Blocks
   * that start at or below SND.UNA (D-SACK, RFC 2883, or stale) or end beyond SND.MAX are ignored (RFC 2018 §3
   * blocks describe data above the cumulative ACK that was sent). Returns how many octets were newly SACKed.
   */
  update(blocks: readonly SackRange[], una: number, flight: number): number {
    const before = this.total;
    for (const [left, right] of blocks) {
      const start = seqSub(left, una);
      const end = seqSub(right, una);
      if (start <= 0 || end <= start || end > flight) continue;
      this.add(start, end);
    }
    return this.total - before;
  }

  private add(start: number, end: number): void {
    let i = 0;
    while (i < this.starts.length && this.ends[i] < start) i++;
    let j = i;
    let covered = 0;
    while (j < this.starts.length && this.starts[j] <= end) {
      start = Math.min(start, this.starts[j]);
      end = Math.max(end, this.ends[j]);
      covered += this.ends[j] - this.starts[j];
      j++;
    }
    this.starts.splice(i, j - i, start);
    this.ends.splice(i, j - i, end);
    this.total += end - start - covered;
    if (this.starts.length > MAX_RANGES) {
      // Forget the lowest range: the least recent information, and its octets will simply be resent.
      this.total -= this.ends[0] - this.starts[0];
      this.starts.shift();
      this.ends.shift();
    }
  }

  /** SND.UNA advanced by `n`: ranges (and parts) below it go, the rest is re-based. */
  advance(n: number): void {
    if (n <= 0 || this.starts.length === 0) return;
    let k = 0;
    while (k < this.starts.length && this.ends[k] <= n) {
      this.total -= this.ends[k] - this.starts[k];
      k++;
    }
    if (k > 0) {
      this.starts.splice(0, k);
      this.ends.splice(0, k);
    }
    for (let i = 0; i < this.starts.length; i++) {
      if (this.starts[i] < n) { this.total -= n - this.starts[i]; this.starts[i] = n; }
      this.starts[i] -= n;
      this.ends[i] -= n;
    }
    // A range now starting at offset 0 would mean the cumulative ACK stopped inside SACKed data: keep it (it is
    // what the peer said), the socket always resends offset 0 after a timeout (RFC 2018 §8).
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
    this.total = 0;
  }

  /** Is `off` inside a SACKed range? Returns that range's end, else -1. */
  sackedEnd(off: number): number {
    for (let i = 0; i < this.starts.length && this.starts[i] <= off; i++) if (off < this.ends[i]) return this.ends[i];
    return -1;
  }

  /** Start of the first SACKed range at or above `off` (Infinity when none). */
  nextSackedStart(off: number): number {
    for (let i = 0; i < this.starts.length; i++) if (this.ends[i] > off) return Math.max(this.starts[i], off);
    return Infinity;
  }

  /** SACKed octets below `off`. */
  sackedBelow(off: number): number {
    let n = 0;
    for (let i = 0; i < this.starts.length && this.starts[i] < off; i++) n += Math.min(this.ends[i], off) - this.starts[i];
    return n;
  }

  /** UnSACKed octets in [0, off). */
  unsackedBelow(off: number): number {
    return off <= 0 ? 0 : off - this.sackedBelow(off);
  }

  /**
   * RFC 6675 IsLost as an edge: every unSACKed octet below the returned offset has DupThresh SACKed ranges or more
   * than (DupThresh − 1)·SMSS SACKed octets above it, so it is deemed lost; none at or above it is.
   */
  lossEdge(mss: number): number {
    let bytes = 0;
    for (let i = this.starts.length - 1, k = 1; i >= 0; i--, k++) {
      bytes += this.ends[i] - this.starts[i];
      if (k >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss) return this.starts[i];
    }
    return 0;
  }

  /** The first unSACKed run [start, end) with from ≤ start < limit, end clipped to `limit`; null when none. */
  hole(from: number, limit: number): [start: number, end: number] | null {
    let start = Math.max(from, 0);
    for (let i = 0; i < this.starts.length; i++) {
      if (this.ends[i] <= start) continue;
      if (this.starts[i] <= start) { start = this.ends[i]; continue; }
      return start < limit ? [start, Math.min(this.starts[i], limit)] : null;
    }
    return start < limit ? [start, limit] : null;
  }

  /** The ranges as [start, end) offsets (tests). */
  ranges(): Array<[number, number]> {
    return this.starts.map((s, k) => [s, this.ends[k]]);
  }
}
