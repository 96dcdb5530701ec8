// AEAD record layer: one key per direction, implicit nonce = 4 zero bytes || u64 BE record counter.
// Spec: docs/PROTOCOL.md "Record layer". Invariants: the counter is taken synchronously when seal()/open()
// is called, so pipelined calls get nonces in call order; every `rekeyRecords` records the key becomes
// HKDF-Expand(key, "zks1 rekey", 32); after one failed open the opener is dead and releases nothing more.
//
//   counter:  0 1 2 | 3 4 5 | 6 7 8 | ...      (rekeyRecords = 3; the counter never resets)
//   key:      k0    | k1    | k2    | ...      k(e+1) = HKDF-Expand(k(e), "zks1 rekey", 32)
import { ZksError } from '../protocol/errors';
import { utf8Bytes, writeU64BE } from './bytes';
import { hkdfExpand } from './hkdf';
import type { SessionKeys } from './handshake';
import { AEAD_NONCE_SIZE, AEAD_TAG_SIZE } from './types';
import type { Aead, CipherSuite, CryptoBackend } from './types';

export const DEFAULT_REKEY_RECORDS = 1 << 20;
const INFO_REKEY = utf8Bytes('zks1 rekey');

export interface RecordOptions {
  /** Records per key epoch; a positive integer. */
  rekeyRecords?: number;
}

function nonceFor(counter: number): Uint8Array {
  const nonce = new Uint8Array(AEAD_NONCE_SIZE); // bytes 0..3 stay zero
  writeU64BE(nonce, 4, counter);
  return nonce;
}

/** Key epochs in call order: the Aead for epoch e is a promise created when the first record of e is called. */
class EpochKeys {
  readonly #b: CryptoBackend;
  readonly #suite: CipherSuite;
  readonly #rekeyRecords: number;
  #epoch = 0;
  #key: Promise<Uint8Array>;
  #aead: Promise<Aead>;
  #counter = 0;

  constructor(b: CryptoBackend, suite: CipherSuite, key: Uint8Array, aead: Aead, rekeyRecords: number) {
    this.#b = b;
    this.#suite = suite;
    this.#rekeyRecords = rekeyRecords;
    this.#key = Promise.resolve(key);
    this.#aead = Promise.resolve(aead);
  }

  /** Synchronously claims the next counter value and the (possibly pending) Aead of its epoch. */
  next(): { nonce: Uint8Array; aead: Promise<Aead> } {
    const counter = this.#counter++;
    if (counter > Number.MAX_SAFE_INTEGER - 1) throw new ZksError('ZKS_ERR_DECRYPT', 'record counter exhausted; reconnect');
    const epoch = Math.floor(counter / this.#rekeyRecords);
    while (this.#epoch < epoch) {
      this.#epoch++;
      const b = this.#b;
      const suite = this.#suite;
      this.#key = this.#key.then(async (old) => {
        const next = await hkdfExpand(b, old, INFO_REKEY, 32);
        old.fill(0);
        return next;
      });
      this.#aead = this.#key.then((k) => b.createAead(suite, k));
    }
    return { nonce: nonceFor(counter), aead: this.#aead };
  }
}

function checkRekey(opts: RecordOptions | undefined): number {
  const n = opts?.rekeyRecords ?? DEFAULT_REKEY_RECORDS;
  if (!Number.isSafeInteger(n) || n < 1) throw new ZksError('ZKS_ERR_HANDSHAKE', `rekeyRecords must be a positive integer, got ${n}`);
  return n;
}

export class RecordSealer {
  readonly #keys: EpochKeys;
  private constructor(keys: EpochKeys) {
    this.#keys = keys;
  }

  static async create(b: CryptoBackend, suite: CipherSuite, key: Uint8Array, opts?: RecordOptions): Promise<RecordSealer> {
    const rekey = checkRekey(opts);
    const own = key.slice(); // wiped at the first rekey; the caller keeps its own copy
    return new RecordSealer(new EpochKeys(b, suite, own, await b.createAead(suite, own), rekey));
  }

  /** Output = ciphertext || 16-byte tag; send records in the order seal() was called. */
  seal(plaintext: Uint8Array): Promise<Uint8Array> {
    let slot: { nonce: Uint8Array; aead: Promise<Aead> };
    try {
      slot = this.#keys.next();
    } catch (err) {
      return Promise.reject(err);
    }
    return slot.aead.then((aead) => aead.seal(slot.nonce, plaintext));
  }
}

export class RecordOpener {
  readonly #keys: EpochKeys;
  #dead: ZksError | null = null;
  /** Settles when the previous open() has settled, so results are released strictly in call order. */
  #tail: Promise<void> = Promise.resolve();

  private constructor(keys: EpochKeys) {
    this.#keys = keys;
  }

  static async create(b: CryptoBackend, suite: CipherSuite, key: Uint8Array, opts?: RecordOptions): Promise<RecordOpener> {
    const rekey = checkRekey(opts);
    const own = key.slice();
    return new RecordOpener(new EpochKeys(b, suite, own, await b.createAead(suite, own), rekey));
  }

  /** Rejects with ZKS_ERR_DECRYPT on a bad record, and on every call after the first failure. */
  open(ciphertext: Uint8Array): Promise<Uint8Array> {
    if (this.#dead) return Promise.reject(this.#dead);
    let work: Promise<Uint8Array>;
    if (!(ciphertext instanceof Uint8Array) || ciphertext.length < AEAD_TAG_SIZE) {
      work = Promise.reject(new ZksError('ZKS_ERR_DECRYPT', `record shorter than the ${AEAD_TAG_SIZE}-byte tag`));
    } else {
      try {
        const slot = this.#keys.next();
        work = slot.aead.then((aead) => aead.open(slot.nonce, ciphertext));
      } catch (err) {
        work = Promise.reject(err);
      }
    }
    const prev = this.#tail;
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
        this.#dead ??=
          err instanceof ZksError && err.code === 'ZKS_ERR_DECRYPT'
            ? err
            : new ZksError('ZKS_ERR_DECRYPT', `record could not be opened: ${(err as Error)?.message ?? String(err)}`);
        throw this.#dead;
      },
    );
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
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
