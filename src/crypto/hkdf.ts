// HKDF with HMAC-SHA256 (RFC 5869), built on whichever backend's hmacSha256 is in use.
// Invariants: output length ≤ 255 * 32; intermediate blocks are wiped once copied into the output.
import { ZksError } from '../errors/zks-error';
import type { CryptoBackend } from './types';

const HASH_LEN = 32;

/** RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); an empty salt means HashLen zero bytes. */
export function hkdfExtract(b: CryptoBackend, salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array> {
  return b.hmacSha256(salt.length === 0 ? new Uint8Array(HASH_LEN) : salt, ikm);
}

/** RFC 5869 §2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i). */
export async function hkdfExpand(
  b: CryptoBackend,
  prk: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) {
    throw new ZksError('ZKS_ERR_HANDSHAKE', `HKDF-Expand length ${length} is outside 0..${255 * HASH_LEN}`);
  }
  const okm = new Uint8Array(length);
  const input = new Uint8Array(HASH_LEN + info.length + 1);
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    input.set(prev, 0);
    input.set(info, prev.length);
    input[prev.length + info.length] = i;
    const block = await b.hmacSha256(prk, input.subarray(0, prev.length + info.length + 1));
    okm.set(block.subarray(0, Math.min(HASH_LEN, length - off)), off);
    off += HASH_LEN;
    prev.fill(0);
    prev = block;
  }
  prev.fill(0);
  input.fill(0);
  return okm;
}

export async function hkdf(
  b: CryptoBackend,
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const prk = await hkdfExtract(b, salt, ikm);
  try {
    return await hkdfExpand(b, prk, info, length);
  } finally {
    prk.fill(0);
  }
}
