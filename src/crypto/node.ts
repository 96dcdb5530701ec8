// Node backend: node:crypto (OpenSSL) for X25519, SHA-256, HMAC, AES-256-GCM and ChaCha20-Poly1305.
// The cipher is synchronous: sealSync/openSync serve the record layer without a promise per record, seal/open
// wrap them in resolved promises. With the datapath addon (src/native: the same OpenSSL, called in place) records
// are also sealed and opened in the caller's buffer, so the data path allocates nothing per record; without it a
// record costs OpenSSL's output buffer plus one copy (body + tag, after the caller's headroom, into one buffer).
// Invariants: tag verified before plaintext is returned (a failed in-place open wipes the region); failures
// surface as ZksError. Node-only — never imported by the Worker bundle.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes as nodeRandomBytes,
  type KeyObject,
} from 'node:crypto';
import { ZksError } from '../errors/zks-error';
import { createInPlaceAead, inPlaceAeadAvailable, type InPlaceAead } from '../native/datapath';
import { isAllZero } from './bytes';
import { AEAD_KEY_SIZE, AEAD_NONCE_SIZE, AEAD_TAG_SIZE, X25519_KEY_SIZE } from './types';
import type { Aead, CipherSuite, CryptoBackend, X25519Keypair } from './types';

// RFC 8410 DER headers: PrivateKeyInfo / SubjectPublicKeyInfo for id-X25519 (1.3.101.110), key bytes follow.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** A plain Uint8Array view of a Buffer (no copy), so both backends hand out the same type. */
function view(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function decryptError(): ZksError {
  return new ZksError('ZKS_ERR_DECRYPT', 'record failed authentication (tampered, replayed, reordered or wrong key)');
}

class NodeAead implements Aead {
  readonly #algorithm: 'aes-256-gcm' | 'chacha20-poly1305';
  readonly #key: KeyObject;
  /** The datapath addon's contexts (null without it), made on first use: a key seals or opens, rarely both. */
  #sealer: InPlaceAead | null | undefined;
  #opener: InPlaceAead | null | undefined;

  constructor(suite: CipherSuite, key: Uint8Array) {
    this.#algorithm = suite;
    this.#key = createSecretKey(key);
  }

  protected inPlaceContext(encrypt: boolean): InPlaceAead | null {
    const have = encrypt ? this.#sealer : this.#opener;
    if (have !== undefined) return have;
    const raw = this.#key.export();
    const made = createInPlaceAead(this.#algorithm, raw, encrypt);
    raw.fill(0);
    if (encrypt) this.#sealer = made;
    else this.#opener = made;
    return made;
  }

  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.#seal(nonce, plaintext, 0, aad));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  sealSync(nonce: Uint8Array, plaintext: Uint8Array, headroom: number): Uint8Array {
    const ctx = this.inPlaceContext(true);
    if (ctx) {
      // One buffer instead of two (OpenSSL's output, then the copy that adds headroom and tag).
      const out = view(Buffer.allocUnsafe(headroom + plaintext.length + AEAD_TAG_SIZE));
      out.set(plaintext, headroom);
      try {
        ctx.seal(nonce, out, headroom, plaintext.length);
      } catch (err) {
        throw new ZksError('ZKS_ERR_SEAL', `seal failed: ${(err as Error).message}`);
      }
      return out;
    }
    return this.#seal(nonce, plaintext, headroom, undefined);
  }

  open(nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.#open(nonce, ciphertext, aad));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  openSync(nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    return this.#open(nonce, ciphertext, undefined);
  }

  /**
   * OpenSSL cannot encrypt into a caller's buffer, so the body it returns is copied once into the output,
   * between the caller's headroom and the tag (the one copy also saves room mode its header copy).
   */
  #seal(nonce: Uint8Array, plaintext: Uint8Array, headroom: number, aad: Uint8Array | undefined): Uint8Array {
    let body: Buffer;
    let tag: Buffer;
    try {
      // The overloads are split per algorithm family; both families accept authTagLength.
      const cipher = createCipheriv(this.#algorithm as 'aes-256-gcm', this.#key, nonce, {
        authTagLength: AEAD_TAG_SIZE,
      });
      if (aad) cipher.setAAD(aad);
      body = cipher.update(plaintext);
      cipher.final();
      tag = cipher.getAuthTag();
    } catch (err) {
      throw new ZksError('ZKS_ERR_SEAL', `seal failed: ${(err as Error).message}`);
    }
    const out = view(Buffer.allocUnsafe(headroom + body.length + AEAD_TAG_SIZE));
    out.set(body, headroom);
    out.set(tag, headroom + body.length);
    return out;
  }

  #open(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    if (nonce.length !== AEAD_NONCE_SIZE || ciphertext.length < AEAD_TAG_SIZE) throw decryptError();
    const bodyLen = ciphertext.length - AEAD_TAG_SIZE;
    let plain: Buffer | undefined;
    try {
      const decipher = createDecipheriv(this.#algorithm as 'aes-256-gcm', this.#key, nonce, {
        authTagLength: AEAD_TAG_SIZE,
      });
      decipher.setAuthTag(ciphertext.subarray(bodyLen));
      if (aad) decipher.setAAD(aad);
      plain = decipher.update(ciphertext.subarray(0, bodyLen));
      decipher.final(); // throws on a bad tag; `plain` has not left this function yet
      return view(plain);
    } catch {
      plain?.fill(0);
      throw decryptError();
    }
  }
}

/** NodeAead plus the record layer's in-place forms, when the datapath addon is built (Aead.sealInPlace/openInPlace). */
class NodeAeadInPlace extends NodeAead {
  sealInPlace(nonce: Uint8Array, buf: Uint8Array, offset: number, length: number): void {
    const ctx = this.inPlaceContext(true);
    if (!ctx) throw new ZksError('ZKS_ERR_SEAL', 'in-place sealing needs the datapath addon (src/native)');
    try {
      ctx.seal(nonce, buf, offset, length);
    } catch (err) {
      throw new ZksError('ZKS_ERR_SEAL', `seal failed: ${(err as Error).message}`);
    }
  }

  openInPlace(nonce: Uint8Array, buf: Uint8Array, offset: number, length: number): Uint8Array {
    const ctx = this.inPlaceContext(false);
    if (!ctx || length < AEAD_TAG_SIZE) throw decryptError();
    let ok = false;
    try {
      ok = ctx.open(nonce, buf, offset, length);
    } catch {
      ok = false;
    }
    if (!ok) throw decryptError();
    return buf.subarray(offset, offset + length - AEAD_TAG_SIZE);
  }
}

function handshakeError(message: string): ZksError {
  return new ZksError('ZKS_ERR_HANDSHAKE', message);
}

export const nodeCrypto: CryptoBackend = {
  name: 'node',

  randomBytes(n: number): Uint8Array {
    return view(nodeRandomBytes(n));
  },

  x25519Keypair(): Promise<X25519Keypair> {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const result = {
      privateKey: new Uint8Array(pkcs8.subarray(pkcs8.length - X25519_KEY_SIZE)),
      publicKey: new Uint8Array(spki.subarray(spki.length - X25519_KEY_SIZE)),
    };
    pkcs8.fill(0);
    return Promise.resolve(result);
  },

  x25519(privateKey: Uint8Array, peerPublic: Uint8Array): Promise<Uint8Array> {
    if (privateKey.length !== X25519_KEY_SIZE || peerPublic.length !== X25519_KEY_SIZE) {
      return Promise.reject(handshakeError('X25519 keys must be 32 bytes'));
    }
    const der = Buffer.concat([X25519_PKCS8_PREFIX, privateKey]);
    let shared: Buffer;
    try {
      const priv = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      const pub = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peerPublic]), format: 'der', type: 'spki' });
      shared = diffieHellman({ privateKey: priv, publicKey: pub });
    } catch {
      // OpenSSL refuses an all-zero shared secret itself (RFC 7748 §6.1 check) and lands here too.
      return Promise.reject(handshakeError('X25519 failed: peer sent a low-order or invalid public key'));
    } finally {
      der.fill(0);
    }
    if (isAllZero(shared)) {
      shared.fill(0);
      return Promise.reject(handshakeError('X25519 produced an all-zero secret: peer sent a low-order point'));
    }
    return Promise.resolve(view(shared));
  },

  sha256(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(view(createHash('sha256').update(data).digest()));
  },

  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(view(createHmac('sha256', key).update(data).digest()));
  },

  createAead(suite: CipherSuite, key: Uint8Array): Promise<Aead> {
    if (key.length !== AEAD_KEY_SIZE) return Promise.reject(handshakeError('AEAD key must be 32 bytes'));
    if (suite !== 'aes-256-gcm' && suite !== 'chacha20-poly1305') {
      return Promise.reject(handshakeError(`unknown cipher suite ${String(suite)}`));
    }
    return Promise.resolve(inPlaceAeadAvailable() ? new NodeAeadInPlace(suite, key) : new NodeAead(suite, key));
  },
};
