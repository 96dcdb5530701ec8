// The Internet checksum (RFC 1071): 16-bit one's-complement sum of the data, complemented; pseudo-header sums for
// TCP/UDP/ICMPv6 over IPv4 (RFC 9293 §3.1, RFC 768) and IPv6 (RFC 8200 §8.1); incremental update (RFC 1624 eqn. 3).
// "Sum" below means the folded, uncomplemented 16-bit one's-complement sum (0 only when every word is zero);
// "checksum" means its complement, the value carried on the wire.
//
// Speed: the sum is byte-order independent (RFC 1071 §2(B)), so large inputs are read as little-endian 32-bit words
// (the native order of every host Node runs on, which V8 turns into plain loads) and byte-swapped once at the end.
// Small inputs take a byte loop: creating a DataView costs more than summing a 40-byte header.

const SMALL = 128;
const UDP = 17;
/** 2^53 / 2^32 words would overflow a double's integer range; fold well before (every 1 MiB). */
const CHUNK = 1 << 20;

function fold(s: number): number {
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s;
}

function sumSmall(buf: Uint8Array, off: number, len: number, s: number): number {
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if (len & 1) s += buf[end] << 8;
  return s;
}

function sumLarge(buf: Uint8Array, off: number, len: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, len);
  let s = 0;
  let i = 0;
  const end4 = len & ~3;
  while (i < end4) {
    const stop = Math.min(end4, i + CHUNK);
    const stop16 = i + ((stop - i) & ~15);
    let a = 0;
    let b = 0;
    for (; i < stop16; i += 16) {
      a += dv.getUint32(i, true) + dv.getUint32(i + 4, true);
      b += dv.getUint32(i + 8, true) + dv.getUint32(i + 12, true);
    }
    for (; i < stop; i += 4) a += dv.getUint32(i, true);
    s = fold(s + fold(a) + fold(b));
  }
  s = ((s & 0xff) << 8) | (s >>> 8); // little-endian sum → network order
  if (len - i >= 2) {
    s += dv.getUint16(i);
    i += 2;
  }
  if (i < len) s += dv.getUint8(i) << 8;
  return s;
}

/**
 * One's-complement sum of buf[off, off+len) added to `initial` (another sum, e.g. a pseudo-header's).
 * An odd length is padded with a zero byte (RFC 1071 §4.1). Returns a folded 16-bit sum.
 */
export function onesSum(buf: Uint8Array, off = 0, len = buf.length - off, initial = 0): number {
  if (len < SMALL) return fold(sumSmall(buf, off, len, initial));
  return fold(sumLarge(buf, off, len) + initial);
}

/** Adds two folded sums (or any 16-bit words). */
export function addSums(a: number, b: number): number {
  return fold(a + b);
}

/** The value to put in a checksum field: the complement of the sum. */
export function finishChecksum(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Internet checksum of buf[off, off+len) with an optional starting sum (pseudo-header). */
export function internetChecksum(buf: Uint8Array, off = 0, len = buf.length - off, initial = 0): number {
  return ~onesSum(buf, off, len, initial) & 0xffff;
}

/**
 * True when the data, checksum field included, sums to 0xffff (−0), i.e. the checksum verifies (RFC 1071 §1(3)).
 * Also true for all-zero data with a 0xffff checksum, the one representation of a zero sum.
 */
export function verifyChecksum(buf: Uint8Array, off = 0, len = buf.length - off, initial = 0): boolean {
  return onesSum(buf, off, len, initial) === 0xffff;
}

/**
 * Sum of the TCP/UDP/ICMPv6 pseudo-header. With 4-byte addresses it is the IPv4 one (src, dst, 0, protocol,
 * 16-bit length; RFC 9293 §3.1); with 16-byte addresses the IPv6 one (src, dst, 32-bit length, 3 zero bytes,
 * next header; RFC 8200 §8.1). Both reduce to the same sum, so one function serves both.
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, upperLength: number): number {
  let s = protocol + (upperLength >>> 16) + (upperLength & 0xffff);
  for (let i = 0; i < src.length; i += 2) s += (src[i] << 8) | src[i + 1];
  for (let i = 0; i < dst.length; i += 2) s += (dst[i] << 8) | dst[i + 1];
  return fold(s);
}

/**
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): the new checksum field after one 16-bit word of the covered data
 * changes from `oldWord` to `newWord`. Equal to a full recomputation up to ±0 (0x0000 vs 0xffff for all-zero data).
 */
export function adjustChecksum(checksum: number, oldWord: number, newWord: number): number {
  return ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** adjustChecksum for a 32-bit field (an IPv4 address, a sequence number) aligned on a 16-bit boundary. */
export function adjustChecksum32(checksum: number, oldValue: number, newValue: number): number {
  const c = adjustChecksum(checksum, oldValue >>> 16, newValue >>> 16);
  return adjustChecksum(c, oldValue & 0xffff, newValue & 0xffff);
}

/** How emit fills the checksum field. */
export type ChecksumMode =
  /** The full Internet checksum over pseudo-header, header and payload. */
  | 'full'
  /** Only the folded pseudo-header sum, uncomplemented: what a NIC/virtio checksum offload (NEEDS_CSUM) expects. */
  | 'pseudo'
  /** Zero: the caller fills it in later. */
  | 'none';

/** Shared by TCP, UDP and ICMPv6 emit: fills the checksum field of buf[0, total) according to `mode`; returns the value written. */
export function writeChecksum(
  buf: Uint8Array, dv: DataView, total: number, field: number, protocol: number,
  src: Uint8Array, dst: Uint8Array, mode: ChecksumMode,
): number {
  let value = 0;
  if (mode !== 'none') {
    const pseudo = pseudoHeaderSum(src, dst, protocol, total);
    value = mode === 'pseudo' ? pseudo : finishChecksum(onesSum(buf, 0, total, pseudo));
    // RFC 768: a computed UDP checksum of 0 is sent as 0xffff (0 means "no checksum"). Harmless for TCP/ICMPv6,
    // where both are the same one's-complement value, but only UDP needs it.
    if (value === 0 && mode === 'full' && protocol === UDP) value = 0xffff;
  }
  dv.setUint16(field, value);
  return value;
}
