// Datagram records (PROTOCOL.md §3.6, docs/design/paths.md §4): UDP datagrams on the direct path's unreliable
// channel, so a lost datagram is just lost (as UDP would lose it) instead of holding up every
// record behind it. Each record is `seq u64 || AEAD(key, nonce = 0^4 || u64(seq), frames)` under keys of their own,
// HKDF-Expand(the session's first record key, "zks1 datagram", 32) per direction: no nonce is ever shared with the
// sequenced records. The receiver drops replays with a sliding window (WireGuard's, RFC 6479 style). Pure
// bookkeeping around a synchronous AEAD: no I/O, no clock.

import { readU64BE, writeU64BE } from '../crypto/bytes';
import { hkdfExpand } from '../crypto/hkdf';
import type { SessionKeys } from '../crypto/handshake';
import { AEAD_NONCE_SIZE, AEAD_TAG_SIZE, type Aead, type CryptoBackend } from '../crypto/types';
import { FRAME_HEADER_SIZE } from '../protocol/constants';

export const DATAGRAM_SEQ_SIZE = 8;
/** Smallest datagram record: its number and tag (an empty record never goes out, but it would open). */
export const MIN_DATAGRAM_RECORD = DATAGRAM_SEQ_SIZE + AEAD_TAG_SIZE;
/** Records one key seals; past it datagrams go in sequenced records again (≈ 20 GB of 1 200-byte datagrams). */
export const MAX_DATAGRAM_RECORDS = 2 ** 24;
/** Records behind the newest one that may still arrive (reordered) and be accepted once. */
export const REPLAY_WINDOW = 2048;

const INFO = new TextEncoder().encode('zks1 datagram');

/**
 * Frames per datagram record up to this many bytes (one frame alone may be larger): about one packet at the
 * DataChannel's default MTU, so that losing a packet loses few datagrams.
 */
export const DATAGRAM_RECORD_TARGET = 1100;

/** Where the run of whole frames from `off` ends, at most `target` bytes long unless its first frame alone is longer. */
export function groupEnd(record: Uint8Array, off: number, target: number): number {
  let end = off;
  while (end + FRAME_HEADER_SIZE <= record.length) {
    const len = ((record[end + 5]! << 24) | (record[end + 6]! << 16) | (record[end + 7]! << 8) | record[end + 8]!) >>> 0;
    const next = Math.min(record.length, end + FRAME_HEADER_SIZE + len);
    if (end > off && next - off > target) break;
    end = next;
  }
  return end > off ? end : record.length; // a malformed tail (never ours) goes as it is
}

const UDP_DATAGRAM = 0x10;
const FLAG_ADDRESS = 0x1;
const FLAG_CLOSE = 0x2;

/**
 * Whether a record may go as datagram records: every frame a UDP datagram that names its address and closes nothing.
 * What must not be lost or overtaken — the end of a flow, a datagram whose address is "the same as before", an
 * echo (its requester waits for the answer) — goes in sequenced records.
 */
export function unreliableEligible(record: Uint8Array): boolean {
  for (let off = 0; off + FRAME_HEADER_SIZE < record.length; ) {
    const flags = record[off + FRAME_HEADER_SIZE]!;
    if (record[off] !== UDP_DATAGRAM || (flags & FLAG_ADDRESS) === 0 || (flags & FLAG_CLOSE) !== 0) return false;
    off += FRAME_HEADER_SIZE + (((record[off + 5]! << 24) | (record[off + 6]! << 16) | (record[off + 7]! << 8) | record[off + 8]!) >>> 0);
  }
  return record.length > 0;
}

export interface DatagramKeys {
  send: Aead;
  recv: Aead;
}

/** Both directions' datagram keys from the session's first record keys (call before those are wiped). */
export async function deriveDatagramKeys(b: CryptoBackend, keys: Pick<SessionKeys, 'suite' | 'sendKey' | 'recvKey'>): Promise<DatagramKeys> {
  const send = await hkdfExpand(b, keys.sendKey, INFO, 32);
  const recv = await hkdfExpand(b, keys.recvKey, INFO, 32);
  try {
    return { send: await b.createAead(keys.suite, send), recv: await b.createAead(keys.suite, recv) };
  } finally {
    send.fill(0);
    recv.fill(0);
  }
}

function nonceOf(seq: number): Uint8Array {
  const n = new Uint8Array(AEAD_NONCE_SIZE);
  writeU64BE(n, 4, seq);
  return n;
}

export class DatagramSealer {
  private next = 0;
  constructor(private readonly aead: Aead) {}

  /** `seq || ciphertext || tag` for one record of frames; null once this key has sealed MAX_DATAGRAM_RECORDS. */
  seal(frames: Uint8Array): Uint8Array | null {
    if (this.next >= MAX_DATAGRAM_RECORDS || !this.aead.sealSync) return null;
    const seq = this.next++;
    const out = this.aead.sealSync(nonceOf(seq), frames, DATAGRAM_SEQ_SIZE);
    writeU64BE(out, 0, seq);
    return out;
  }
}

export type DatagramOpenResult = Uint8Array | 'replay' | 'forged';

export class DatagramOpener {
  /** Highest number accepted so far (-1 before the first). */
  private top = -1;
  /** Bit i: record top - i arrived. */
  private readonly seen = new Uint32Array(REPLAY_WINDOW / 32);
  replays = 0;
  forged = 0;

  constructor(private readonly aead: Aead) {}

  /** The frames of `message`; 'replay' for a number already seen or too old, 'forged' for a bad tag or shape. */
  open(message: Uint8Array): DatagramOpenResult {
    if (message.length < MIN_DATAGRAM_RECORD || !this.aead.openSync) return this.reject('forged');
    const seq = readU64BE(message, 0);
    if (!Number.isSafeInteger(seq) || seq >= MAX_DATAGRAM_RECORDS) return this.reject('forged');
    if (seq <= this.top && (this.top - seq >= REPLAY_WINDOW || this.has(this.top - seq))) return this.reject('replay');
    let plain: Uint8Array;
    try {
      plain = this.aead.openSync(nonceOf(seq), message.subarray(DATAGRAM_SEQ_SIZE));
    } catch {
      return this.reject('forged');
    }
    this.mark(seq); // only after the tag checked: forged numbers never move the window
    return plain;
  }

  private reject(why: 'replay' | 'forged'): 'replay' | 'forged' {
    if (why === 'replay') this.replays++;
    else this.forged++;
    return why;
  }

  private has(back: number): boolean {
    return (this.seen[back >>> 5]! & (1 << (back & 31))) !== 0;
  }

  private mark(seq: number): void {
    if (seq > this.top) {
      const shift = this.top < 0 ? REPLAY_WINDOW : seq - this.top;
      this.shift(shift);
      this.top = seq;
    }
    const back = this.top - seq;
    this.seen[back >>> 5]! |= 1 << (back & 31);
  }

  /** Moves the window `n` numbers forward (bit i becomes bit i + n). */
  private shift(n: number): void {
    if (n >= REPLAY_WINDOW) return void this.seen.fill(0);
    const words = n >>> 5;
    const bits = n & 31;
    for (let i = this.seen.length - 1; i >= 0; i--) {
      const from = i - words;
      const lo = from >= 0 ? this.seen[from]! : 0;
      const carry = bits && from - 1 >= 0 ? this.seen[from - 1]! >>> (32 - bits) : 0;
      this.seen[i] = bits ? ((lo << bits) | carry) >>> 0 : lo;
    }
  }
}

/**
 * SecureLink.datagramRoute for a path whose unreliable channel takes `send`: eligible records (unreliableEligible)
 * sealed as datagram records of about one packet each, whole frames per record, so a lost packet loses one datagram
 * rather than a batch. false: the record goes in sequenced records (not eligible, or this key is used up).
 */
export function datagramRoute(sealer: DatagramSealer, send: (message: Uint8Array) => void): (record: Uint8Array) => boolean {
  return (record) => {
    if (!unreliableEligible(record)) return false; // flow ends, echoes, "same address": in sequenced records
    for (let off = 0; off < record.length; ) {
      const end = groupEnd(record, off, DATAGRAM_RECORD_TARGET);
      const m = sealer.seal(record.subarray(off, end));
      if (!m) return off !== 0; // this key is used up: datagrams go in sequenced records again
      send(m);
      off = end;
    }
    return true;
  };
}
