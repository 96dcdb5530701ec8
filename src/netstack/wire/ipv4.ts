// IPv4 header (RFC 791 §3.1): a checked view over a packet and a typed Repr with parse/emit.
// Invariant of Ipv4View: version 4, 20 ≤ headerLen ≤ totalLen ≤ buf.length, so every getter is a bounds-safe read.
// Fragments are flagged (isFragment), not reassembled; bytes past totalLen (link padding) are ignored.
//
//   0               1               2               3
//   |ver|  IHL  |  DSCP   |ECN|          total length         |
//   |        identification        |flags|  fragment offset   |
//   |     TTL     |   protocol     |        header checksum     |
//   |                      source address                       |
//   |                    destination address                    |

import { formatIPv4, parseIPv4 } from '../../protocol/address';
import { finishChecksum, onesSum } from './checksum';
import { malformed, badChecksum, type WireResult } from './errors';
import { u16, u32 } from './bytes';

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_OPTIONS_LEN = 40;

/** Byte offsets of the fixed header fields. */
const F = {
  VER_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LEN: 2,
  IDENT: 4,
  FLAGS_FRAG: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
} as const;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;

export interface Ipv4CheckOptions {
  /** Verify the header checksum (default true: 20 bytes, and the kernel always fills it in, offload or not). */
  verifyChecksum?: boolean;
}

export class Ipv4View {
  readonly buf: Uint8Array;

  private constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  /** Validates version, IHL, total length (and by default the header checksum) once; the view is then safe. */
  static checked(buf: Uint8Array, opts?: Ipv4CheckOptions): WireResult<Ipv4View> {
    if (buf.length < IPV4_HEADER_LEN) return malformed(`IPv4: ${buf.length} bytes, header needs ${IPV4_HEADER_LEN}`);
    const b0 = buf[F.VER_IHL];
    if (b0 >> 4 !== 4) return malformed(`IPv4: version ${b0 >> 4}`);
    const hl = (b0 & 0x0f) * 4;
    if (hl < IPV4_HEADER_LEN) return malformed(`IPv4: IHL ${hl / 4} < 5`);
    const total = (buf[F.TOTAL_LEN] << 8) | buf[F.TOTAL_LEN + 1];
    if (total < hl) return malformed(`IPv4: total length ${total} < header length ${hl}`);
    if (total > buf.length) return malformed(`IPv4: total length ${total} > ${buf.length} bytes received`);
    if (opts?.verifyChecksum !== false && onesSum(buf, 0, hl) !== 0xffff) return badChecksum('IPv4: header checksum');
    return new Ipv4View(buf);
  }

  get version(): number { return this.buf[F.VER_IHL] >> 4; }
  get headerLen(): number { return (this.buf[F.VER_IHL] & 0x0f) * 4; }
  get dscp(): number { return this.buf[F.DSCP_ECN] >> 2; }
  get ecn(): number { return this.buf[F.DSCP_ECN] & 0x03; }
  get totalLen(): number { return u16(this.buf, F.TOTAL_LEN); }
  get ident(): number { return u16(this.buf, F.IDENT); }
  get dontFrag(): boolean { return (u16(this.buf, F.FLAGS_FRAG) & FLAG_DF) !== 0; }
  get moreFrags(): boolean { return (u16(this.buf, F.FLAGS_FRAG) & FLAG_MF) !== 0; }
  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragOffset(): number { return (u16(this.buf, F.FLAGS_FRAG) & FRAG_OFFSET_MASK) * 8; }
  /** True for any fragment (MF set or a non-zero offset): its payload is not a whole upper-layer packet. */
  get isFragment(): boolean { return (u16(this.buf, F.FLAGS_FRAG) & (FLAG_MF | FRAG_OFFSET_MASK)) !== 0; }
  get ttl(): number { return this.buf[F.TTL]; }
  get protocol(): number { return this.buf[F.PROTOCOL]; }
  get checksum(): number { return u16(this.buf, F.CHECKSUM); }
  /** Source address: a subarray aliasing the packet (copy it to keep it). */
  get src(): Uint8Array { return this.buf.subarray(F.SRC, F.SRC + 4); }
  get dst(): Uint8Array { return this.buf.subarray(F.DST, F.DST + 4); }
  /** Source address as an unsigned 32-bit number (cheap map key). */
  get srcU32(): number { return u32(this.buf, F.SRC); }
  get dstU32(): number { return u32(this.buf, F.DST); }
  get options(): Uint8Array { return this.buf.subarray(IPV4_HEADER_LEN, this.headerLen); }
  /** The upper-layer payload, headerLen … totalLen (aliases the packet). */
  get payload(): Uint8Array { return this.buf.subarray(this.headerLen, this.totalLen); }
  /** The whole datagram, 0 … totalLen (without link padding). */
  get packet(): Uint8Array { return this.buf.subarray(0, this.totalLen); }

  verifyChecksum(): boolean {
    return onesSum(this.buf, 0, this.headerLen) === 0xffff;
  }
}

/** A typed IPv4 header. Addresses and options are copies; the payload is not part of it (see payloadLen). */
export interface Ipv4Repr {
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  /** Bytes after the header (total length − header length). */
  payloadLen: number;
  ttl: number;
  dscp: number;
  ecn: number;
  ident: number;
  dontFrag: boolean;
  moreFrags: boolean;
  /** In bytes; a multiple of 8. */
  fragOffset: number;
  /** Raw option bytes, a multiple of 4 and at most 40 long (empty almost always). */
  options: Uint8Array;
}

const NO_OPTIONS = new Uint8Array(0);

export const Ipv4Repr = {
  /** Never fails: Ipv4View.checked already validated everything a Repr holds. The reserved flag bit is dropped. */
  parse(view: Ipv4View): Ipv4Repr {
    const hl = view.headerLen;
    return {
      src: view.buf.slice(F.SRC, F.SRC + 4),
      dst: view.buf.slice(F.DST, F.DST + 4),
      protocol: view.protocol,
      payloadLen: view.totalLen - hl,
      ttl: view.ttl,
      dscp: view.dscp,
      ecn: view.ecn,
      ident: view.ident,
      dontFrag: view.dontFrag,
      moreFrags: view.moreFrags,
      fragOffset: view.fragOffset,
      options: hl === IPV4_HEADER_LEN ? NO_OPTIONS : view.buf.slice(IPV4_HEADER_LEN, hl),
    };
  },

  headerLen(repr: Ipv4Repr): number {
    return IPV4_HEADER_LEN + repr.options.length;
  },

  /**
   * Writes the header (checksum included) at buf[0, headerLen) and returns headerLen. The payload is the caller's:
   * it goes at buf[headerLen, headerLen + payloadLen). Throws RangeError on a Repr no packet could carry —
   * that is a bug in the caller, not packet input.
   */
  emit(repr: Ipv4Repr, buf: Uint8Array): number {
    const ol = repr.options.length;
    if (ol % 4 !== 0 || ol > IPV4_MAX_OPTIONS_LEN) throw new RangeError(`IPv4 options length ${ol}`);
    const hl = IPV4_HEADER_LEN + ol;
    const total = hl + repr.payloadLen;
    if (total > 0xffff) throw new RangeError(`IPv4 total length ${total} > 65535`);
    if (repr.src.length !== 4 || repr.dst.length !== 4) throw new RangeError('IPv4 addresses must be 4 bytes');
    if (buf.length < hl) throw new RangeError(`IPv4 header needs ${hl} bytes, buffer has ${buf.length}`);
    if (repr.fragOffset % 8 !== 0 || repr.fragOffset > FRAG_OFFSET_MASK * 8) throw new RangeError(`IPv4 fragment offset ${repr.fragOffset}`);
    const dv = new DataView(buf.buffer, buf.byteOffset, hl);
    buf[F.VER_IHL] = 0x40 | (hl >> 2);
    buf[F.DSCP_ECN] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 0x03);
    dv.setUint16(F.TOTAL_LEN, total);
    dv.setUint16(F.IDENT, repr.ident & 0xffff);
    dv.setUint16(F.FLAGS_FRAG, (repr.dontFrag ? FLAG_DF : 0) | (repr.moreFrags ? FLAG_MF : 0) | (repr.fragOffset / 8));
    buf[F.TTL] = repr.ttl;
    buf[F.PROTOCOL] = repr.protocol;
    dv.setUint16(F.CHECKSUM, 0);
    buf.set(repr.src.subarray(0, 4), F.SRC);
    buf.set(repr.dst.subarray(0, 4), F.DST);
    if (ol > 0) buf.set(repr.options, IPV4_HEADER_LEN);
    dv.setUint16(F.CHECKSUM, finishChecksum(onesSum(buf, 0, hl)));
    return hl;
  },
};

/** Dotted-quad text → 4 bytes, or null (shares src/protocol/address.ts with the tunnel). */
export function ipv4FromText(text: string): Uint8Array | null {
  return parseIPv4(text);
}

export function ipv4ToText(addr: Uint8Array): string {
  return formatIPv4(addr);
}

export function ipv4ToU32(addr: Uint8Array): number {
  return ((addr[0] << 24) | (addr[1] << 16) | (addr[2] << 8) | addr[3]) >>> 0;
}

export function ipv4FromU32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}
