// Sequence-number arithmetic mod 2^32 (RFC 9293 §3.4), with values straddling the wrap at 0xffffffff.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { seqAdd, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax, seqMin, seqSub } from '../../../src/netstack/wire/index';

const NEAR_WRAP = 0xfffffff0;

describe('seq arithmetic', () => {
  it('adds across the wrap and stays unsigned', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(NEAR_WRAP, 0x20)).toBe(0x10);
    expect(seqAdd(5, -10)).toBe(0xfffffffb);
    expect(seqAdd(0, 0)).toBe(0);
  });

  it('subtracts as a signed distance across the wrap', () => {
    expect(seqSub(0x10, NEAR_WRAP)).toBe(0x20);
    expect(seqSub(NEAR_WRAP, 0x10)).toBe(-0x20);
    expect(seqSub(0, 0xffffffff)).toBe(1);
    expect(seqSub(7, 7)).toBe(0);
  });

  it('compares across the wrap', () => {
    expect(seqLt(0xffffffff, 0)).toBe(true);
    expect(seqGt(0, 0xffffffff)).toBe(true);
    expect(seqLt(NEAR_WRAP, 0x10)).toBe(true);
    expect(seqLe(0x10, 0x10)).toBe(true);
    expect(seqGe(0x10, NEAR_WRAP)).toBe(true);
    expect(seqGt(NEAR_WRAP, 0x10)).toBe(false);
    expect(seqLt(0x10, 0x10)).toBe(false);
    expect(seqMax(NEAR_WRAP, 0x10)).toBe(0x10);
    expect(seqMin(NEAR_WRAP, 0x10)).toBe(NEAR_WRAP);
  });

  it('window test lo ≤ x < hi holds across the wrap', () => {
    const lo = 0xffffff00;
    const hi = seqAdd(lo, 0x200);
    expect(seqInWindow(0xffffffff, lo, hi)).toBe(true);
    expect(seqInWindow(0, lo, hi)).toBe(true);
    expect(seqInWindow(0xff, lo, hi)).toBe(true);
    expect(seqInWindow(0x100, lo, hi)).toBe(false);
    expect(seqInWindow(0xfffffeff, lo, hi)).toBe(false);
  });

  it('fast-check: a + d is ahead of a for 0 < d < 2^31, and seqSub inverts seqAdd', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const d = fc.integer({ min: 1, max: 0x7fffffff });
    fc.assert(fc.property(u32, d, (a, n) => {
      const b = seqAdd(a, n);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThanOrEqual(0xffffffff);
      expect(seqLt(a, b)).toBe(true);
      expect(seqGt(b, a)).toBe(true);
      expect(seqLe(a, b) && !seqGe(a, b)).toBe(true);
      expect(seqSub(b, a)).toBe(n);
      expect(seqSub(a, b)).toBe(-n);
      expect(seqAdd(b, -n)).toBe(a);
    }));
  });
});
