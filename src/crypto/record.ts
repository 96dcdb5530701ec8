// AEAD record layer: one key per direction, implicit nonce = 4 zero bytes || u64 BE record counter.
// Spec: docs/PROTOCOL.md "Record layer". Invariants: the counter is taken synchronously when seal()/open() (or
// sealNow()/openNow(), the promise-free path of synchronous backends) is called, so calls get nonces in call
// order; every `rekeyRecords` records the key becomes HKDF-Expand(key, "zks1 rekey", 32); after one failed open
// the opener is dead and releases nothing more.
//
//   counter:  0 1 2 | 3 4 5 | 6 7 8 | ...      (rekeyRecords = 3; the counter never resets)
//   key:      k0    | k1    | k2    | ...      k(e+1) = HKDF-Expand(k(e), "zks1 rekey", 32)
import { ZksError } from '../errors/zks-error';
import { utf8Bytes, writeU64BE } from './bytes';
import { hkdfExpand } from './hkdf';
import type { SessionKeys } from './handshake';
import { AEAD_NONCE_SIZE, AEAD_TAG_SIZE } from './types';
import type { Aead, CipherSuite, CryptoBackend } from './types';

export const DEFAULT_REKEY_RECORDS = 1 << 20;
/** The last counter value a record may use: counters are JavaScript numbers, exact up to 2^53. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER - 1;
const INFO_REKEY = utf8Bytes('zks1 rekey');

export interface RecordOptions {
  /** Records per key epoch; a positive integer. */
  rekeyRecords?: number;
  /** Counter of the first record (default 0), its key being `key`; tests use it to reach counter exhaustion. */
  firstCounter?: number;
}

function nonceFor(counter: number): Uint8Array {
  const nonce = new Uint8Array(AEAD_NONCE_SIZE); // bytes 0..3 stay zero
  writeU64BE(nonce, 4, counter);
  return nonce;
}

function exhausted(): ZksError {
  return new ZksError('ZKS_ERR_NONCE_EXHAUSTED', 'record counter exhausted (2^53 records under one session); reconnect');
}

/**
 * Key epochs in call order: the Aead for epoch e is a promise created when the first record of e is called.
 * `ready` is that Aead once it has resolved, for the synchronous path (no promise, one scratch nonce).
 */
class EpochKeys {
  readonly #b: CryptoBackend;
  readonly #suite: CipherSuite;
  readonly #rekeyRecords: number;
  readonly #scratchNonce = new Uint8Array(AEAD_NONCE_SIZE); // bytes 0..3 stay zero
  #epoch: number;
  #key: Promise<Uint8Array>;
  #aead: Promise<Aead>;
  #ready: Aead | null;
  #counter: number;

  constructor(b: CryptoBackend, suite: CipherSuite, key: Uint8Array, aead: Aead, opts: Required<RecordOptions>) {
    this.#b = b;
    this.#suite = suite;
    this.#rekeyRecords = opts.rekeyRecords;
    this.#counter = opts.firstCounter;
    this.#epoch = Math.floor(opts.firstCounter / opts.rekeyRecords);
    this.#key = Promise.resolve(key);
    this.#aead = Promise.resolve(aead);
    this.#ready = aead;
  }

  /** Synchronously claims the next counter value and the (possibly pending) Aead of its epoch. */
  next(): { nonce: Uint8Array; aead: Promise<Aead> } {
    if (this.#counter > MAX_COUNTER) throw exhausted();
    const counter = this.#counter++;
    const epoch = Math.floor(counter / this.#rekeyRecords);
    while (this.#epoch < epoch) {
      const e = ++this.#epoch;
      const b = this.#b;
      const suite = this.#suite;
      this.#key = this.#key.then(async (old) => {
        const next = await hkdfExpand(b, old, INFO_REKEY, 32);
        old.fill(0);
        return next;
      });
      this.#ready = null;
      this.#aead = this.#key.then((k) => b.createAead(suite, k));
      this.#aead.then(
        (aead) => {
          if (this.#epoch === e) this.#ready = aead;
        },
        () => {}, // the record that asked for this epoch reports the failure
      );
    }
    return { nonce: nonceFor(counter), aead: this.#aead };
  }

  /**
   * The Aead of the next record when it is known now (same epoch, key resolved), else null; claims nothing.
   * After it returned an Aead, claimNonce() claims the counter.
   */
  readyAead(): Aead | null {
    if (this.#counter > MAX_COUNTER) throw exhausted();
    return Math.floor(this.#counter / this.#rekeyRecords) === this.#epoch ? this.#ready : null;
  }

  /** The counter the next record will claim (its sequence number, §2.5a). */
  get counter(): number {
    return this.#counter;
  }

  /** Claims the next counter; the nonce is a scratch buffer valid until the next call (synchronous use only). */
  claimNonce(): Uint8Array {
    writeU64BE(this.#scratchNonce, 4, this.#counter++);
    return this.#scratchNonce;
  }
}

function checkOptions(opts: RecordOptions | undefined): Required<RecordOptions> {
  const rekeyRecords = opts?.rekeyRecords ?? DEFAULT_REKEY_RECORDS;
  if (!Number.isSafeInteger(rekeyRecords) || rekeyRecords < 1) {
    throw new ZksError('ZKS_ERR_CONFIG', `rekeyRecords must be a positive integer, got ${rekeyRecords}`);
  }
  const firstCounter = opts?.firstCounter ?? 0;
  if (!Number.isSafeInteger(firstCounter) || firstCounter < 0) {
    throw new ZksError('ZKS_ERR_CONFIG', `firstCounter must be a non-negative integer, got ${firstCounter}`);
  }
  return { rekeyRecords, firstCounter };
}

function withHeadroom(sealed: Uint8Array, headroom: number): Uint8Array {
  if (headroom === 0) return sealed;
  const out = new Uint8Array(headroom + sealed.length);
  out.set(sealed, headroom);
  return out;
}

export class RecordSealer {
  readonly #keys: EpochKeys;
  private constructor(keys: EpochKeys) {
    this.#keys = keys;
  }

  /** The counter (sequence number) the next seal claims. */
  get nextCounter(): number {
    return this.#keys.counter;
  }

  static async create(b: CryptoBackend, suite: CipherSuite, key: Uint8Array, opts?: RecordOptions): Promise<RecordSealer> {
    const checked = checkOptions(opts);
    const own = key.slice(); // wiped at the first rekey; the caller keeps its own copy
    return new RecordSealer(new EpochKeys(b, suite, own, await b.createAead(suite, own), checked));
  }

  /**
   * Output = `headroom` free bytes || ciphertext || 16-byte tag; send records in the order seal() was called.
   * Rejects with ZKS_ERR_NONCE_EXHAUSTED after 2^53 records, ZKS_ERR_SEAL when the cipher fails.
   */
  seal(plaintext: Uint8Array, headroom = 0): Promise<Uint8Array> {
    let slot: { nonce: Uint8Array; aead: Promise<Aead> };
    try {
      slot = this.#keys.next();
    } catch (err) {
      return Promise.reject(err);
    }
    return slot.aead.then((aead) => aead.seal(slot.nonce, plaintext)).then((sealed) => withHeadroom(sealed, headroom));
  }

  /**
   * The same as seal(), done now, when the backend is synchronous and the key is at hand; null (nothing
   * claimed) otherwise. A caller mixing both keeps its own order: a record sealed now goes out after the
   * records of earlier seal() calls. Throws what seal() rejects with.
   */
  sealNow(plaintext: Uint8Array, headroom = 0): Uint8Array | null {
    const aead = this.#keys.readyAead();
    if (!aead?.sealSync) return null;
    return aead.sealSync(this.#keys.claimNonce(), plaintext, headroom);
  }

  /** Whether this sealer's backend seals in place (sealInPlaceNow can succeed). */
  get sealsInPlace(): boolean {
    return typeof this.#keys.readyAead()?.sealInPlace === 'function';
  }

  /**
   * sealNow() in the caller's buffer: buf[offset, +length) becomes ciphertext and the tag goes to the 16 bytes after
   * it. false (nothing claimed, buf untouched) when the backend cannot seal in place now; then use sealNow/seal.
   */
  sealInPlaceNow(buf: Uint8Array, offset: number, length: number): boolean {
    const aead = this.#keys.readyAead();
    if (!aead?.sealInPlace || buf.length < offset + length + AEAD_TAG_SIZE) return false;
    aead.sealInPlace(this.#keys.claimNonce(), buf, offset, length);
    return true;
  }
}

function asDecryptError(err: unknown): ZksError {
  return err instanceof ZksError && err.code === 'ZKS_ERR_DECRYPT'
    ? err
    : new ZksError('ZKS_ERR_DECRYPT', `record could not be opened: ${(err as Error)?.message ?? String(err)}`);
}

export class RecordOpener {
  readonly #keys: EpochKeys;
  #dead: ZksError | null = null;
  /** Settles when the previous open() has settled, so results are released strictly in call order. */
  #tail: Promise<void> = Promise.resolve();
  /** open() calls not yet settled: openNow() must not overtake them. */
  #pending = 0;

  private constructor(keys: EpochKeys) {
    this.#keys = keys;
  }

  /** The counter (sequence number) the next open claims: the record the opener expects next. */
  get nextCounter(): number {
    return this.#keys.counter;
  }

  static async create(b: CryptoBackend, suite: CipherSuite, key: Uint8Array, opts?: RecordOptions): Promise<RecordOpener> {
    const checked = checkOptions(opts);
    const own = key.slice();
    return new RecordOpener(new EpochKeys(b, suite, own, await b.createAead(suite, own), checked));
  }

  /** Rejects with ZKS_ERR_DECRYPT on a bad record, and on every call after the first failure. */
  open(ciphertext: Uint8Array): Promise<Uint8Array> {
    if (this.#dead) return Promise.reject(this.#dead);
    let work: Promise<Uint8Array>;
    if (!(ciphertext instanceof Uint8Array) || ciphertext.length < AEAD_TAG_SIZE) {
      work = Promise.reject(shortRecord());
    } else {
      try {
        const slot = this.#keys.next();
        work = slot.aead.then((aead) => aead.open(slot.nonce, ciphertext));
      } catch (err) {
        work = Promise.reject(err);
      }
    }
    const prev = this.#tail;
    this.#pending++;
    const result = work.then(
      async (plain) => {
        await prev;
        if (this.#dead) {
          plain.fill(0);
          throw this.#dead;
        }
        return plain;
      },
      async (err: unknown) => {
        await prev;
        this.#dead ??= asDecryptError(err);
        throw this.#dead;
      },
    );
    const settled = () => void this.#pending--;
    this.#tail = result.then(settled, settled);
    return result;
  }

  /**
   * The same as open(), done now, when no open() is pending, the backend is synchronous and the key is at hand;
   * null (nothing claimed) otherwise. Throws ZKS_ERR_DECRYPT (and the opener is dead) on a bad record.
   * `inPlace`: the caller owns `ciphertext` and lets it be overwritten; where the backend can, the plaintext is
   * then a view of it (no buffer allocated) — and a bad record leaves it wiped.
   */
  openNow(ciphertext: Uint8Array, inPlace = false): Uint8Array | null {
    if (this.#dead) throw this.#dead;
    if (this.#pending > 0) return null;
    let aead: Aead | null;
    try {
      if (ciphertext.length < AEAD_TAG_SIZE) throw shortRecord();
      aead = this.#keys.readyAead();
      if (inPlace && aead?.openInPlace) return aead.openInPlace(this.#keys.claimNonce(), ciphertext, 0, ciphertext.length);
      if (!aead?.openSync) return null;
      return aead.openSync(this.#keys.claimNonce(), ciphertext);
    } catch (err) {
      this.#dead = asDecryptError(err);
      throw this.#dead;
    }
  }
}

function shortRecord(): ZksError {
  return new ZksError('ZKS_ERR_DECRYPT', `record shorter than the ${AEAD_TAG_SIZE}-byte tag`);
}

/** Both directions of a session: seal with sendKey, open with recvKey. */
export async function createChannel(
  b: CryptoBackend,
  keys: SessionKeys,
  opts?: RecordOptions,
): Promise<{ sealer: RecordSealer; opener: RecordOpener }> {
  const [sealer, opener] = await Promise.all([
    RecordSealer.create(b, keys.suite, keys.sendKey, opts),
    RecordOpener.create(b, keys.suite, keys.recvKey, opts),
  ]);
  return { sealer, opener };
}
