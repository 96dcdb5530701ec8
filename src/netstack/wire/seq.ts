// TCP sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4): a < b means "b is less than 2^31 ahead of a".
// Sequence numbers are plain JS numbers held as unsigned 32-bit integers (0 … 0xffffffff); every helper returns
// values in that range (seqSub excepted, which returns a signed distance). Pure functions, no allocation.

/** Signed distance a − b in (−2^31, 2^31]: positive when a is ahead of b. */
export function seqSub(a: number, b: number): number {
  return (a - b) | 0;
}

/** a + n mod 2^32; n may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

export function seqMax(a: number, b: number): number {
  return seqLt(a, b) ? b : a;
}

export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}

/** lo ≤ x < hi in sequence space (the window test of RFC 9293 §3.10.7.4 with hi = RCV.NXT + RCV.WND). */
export function seqInWindow(x: number, lo: number, hi: number): boolean {
  return seqLe(lo, x) && seqLt(x, hi);
}
