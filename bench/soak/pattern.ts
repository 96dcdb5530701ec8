// What the soak's flows carry and how they ask for it: seeded pseudo-random content (AES-128-CTR keystream, the
// seed in the IV, so the traffic server and the driver make the same bytes without sharing anything and a byte
// from another flow never matches), the one-line requests of the traffic server, and UDP echo payloads.
// Invariant: content of (seed, n) is the first n bytes of one endless stream per seed.
import { createCipheriv, createHash } from 'node:crypto';

const KEY = Buffer.from('zks-soak-pattern');
const ZEROS = Buffer.alloc(64 * 1024);

/** Yields the n bytes of stream `seed` in chunks of at most 64 KiB (each a fresh Buffer). */
export function* patternChunks(seed: number, n: number): Generator<Buffer> {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed >>> 0, 0);
  const cipher = createCipheriv('aes-128-ctr', KEY, iv);
  for (let left = n; left > 0; left -= ZEROS.length) yield cipher.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
}

/** sha256 (hex) of the n bytes of stream `seed`. */
export function patternSha256(seed: number, n: number): string {
  const h = createHash('sha256');
  for (const c of patternChunks(seed, n)) h.update(c);
  return h.digest('hex');
}

/**
 * Requests, one line each, the first thing a client sends on a TCP connection to the traffic server:
 *   DOWN <seed> <n> <bytesPerSec>  the server sends stream `seed`'s n bytes at that pace, then ends its side
 *   UP <n>                         the client sends n bytes; the server answers "<count> <sha256hex>\n" and ends
 *   ECHO                           everything after the line comes back until the client ends
 */
export const request = {
  down: (seed: number, n: number, rate: number) => `DOWN ${seed >>> 0} ${n} ${Math.round(rate)}\n`,
  up: (n: number) => `UP ${n}\n`,
  echo: () => 'ECHO\n',
};

export type Request = { kind: 'down'; seed: number; n: number; rate: number } | { kind: 'up'; n: number } | { kind: 'echo' };

export function parseRequest(line: string): Request | null {
  const [verb, ...args] = line.trim().split(' ');
  const nums = args.map(Number);
  if (nums.some((x) => !Number.isSafeInteger(x) || x < 0)) return null;
  if (verb === 'DOWN' && nums.length === 3) return { kind: 'down', seed: nums[0]!, n: nums[1]!, rate: nums[2]! };
  if (verb === 'UP' && nums.length === 1) return { kind: 'up', n: nums[0]! };
  if (verb === 'ECHO' && nums.length === 0) return { kind: 'echo' };
  return null;
}

/** A UDP echo payload: flow id and sequence number, then `size - 8` bytes that depend on both. */
export function datagram(flow: number, seq: number, size: number): Buffer {
  const b = Buffer.alloc(Math.max(size, 8));
  b.writeUInt32BE(flow >>> 0, 0);
  b.writeUInt32BE(seq >>> 0, 4);
  for (const c of patternChunks((flow * 0x9e3779b1 + seq) >>> 0, b.length - 8)) c.copy(b, 8);
  return b;
}

/** The (flow, seq) of an echoed payload, or null when it is not exactly what datagram() made for them. */
export function checkDatagram(b: Buffer, size: number): { flow: number; seq: number } | null {
  if (b.length !== Math.max(size, 8)) return null;
  const flow = b.readUInt32BE(0);
  const seq = b.readUInt32BE(4);
  return datagram(flow, seq, size).equals(b) ? { flow, seq } : null;
}
