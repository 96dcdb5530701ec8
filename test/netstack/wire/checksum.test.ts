// Checksum: RFC 1071 vectors, a real IPv4 header, odd lengths, large/unaligned inputs against a byte-wise reference,
// pseudo-header sums, and RFC 1624 incremental updates equal to a full recompute (fast-check).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  adjustChecksum, adjustChecksum32, addSums, finishChecksum, internetChecksum, onesSum, pseudoHeaderSum, verifyChecksum,
} from '../../../src/netstack/wire/index';
import { hex } from './helpers';

/** Reference: RFC 1071 §4.1 almost literally (16-bit words, carries folded at the end). */
function refSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** ±0 in one's complement: 0x0000 and 0xffff are the same checksum value. */
const sameOnes = (a: number, b: number) => a === b || (a === 0 && b === 0xffff) || (a === 0xffff && b === 0);

describe('onesSum / internetChecksum', () => {
  it('RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2', () => {
    expect(onesSum(hex('00 01 f2 03 f4 f5 f6 f7'))).toBe(0xddf2);
    expect(internetChecksum(hex('00 01 f2 03 f4 f5 f6 f7'))).toBe(0x220d);
  });

  it('a real IPv4 header (checksum b861) verifies, and recomputes to b861 with the field zeroed', () => {
    const h = hex('45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7');
    expect(verifyChecksum(h)).toBe(true);
    h[10] = 0;
    h[11] = 0;
    expect(internetChecksum(h)).toBe(0xb861);
  });

  it('a flipped bit is detected', () => {
    const h = hex('45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7');
    for (let bit = 0; bit < h.length * 8; bit++) {
      const c = h.slice();
      c[bit >> 3] ^= 1 << (bit & 7);
      expect(verifyChecksum(c)).toBe(false);
    }
  });

  it('odd lengths pad with a zero byte (RFC 1071 §4.1)', () => {
    expect(onesSum(hex('01'))).toBe(0x0100);
    expect(onesSum(hex('00 01 f2'))).toBe(0xf201);
    expect(onesSum(hex('ff ff ff'))).toBe(0xff00); // 0xffff + 0xff00 = 0x1feff → 0xff00
    expect(onesSum(new Uint8Array(0))).toBe(0);
  });

  it('the sum is 0 only for all-zero data; carries fold to 0xffff, never 0', () => {
    expect(onesSum(new Uint8Array(1000))).toBe(0);
    expect(onesSum(hex('ff ff 00 01 ff fe'))).toBe(0xffff);
    expect(onesSum(new Uint8Array(4096).fill(0xff))).toBe(0xffff);
  });

  it('matches the reference at every length 0…300 and every offset 0…7 (small and 32-bit paths, unaligned)', () => {
    const data = new Uint8Array(320);
    for (let i = 0; i < data.length; i++) data[i] = (i * 151 + 7) & 0xff;
    for (let off = 0; off < 8; off++) {
      for (let len = 0; len <= 300; len++) {
        expect(onesSum(data, off, len)).toBe(refSum(data.subarray(off, off + len)));
      }
    }
  });

  it('matches the reference on 64 KiB super-packets and on a 3 MiB buffer (chunked folding)', () => {
    const big = new Uint8Array(3 * 1024 * 1024 + 5);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    expect(onesSum(big, 1, 65535)).toBe(refSum(big.subarray(1, 65536)));
    expect(onesSum(big)).toBe(refSum(big));
    expect(onesSum(new Uint8Array(3 * 1024 * 1024).fill(0xff))).toBe(0xffff);
  });

  it('fast-check: equals the reference, and the initial sum adds in', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(8), fc.integer({ min: 0, max: 0xffff }), (b, off, init) => {
      const o = Math.min(off, b.length);
      const sub = b.subarray(o);
      expect(onesSum(b, o)).toBe(refSum(sub));
      expect(sameOnes(onesSum(b, o, b.length - o, init), addSums(refSum(sub), init))).toBe(true);
    }));
  });

  it('concatenation at an even boundary is the sum of sums', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 600 }), (a0, b) => {
      const a = a0.length & 1 ? a0.subarray(1) : a0;
      const ab = new Uint8Array(a.length + b.length);
      ab.set(a);
      ab.set(b, a.length);
      expect(sameOnes(onesSum(ab), addSums(onesSum(a), onesSum(b)))).toBe(true);
    }));
  });
});

describe('pseudoHeaderSum', () => {
  it('IPv4: src + dst + protocol + length', () => {
    const s = pseudoHeaderSum(hex('c0 a8 00 68'), hex('c0 a8 00 01'), 6, 40);
    expect(s).toBe(refSum(hex('c0 a8 00 68 c0 a8 00 01 00 06 00 28')));
  });

  it('IPv6: src + dst + 32-bit length + next header', () => {
    const src = hex('20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02');
    const dst = hex('20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01');
    const ph = new Uint8Array(40);
    ph.set(src);
    ph.set(dst, 16);
    new DataView(ph.buffer).setUint32(32, 0x12345);
    ph[39] = 17;
    expect(pseudoHeaderSum(src, dst, 17, 0x12345)).toBe(refSum(ph));
  });
});

describe('adjustChecksum (RFC 1624)', () => {
  it('RFC 1624 §4 example: HC 0xdd2f, m 0x5555 → 0x3285 gives 0x0000 (eqn. 3, not −0 of eqn. 2)', () => {
    expect(adjustChecksum(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
  });

  it('fast-check: editing one 16-bit word and adjusting equals recomputing the checksum', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 2, maxLength: 1500 }),
      fc.nat(), fc.integer({ min: 0, max: 0xffff }),
      (b0, pos, word) => {
        const b = b0.length & 1 ? b0.subarray(1) : b0;
        if (b.length < 2) return;
        const i = 2 * (pos % (b.length / 2));
        const before = internetChecksum(b);
        const old = (b[i] << 8) | b[i + 1];
        b[i] = word >> 8;
        b[i + 1] = word & 0xff;
        const after = internetChecksum(b);
        expect(sameOnes(adjustChecksum(before, old, word), after)).toBe(true);
      },
    ), { numRuns: 500 });
  });

  it('fast-check: a 32-bit edit (an address rewrite) inside a real-looking header', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 0, max: 0xffffffff }), (h, addr) => {
      h[10] = 0;
      h[11] = 0;
      const c0 = internetChecksum(h);
      const dv = new DataView(h.buffer, h.byteOffset);
      const old = dv.getUint32(12);
      dv.setUint32(12, addr);
      expect(sameOnes(adjustChecksum32(c0, old, addr), internetChecksum(h))).toBe(true);
    }));
  });

  it('the adjusted field still verifies', () => {
    const h = hex('45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7');
    const c = adjustChecksum32(0xb861, 0xc0a80001, 0x0a000001);
    h.set(hex('0a 00 00 01'), 12);
    h[10] = c >> 8;
    h[11] = c & 0xff;
    expect(verifyChecksum(h)).toBe(true);
    expect(finishChecksum(0xffff)).toBe(0);
  });
});
