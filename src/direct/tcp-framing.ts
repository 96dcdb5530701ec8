// The direct TCP path's framing (PROTOCOL.md §3.7): `u32 length || body`, where a body is a sequenced record or a
// 9-byte heartbeat. Pure: bytes in, whole bodies out, whatever the read boundaries; no I/O.

import { HEARTBEAT_SIZE } from './heartbeat';
import { MAX_DIRECT_MESSAGE } from './direct-limits';
import { SEQ_HEADER_SIZE } from '../link/sequenced';
import { AEAD_TAG_SIZE } from '../crypto/types';

export const LENGTH_SIZE = 4;
/** Smallest sequenced record (its number and tag); shorter bodies other than a heartbeat are refused. */
export const MIN_RECORD = SEQ_HEADER_SIZE + AEAD_TAG_SIZE;

/** The length prefix of one body. */
export function lengthPrefix(length: number): Uint8Array {
  const b = new Uint8Array(LENGTH_SIZE);
  new DataView(b.buffer).setUint32(0, length);
  return b;
}

export class MessageReader {
  /** A body split across reads: what arrived so far. */
  private partial: Uint8Array | null = null;
  private partialFill = 0;
  /** A length prefix split across reads. */
  private readonly lengthBytes = new Uint8Array(LENGTH_SIZE);
  private lengthFill = 0;
  private failed = false;

  /**
   * Delivers every body completed by `chunk` (a view into it where the body lies whole inside: the caller hands
   * over a chunk nobody else uses). Returns why the stream is invalid — then nothing more is delivered — or null.
   */
  push(chunk: Uint8Array, deliver: (body: Uint8Array) => void): string | null {
    if (this.failed) return 'the stream already failed';
    let off = 0;
    while (off < chunk.length) {
      if (this.partial) {
        const take = Math.min(this.partial.length - this.partialFill, chunk.length - off);
        this.partial.set(chunk.subarray(off, off + take), this.partialFill);
        this.partialFill += take;
        off += take;
        if (this.partialFill < this.partial.length) return null;
        const body = this.partial;
        this.partial = null;
        deliver(body);
        continue;
      }
      let length: number;
      if (this.lengthFill === 0 && chunk.length - off >= LENGTH_SIZE) {
        length = ((chunk[off]! << 24) | (chunk[off + 1]! << 16) | (chunk[off + 2]! << 8) | chunk[off + 3]!) >>> 0;
        off += LENGTH_SIZE;
      } else {
        while (this.lengthFill < LENGTH_SIZE && off < chunk.length) this.lengthBytes[this.lengthFill++] = chunk[off++]!;
        if (this.lengthFill < LENGTH_SIZE) return null;
        this.lengthFill = 0;
        length = new DataView(this.lengthBytes.buffer).getUint32(0);
      }
      if (length !== HEARTBEAT_SIZE && (length < MIN_RECORD || length > MAX_DIRECT_MESSAGE)) {
        this.failed = true;
        return `a ${length}-byte message (a record is ${MIN_RECORD}–${MAX_DIRECT_MESSAGE} bytes, a heartbeat ${HEARTBEAT_SIZE})`;
      }
      if (chunk.length - off >= length) {
        deliver(chunk.subarray(off, off + length));
        off += length;
      } else {
        this.partial = new Uint8Array(length);
        this.partialFill = 0;
      }
    }
    return null;
  }
}
