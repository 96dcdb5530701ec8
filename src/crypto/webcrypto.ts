// WebCrypto backend for the Cloudflare Worker (workerd) and any runtime with globalThis.crypto.subtle.
// Native: SHA-256, HMAC, AES-256-GCM, X25519 (falls back to @noble/curves when subtle lacks X25519).
// ChaCha20-Poly1305 comes from @noble/ciphers because WebCrypto has no such algorithm.
// Invariants: no node:* imports; the imported AES CryptoKey is cached per Aead; tag checked before release.
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { ZksError } from '../errors/zks-error';
import { concatBytes, isAllZero } from './bytes';
import { AEAD_KEY_SIZE, AEAD_NONCE_SIZE, AEAD_TAG_SIZE, X25519_KEY_SIZE } from './types';
import type { Aead, CipherSuite, CryptoBackend, X25519Keypair } from './types';

// The slice of WebCrypto we use, typed locally so this file checks the same under @types/node and
// @cloudflare/workers-types (whose SubtleCrypto declarations differ in detail).
type Key = object;
interface Subtle {
  importKey(format: string, data: Uint8Array, alg: unknown, extractable: boolean, usages: string[]): Promise<Key>;
  exportKey(format: string, key: Key): Promise<ArrayBuffer>;
  generateKey(alg: unknown, extractable: boolean, usages: string[]): Promise<{ privateKey: Key; publicKey: Key }>;
  deriveBits(alg: unknown, key: Key, length: number): Promise<ArrayBuffer>;
  digest(alg: string, data: Uint8Array): Promise<ArrayBuffer>;
  sign(alg: string, key: Key, data: Uint8Array): Promise<ArrayBuffer>;
  encrypt(alg: unknown, key: Key, data: Uint8Array): Promise<ArrayBuffer>;
  decrypt(alg: unknown, key: Key, data: Uint8Array): Promise<ArrayBuffer>;
}
interface WebCryptoGlobal {
  subtle: Subtle;
  getRandomValues(array: Uint8Array): Uint8Array;
}

function webcrypto(): WebCryptoGlobal {
  const c = (globalThis as unknown as { crypto?: WebCryptoGlobal }).crypto;
  if (!c?.subtle) throw new ZksError('ZKS_ERR_HANDSHAKE', 'this runtime has no globalThis.crypto.subtle');
  return c;
}

// RFC 8410 PrivateKeyInfo header for id-X25519; the 32 raw private-key bytes follow.
const X25519_PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const X25519_ALG = { name: 'X25519' };

function handshakeError(message: string): ZksError {
  return new ZksError('ZKS_ERR_HANDSHAKE', message);
}
function decryptError(): ZksError {
  return new ZksError('ZKS_ERR_DECRYPT', 'record failed authentication (tampered, replayed, reordered or wrong key)');
}

// Probed once: workerd and Node ≥ 20 have subtle X25519; older runtimes get noble's constant-time-style code.
let subtleX25519: Promise<boolean> | undefined;
function hasSubtleX25519(): Promise<boolean> {
  subtleX25519 ??= webcrypto()
    .subtle.generateKey(X25519_ALG, true, ['deriveBits'])
    .then(
      (pair) => typeof pair === 'object' && pair !== null && 'privateKey' in pair,
      () => false,
    );
  return subtleX25519;
}

function gcmParams(nonce: Uint8Array, aad: Uint8Array | undefined): object {
  return aad ? { name: 'AES-GCM', iv: nonce, tagLength: 128, additionalData: aad } : { name: 'AES-GCM', iv: nonce, tagLength: 128 };
}

class AesGcmAead implements Aead {
  readonly #key: Key;
  constructor(key: Key) {
    this.#key = key;
  }
  async seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    try {
      return new Uint8Array(await webcrypto().subtle.encrypt(gcmParams(nonce, aad), this.#key, plaintext));
    } catch (err) {
      throw new ZksError('ZKS_ERR_SEAL', `seal failed: ${(err as Error).message}`);
    }
  }
  async open(nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    if (nonce.length !== AEAD_NONCE_SIZE || ciphertext.length < AEAD_TAG_SIZE) throw decryptError();
    try {
      // subtle.decrypt checks the tag and returns nothing on failure.
      return new Uint8Array(await webcrypto().subtle.decrypt(gcmParams(nonce, aad), this.#key, ciphertext));
    } catch {
      throw decryptError();
    }
  }
}

class NobleChaChaAead implements Aead {
  readonly #key: Uint8Array;
  constructor(key: Uint8Array) {
    this.#key = key.slice();
  }
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(chacha20poly1305(this.#key, nonce, aad).encrypt(plaintext));
    } catch (err) {
      return Promise.reject(new ZksError('ZKS_ERR_SEAL', `seal failed: ${(err as Error).message}`));
    }
  }
  open(nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    if (nonce.length !== AEAD_NONCE_SIZE || ciphertext.length < AEAD_TAG_SIZE) return Promise.reject(decryptError());
    try {
      // noble computes and compares the Poly1305 tag before it decrypts anything.
      return Promise.resolve(chacha20poly1305(this.#key, nonce, aad).decrypt(ciphertext));
    } catch {
      return Promise.reject(decryptError());
    }
  }
}

function toKeypair(privateKey: Uint8Array, publicKey: Uint8Array): X25519Keypair {
  return { privateKey, publicKey };
}

export const webCrypto: CryptoBackend = {
  name: 'webcrypto',

  randomBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    // getRandomValues fills at most 65536 bytes per call (WebCrypto §10.1.1).
    for (let off = 0; off < n; off += 65536) webcrypto().getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
    return out;
  },

  async x25519Keypair(): Promise<X25519Keypair> {
    if (!(await hasSubtleX25519())) {
      const privateKey = nobleX25519.utils.randomSecretKey();
      return toKeypair(privateKey, nobleX25519.getPublicKey(privateKey));
    }
    const subtle = webcrypto().subtle;
    const pair = await subtle.generateKey(X25519_ALG, true, ['deriveBits']);
    const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey));
    const publicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
    const privateKey = pkcs8.slice(pkcs8.length - X25519_KEY_SIZE);
    pkcs8.fill(0);
    return toKeypair(privateKey, publicKey);
  },

  async x25519(privateKey: Uint8Array, peerPublic: Uint8Array): Promise<Uint8Array> {
    if (privateKey.length !== X25519_KEY_SIZE || peerPublic.length !== X25519_KEY_SIZE) {
      throw handshakeError('X25519 keys must be 32 bytes');
    }
    let shared: Uint8Array;
    if (await hasSubtleX25519()) {
      const subtle = webcrypto().subtle;
      const der = concatBytes(X25519_PKCS8_PREFIX, privateKey);
      try {
        const priv = await subtle.importKey('pkcs8', der, X25519_ALG, false, ['deriveBits']);
        const pub = await subtle.importKey('raw', peerPublic, X25519_ALG, false, []);
        shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, priv, 256));
      } catch {
        // Runtimes differ: some reject a low-order peer here, others return zeros (checked below).
        throw handshakeError('X25519 failed: peer sent a low-order or invalid public key');
      } finally {
        der.fill(0);
      }
    } else {
      try {
        shared = nobleX25519.getSharedSecret(privateKey, peerPublic);
      } catch {
        throw handshakeError('X25519 failed: peer sent a low-order or invalid public key');
      }
    }
    if (isAllZero(shared)) {
      throw handshakeError('X25519 produced an all-zero secret: peer sent a low-order point');
    }
    return shared;
  },

  async sha256(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await webcrypto().subtle.digest('SHA-256', data));
  },

  async hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
    const subtle = webcrypto().subtle;
    // WebCrypto refuses zero-length HMAC keys; RFC 2104 pads short keys with zeros, so 64 zero bytes is equivalent.
    const k = await subtle.importKey('raw', key.length === 0 ? new Uint8Array(64) : key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, data));
  },

  async createAead(suite: CipherSuite, key: Uint8Array): Promise<Aead> {
    if (key.length !== AEAD_KEY_SIZE) throw handshakeError('AEAD key must be 32 bytes');
    if (suite === 'aes-256-gcm') {
      return new AesGcmAead(await webcrypto().subtle.importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']));
    }
    if (suite === 'chacha20-poly1305') return new NobleChaChaAead(key);
    throw handshakeError(`unknown cipher suite ${String(suite)}`);
  },
};

/** For tests: force the @noble/curves X25519 path (as on a runtime without subtle X25519). */
export function _forceNobleX25519ForTests(force: boolean): void {
  subtleX25519 = Promise.resolve(!force);
}
