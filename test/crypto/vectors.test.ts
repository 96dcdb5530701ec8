// RFC / NIST vectors (test/vectors/*.json) against both backends, including must-reject cases.
import { afterAll, describe, expect, it } from 'vitest';
import x25519Vectors from '../vectors/x25519.json';
import chachaVectors from '../vectors/chacha20-poly1305.json';
import gcmVectors from '../vectors/aes-256-gcm.json';
import hkdfVectors from '../vectors/hkdf-sha256.json';
import { hkdf, hkdfExpand, hkdfExtract } from '../../src/crypto/hkdf';
import { _forceNobleX25519ForTests, webCrypto } from '../../src/crypto/webcrypto';
import type { CipherSuite, CryptoBackend } from '../../src/crypto/types';
import { BACKENDS, expectZksError, h, hex, rejection } from './helpers';

type AeadCase = { comment: string; key: string; nonce: string; aad: string; plaintext?: string; ciphertext: string };

function aeadSuite(suite: CipherSuite, vectors: { valid: AeadCase[]; invalid: AeadCase[] }, b: CryptoBackend): void {
  describe(`${suite}`, () => {
    for (const v of vectors.valid) {
      it(`seals and opens: ${v.comment}`, async () => {
        const aead = await b.createAead(suite, h(v.key));
        const aad = v.aad ? h(v.aad) : undefined;
        expect(hex(await aead.seal(h(v.nonce), h(v.plaintext!), aad))).toBe(v.ciphertext);
        expect(hex(await aead.open(h(v.nonce), h(v.ciphertext), aad))).toBe(v.plaintext);
      });
    }
    for (const v of vectors.invalid) {
      it(`rejects: ${v.comment}`, async () => {
        const aead = await b.createAead(suite, h(v.key));
        const err = await rejection(aead.open(h(v.nonce), h(v.ciphertext), v.aad ? h(v.aad) : undefined));
        expectZksError(err, 'ZKS_ERR_DECRYPT');
      });
    }
  });
}

describe.each(BACKENDS)('%s backend', (_name, b) => {
  describe('X25519 (RFC 7748)', () => {
    it.each(x25519Vectors.scalarMult)('§5.2 scalar multiplication $out', async (v) => {
      expect(hex(await b.x25519(h(v.scalar), h(v.u)))).toBe(v.out);
    });

    it('§5.2 iterated 1 and 1000 times', async () => {
      let k: Uint8Array = h(x25519Vectors.iterated.start);
      let u: Uint8Array = k.slice();
      for (let i = 1; i <= 1000; i++) {
        const r = await b.x25519(k, u);
        u = k;
        k = r;
        if (i === 1) expect(hex(k)).toBe(x25519Vectors.iterated.after1);
      }
      expect(hex(k)).toBe(x25519Vectors.iterated.after1000);
    });

    it('§6.1 Alice and Bob agree', async () => {
      const d = x25519Vectors.dh;
      expect(hex(await b.x25519(h(d.alicePrivate), h(d.bobPublic)))).toBe(d.shared);
      expect(hex(await b.x25519(h(d.bobPrivate), h(d.alicePublic)))).toBe(d.shared);
    });

    it.each(x25519Vectors.mustReject)('rejects low-order peer point: $comment', async (v) => {
      const err = await rejection(b.x25519(h(x25519Vectors.dh.alicePrivate), h(v.u)));
      expectZksError(err, 'ZKS_ERR_HANDSHAKE');
    });

    it('rejects keys that are not 32 bytes', async () => {
      expectZksError(await rejection(b.x25519(new Uint8Array(31), new Uint8Array(32))), 'ZKS_ERR_HANDSHAKE');
      expectZksError(await rejection(b.x25519(new Uint8Array(32), new Uint8Array(33))), 'ZKS_ERR_HANDSHAKE');
    });

    it('generated keypairs agree with each other', async () => {
      const a = await b.x25519Keypair();
      const c = await b.x25519Keypair();
      expect(a.privateKey.length).toBe(32);
      expect(a.publicKey.length).toBe(32);
      expect(hex(await b.x25519(a.privateKey, c.publicKey))).toBe(hex(await b.x25519(c.privateKey, a.publicKey)));
    });
  });

  describe('HKDF-SHA256 (RFC 5869)', () => {
    it.each(hkdfVectors.cases)('$comment', async (v) => {
      const prk = await hkdfExtract(b, h(v.salt), h(v.ikm));
      expect(hex(prk)).toBe(v.prk);
      expect(hex(await hkdfExpand(b, prk, h(v.info), v.length))).toBe(v.okm);
      expect(hex(await hkdf(b, h(v.ikm), h(v.salt), h(v.info), v.length))).toBe(v.okm);
    });

    it('refuses an output longer than 255 blocks', async () => {
      expectZksError(await rejection(hkdfExpand(b, new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1)), 'ZKS_ERR_HANDSHAKE');
    });
  });

  describe('SHA-256 / HMAC', () => {
    it('hashes "abc" (FIPS 180-2) and computes RFC 4231 case 2', async () => {
      expect(hex(await b.sha256(new TextEncoder().encode('abc')))).toBe(
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      );
      const mac = await b.hmacSha256(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'));
      expect(hex(mac)).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    });
  });

  describe('AEAD', () => {
    aeadSuite('aes-256-gcm', gcmVectors, b);
    aeadSuite('chacha20-poly1305', chachaVectors, b);

    it('rejects keys that are not 32 bytes', async () => {
      expectZksError(await rejection(b.createAead('aes-256-gcm', new Uint8Array(16))), 'ZKS_ERR_HANDSHAKE');
    });

    it('returns plain Uint8Arrays', async () => {
      const aead = await b.createAead('aes-256-gcm', new Uint8Array(32));
      const sealed = await aead.seal(new Uint8Array(12), new Uint8Array(5));
      expect(Object.getPrototypeOf(sealed)).toBe(Uint8Array.prototype);
    });
  });

  it('randomBytes returns the requested length, above the 64 KiB getRandomValues limit too', () => {
    expect(b.randomBytes(0).length).toBe(0);
    const big = b.randomBytes(70_000);
    expect(big.length).toBe(70_000);
    expect(big.subarray(65_536).some((x) => x !== 0)).toBe(true);
  });
});

describe('webcrypto backend on its @noble/curves fallback (runtimes without subtle X25519)', () => {
  afterAll(() => _forceNobleX25519ForTests(false));

  it('matches RFC 7748 and rejects low-order points', async () => {
    _forceNobleX25519ForTests(true);
    for (const v of x25519Vectors.scalarMult) expect(hex(await webCrypto.x25519(h(v.scalar), h(v.u)))).toBe(v.out);
    const d = x25519Vectors.dh;
    expect(hex(await webCrypto.x25519(h(d.alicePrivate), h(d.bobPublic)))).toBe(d.shared);
    for (const v of x25519Vectors.mustReject) {
      expectZksError(await rejection(webCrypto.x25519(h(d.alicePrivate), h(v.u))), 'ZKS_ERR_HANDSHAKE');
    }
    const kp = await webCrypto.x25519Keypair();
    expect(kp.publicKey.length).toBe(32);
  });
});
