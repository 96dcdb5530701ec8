// truncateUtf8: hand-picked cuts at 1-, 2-, 3- and 4-byte characters, then the contract as properties (fast-check):
// the result encodes to at most `limit` bytes of valid UTF-8, is a prefix of the input, and is maximal (the next
// character would not fit).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { truncateUtf8 } from '../../src/protocol/utf8';

const encoder = new TextEncoder();
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const byteLength = (s: string) => encoder.encode(s).length;
/** UTF-16 units of the character starting at `i` (2 for a surrogate pair, else 1). */
const unitsAt = (s: string, i: number) => ((s.codePointAt(i) ?? 0) > 0xffff ? 2 : 1);

/** Any UTF-16 string, lone surrogates included (JavaScript strings can hold them). */
const anyUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 80 });
const wellFormed = fc.string({ unit: 'binary', maxLength: 80 });
const limit = fc.integer({ min: 0, max: 200 });

describe('truncateUtf8', () => {
  it('cuts before a character that does not fit, never inside it', () => {
    expect(truncateUtf8('abc', 2)).toBe('ab');
    expect(truncateUtf8('aé', 2)).toBe('a'); // é is 2 bytes
    expect(truncateUtf8('a€', 3)).toBe('a'); // € is 3 bytes
    expect(truncateUtf8('a😀', 4)).toBe('a'); // U+1F600 is 4 bytes, two UTF-16 units
    expect(truncateUtf8('a😀', 5)).toBe('a😀');
    expect(truncateUtf8('😀', 3)).toBe('');
    expect(truncateUtf8('anything', 0)).toBe('');
    expect(truncateUtf8('', 0)).toBe('');
  });

  it('a close reason of 200 euro signs keeps 41 of them (123 bytes)', () => {
    const cut = truncateUtf8('€'.repeat(200), 123);
    expect(cut).toBe('€'.repeat(41));
    expect(byteLength(cut)).toBe(123);
  });

  it('lone surrogates count as the 3 bytes TextEncoder writes for them', () => {
    expect(truncateUtf8('\ud800x', 3)).toBe('\ud800');
    expect(truncateUtf8('\udc00\ud800', 5)).toBe('\udc00');
  });

  it('well-formed input: the result is valid UTF-8 within the limit, a prefix, maximal', () => {
    fc.assert(fc.property(wellFormed, limit, (text, max) => {
      const cut = truncateUtf8(text, max);
      const bytes = encoder.encode(cut);
      expect(bytes.length).toBeLessThanOrEqual(max);
      expect(strict.decode(bytes)).toBe(cut); // valid UTF-8 that decodes back to the same text
      expect(text.startsWith(cut)).toBe(true);
      if (cut.length < text.length) {
        expect(byteLength(text.slice(0, cut.length + unitsAt(text, cut.length)))).toBeGreaterThan(max);
      }
    }));
  });

  it('any UTF-16 input: within the limit, a prefix, maximal, and no surrogate pair split', () => {
    fc.assert(fc.property(anyUnits, limit, (text, max) => {
      const cut = truncateUtf8(text, max);
      expect(byteLength(cut)).toBeLessThanOrEqual(max);
      expect(text.startsWith(cut)).toBe(true);
      if (cut.length > 0 && cut.length < text.length) {
        const split = (text.charCodeAt(cut.length - 1) & 0xfc00) === 0xd800 && (text.charCodeAt(cut.length) & 0xfc00) === 0xdc00;
        expect(split).toBe(false);
      }
      if (cut.length < text.length) {
        expect(byteLength(text.slice(0, cut.length + unitsAt(text, cut.length)))).toBeGreaterThan(max);
      }
    }));
  });

  it('agrees with encoding everything and backing up to a character start', () => {
    fc.assert(fc.property(wellFormed, limit, (text, max) => {
      const all = encoder.encode(text);
      let end = Math.min(max, all.length);
      while (end > 0 && end < all.length && (all[end] & 0xc0) === 0x80) end--;
      expect(encoder.encode(truncateUtf8(text, max))).toEqual(all.subarray(0, end));
    }));
  });

  it('a long input costs no more than the limit: a 16 MiB string cut to 123 bytes', () => {
    const long = 'é'.repeat(16 << 20);
    expect(truncateUtf8(long, 123)).toBe('é'.repeat(61));
  });
});
