// The datapath addon (src/native/addon/datapath.cc) against node:crypto: records sealed in place are byte for byte
// what node:crypto seals, open back to the plaintext, and any tampered byte is refused with the region wiped; bad
// regions and misuse throw instead of touching memory. Under CI the addon must be built (no silent fallback).
import fc from 'fast-check';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createInPlaceAead, inPlaceAeadAvailable, tuneMallocForThroughput, type DatapathSuite } from '../../src/native/datapath';
import { nodeCrypto } from '../../src/crypto/node';

const SUITES: DatapathSuite[] = ['aes-256-gcm', 'chacha20-poly1305'];
const available = inPlaceAeadAvailable();

function reference(suite: DatapathSuite, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Buffer {
  const c = createCipheriv(suite as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  const body = c.update(plaintext);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

it('is built here (CI fails loudly instead of measuring the fallback)', () => {
  if (process.env.CI) expect(available).toBe(true);
});

describe.skipIf(!available)('in-place AEAD', () => {
  it('seals exactly as node:crypto does and opens back, at any offset (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SUITES), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 3000 }), fc.nat(40), fc.nat(40),
        (suite, key, nonce, plaintext, head, extra) => {
          const buf = new Uint8Array(head + plaintext.length + 16 + extra).fill(0xee);
          buf.set(plaintext, head);
          createInPlaceAead(suite, key, true)!.seal(nonce, buf, head, plaintext.length);
          expect(Buffer.from(buf.subarray(head, head + plaintext.length + 16))).toEqual(reference(suite, key, nonce, plaintext));
          expect(buf.subarray(0, head).every((b) => b === 0xee) && buf.subarray(head + plaintext.length + 16).every((b) => b === 0xee)).toBe(true);
          expect(createInPlaceAead(suite, key, false)!.open(nonce, buf, head, plaintext.length + 16)).toBe(true);
          expect(Buffer.from(buf.subarray(head, head + plaintext.length))).toEqual(Buffer.from(plaintext));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a record with any one bit flipped (body, tag, nonce) and wipes the region', () => {
    for (const suite of SUITES) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const plain = randomBytes(1000);
      const sealed = reference(suite, key, nonce, plain);
      const opener = createInPlaceAead(suite, key, false)!;
      for (const at of [0, 500, 999, 1000, 1015]) {
        const buf = new Uint8Array(sealed);
        buf[at] ^= 0x01;
        expect(opener.open(nonce, buf, 0, buf.length)).toBe(false);
        expect(buf.subarray(0, 1000).every((b) => b === 0)).toBe(true); // no unauthenticated plaintext left
      }
      const other = new Uint8Array(nonce);
      other[11] ^= 1;
      expect(opener.open(other, new Uint8Array(sealed), 0, sealed.length)).toBe(false);
      expect(opener.open(nonce, new Uint8Array(sealed), 0, sealed.length)).toBe(true); // the context still works
      expect(opener.open(nonce, new Uint8Array(10), 0, 10)).toBe(false); // shorter than a tag
    }
  });

  it('throws on regions outside the buffer, bad nonces, misuse and disposed contexts; memory is not touched', () => {
    const key = randomBytes(32);
    const sealer = createInPlaceAead('aes-256-gcm', key, true)!;
    const buf = new Uint8Array(64);
    const nonce = new Uint8Array(12);
    expect(() => sealer.seal(nonce, buf, 0, 49)).toThrow(RangeError); // no room for the tag
    expect(() => sealer.seal(nonce, buf, 60, 0)).toThrow(RangeError);
    expect(() => sealer.seal(nonce, buf, -1, 4)).toThrow(RangeError);
    expect(() => sealer.seal(nonce, buf, Number.NaN, 4)).toThrow(RangeError);
    expect(() => sealer.seal(nonce, buf.subarray(8), 0, 41)).toThrow(RangeError); // bounds of the view, not the buffer
    expect(() => sealer.seal(new Uint8Array(8), buf, 0, 4)).toThrow(TypeError);
    expect(() => sealer.open(nonce, buf, 0, 32)).toThrow(/cannot open/);
    expect(() => createInPlaceAead('aes-256-gcm', key, false)!.seal(nonce, buf, 0, 4)).toThrow(/cannot seal/);
    expect(() => createInPlaceAead('aes-128-gcm' as DatapathSuite, key, true)).toThrow(TypeError);
    expect(() => createInPlaceAead('aes-256-gcm', key.subarray(1), true)).toThrow(TypeError);
    expect(buf.every((b) => b === 0)).toBe(true);
    sealer.dispose();
    expect(() => sealer.seal(nonce, buf, 0, 4)).toThrow(/disposed/);
  });

  it('node:crypto\'s Aead gains sealInPlace/openInPlace with ZKS error codes', async () => {
    const aead = await nodeCrypto.createAead('chacha20-poly1305', new Uint8Array(32).fill(3));
    const nonce = new Uint8Array(12).fill(1);
    const buf = new Uint8Array(4 + 100 + 16);
    buf.fill(7, 4, 104);
    aead.sealInPlace!(nonce, buf, 4, 100);
    expect(Buffer.from(await aead.open(nonce, buf.slice(4)))).toEqual(Buffer.alloc(100, 7));
    const bad = buf.slice();
    bad[50] ^= 1;
    expect(() => aead.openInPlace!(nonce, bad, 4, 116)).toThrow(expect.objectContaining({ code: 'ZKS_ERR_DECRYPT' }));
    expect(() => aead.sealInPlace!(nonce, buf, 100, 100)).toThrow(expect.objectContaining({ code: 'ZKS_ERR_SEAL' }));
    const plain = aead.openInPlace!(nonce, buf, 4, 116);
    expect(plain.buffer).toBe(buf.buffer); // a view, no copy
    expect(Buffer.from(plain)).toEqual(Buffer.alloc(100, 7));
    // sealSync (the copying path) now seals into its one output buffer with the addon: same bytes.
    const viaSync = aead.sealSync!(nonce, new Uint8Array(100).fill(7), 4);
    expect(Buffer.from(viaSync.subarray(4))).toEqual(Buffer.from(await aead.seal(nonce, new Uint8Array(100).fill(7))));
  });

  it('tunes malloc on glibc', () => {
    expect(tuneMallocForThroughput()).toBe(true);
  });
});
