// IPv6 header (RFC 8200 §3) and the extension-header chain (§4): a checked view and a typed Repr of the fixed header.
// Invariant of Ipv6View: version 6, 40 + payloadLen ≤ buf.length, and the extension chain was walked once in
// checked(): Hop-by-Hop (first only), Routing, Fragment, Destination Options are skipped to find the upper-layer
// protocol and offset. A non-atomic fragment (offset ≠ 0 or M set) is flagged, not reassembled, and its walk stops
// there. ESP/AH end the walk (their payload is opaque). Jumbograms (payload length 0 + Jumbo option) are unsupported.
//
//   |ver| traffic class |             flow label               |
//   |        payload length        |  next header | hop limit  |
//   |                 source address (16 bytes)                 |
//   |              destination address (16 bytes)               |

import { formatIPv6, parseIPv6 } from '../../protocol/address';
import { IpProtocol } from './ip';
import { malformed, unsupported, type WireResult } from './errors';
import { u16, u32 } from './bytes';

export const IPV6_HEADER_LEN = 40;
/** More than this many extension headers is refused (bounds the walk; real traffic carries 0–2). */
export const IPV6_MAX_EXT_HEADERS = 8;

const F = {
  VER_TC_FLOW: 0,
  PAYLOAD_LEN: 4,
  NEXT_HEADER: 6,
  HOP_LIMIT: 7,
  SRC: 8,
  DST: 24,
} as const;

/** Fragment extension header (RFC 8200 §4.5) field offsets, relative to the header. */
const FRAG = { NEXT: 0, OFFSET_FLAGS: 2, IDENT: 4, LEN: 8 } as const;

export class Ipv6View {
  readonly buf: Uint8Array;
  /** Upper-layer protocol after the extension chain (IpProtocol.IPV6_NONXT when none). */
  readonly upperProtocol: number;
  /** Offset of the upper-layer header from the start of the packet. */
  readonly upperOffset: number;
  /** A Fragment header with offset ≠ 0 or M set was seen: the upper-layer bytes are not a whole packet. */
  readonly isFragment: boolean;

  private constructor(buf: Uint8Array, upperProtocol: number, upperOffset: number, isFragment: boolean) {
    this.buf = buf;
    this.upperProtocol = upperProtocol;
    this.upperOffset = upperOffset;
    this.isFragment = isFragment;
  }

  static checked(buf: Uint8Array): WireResult<Ipv6View> {
    if (buf.length < IPV6_HEADER_LEN) return malformed(`IPv6: ${buf.length} bytes, header needs ${IPV6_HEADER_LEN}`);
    if (buf[0] >> 4 !== 6) return malformed(`IPv6: version ${buf[0] >> 4}`);
    const payloadLen = (buf[F.PAYLOAD_LEN] << 8) | buf[F.PAYLOAD_LEN + 1];
    const end = IPV6_HEADER_LEN + payloadLen;
    if (end > buf.length) return malformed(`IPv6: payload length ${payloadLen} > ${buf.length - IPV6_HEADER_LEN} bytes received`);
    let next = buf[F.NEXT_HEADER];
    if (payloadLen === 0 && next === IpProtocol.HOP_BY_HOP) return unsupported('IPv6: jumbogram');
    let off = IPV6_HEADER_LEN;
    let isFragment = false;
    for (let n = 0; ; n++) {
      if (next !== IpProtocol.HOP_BY_HOP && next !== IpProtocol.IPV6_ROUTE && next !== IpProtocol.IPV6_OPTS && next !== IpProtocol.IPV6_FRAG) break;
      if (n >= IPV6_MAX_EXT_HEADERS) return unsupported(`IPv6: more than ${IPV6_MAX_EXT_HEADERS} extension headers`);
      // RFC 8200 §4.1: Hop-by-Hop Options only immediately after the IPv6 header.
      if (next === IpProtocol.HOP_BY_HOP && n > 0) return malformed('IPv6: Hop-by-Hop header not first');
      if (end - off < 8) return malformed(`IPv6: extension header ${next} truncated at ${off}`);
      if (next === IpProtocol.IPV6_FRAG) {
        const offsetFlags = (buf[off + FRAG.OFFSET_FLAGS] << 8) | buf[off + FRAG.OFFSET_FLAGS + 1];
        next = buf[off + FRAG.NEXT];
        off += FRAG.LEN;
        // RFC 6946: an atomic fragment (offset 0, M clear) is processed as a whole packet; any other stops here.
        if ((offsetFlags & 0xfff9) !== 0) {
          isFragment = true;
          break;
        }
        continue;
      }
      const len = (buf[off + 1] + 1) * 8;
      if (end - off < len) return malformed(`IPv6: extension header ${next} of ${len} bytes truncated at ${off}`);
      next = buf[off];
      off += len;
    }
    return new Ipv6View(buf, next, off, isFragment);
  }

  get version(): number { return this.buf[0] >> 4; }
  get trafficClass(): number { return (u16(this.buf, F.VER_TC_FLOW) >> 4) & 0xff; }
  get flowLabel(): number { return u32(this.buf, F.VER_TC_FLOW) & 0xfffff; }
  /** Bytes after the fixed header, extension headers included. */
  get payloadLen(): number { return u16(this.buf, F.PAYLOAD_LEN); }
  /** Next Header of the fixed header (the first extension header, or the upper layer when there is none). */
  get nextHeader(): number { return this.buf[F.NEXT_HEADER]; }
  get hopLimit(): number { return this.buf[F.HOP_LIMIT]; }
  get src(): Uint8Array { return this.buf.subarray(F.SRC, F.SRC + 16); }
  get dst(): Uint8Array { return this.buf.subarray(F.DST, F.DST + 16); }
  get hasExtensionHeaders(): boolean { return this.upperOffset !== IPV6_HEADER_LEN; }
  /** Everything after the fixed header, 40 … 40 + payloadLen. */
  get payload(): Uint8Array { return this.buf.subarray(IPV6_HEADER_LEN, IPV6_HEADER_LEN + this.payloadLen); }
  /** The upper-layer packet (TCP segment, UDP datagram, ICMPv6 message) after any extension headers. */
  get upperPayload(): Uint8Array { return this.buf.subarray(this.upperOffset, IPV6_HEADER_LEN + this.payloadLen); }
  get packet(): Uint8Array { return this.buf.subarray(0, IPV6_HEADER_LEN + this.payloadLen); }
}

/** The fixed IPv6 header. Extension headers, when present, are part of the payload (payloadLen counts them). */
export interface Ipv6Repr {
  src: Uint8Array;
  dst: Uint8Array;
  nextHeader: number;
  payloadLen: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
}

export const Ipv6Repr = {
  parse(view: Ipv6View): Ipv6Repr {
    return {
      src: view.buf.slice(F.SRC, F.SRC + 16),
      dst: view.buf.slice(F.DST, F.DST + 16),
      nextHeader: view.nextHeader,
      payloadLen: view.payloadLen,
      hopLimit: view.hopLimit,
      trafficClass: view.trafficClass,
      flowLabel: view.flowLabel,
    };
  },

  headerLen(_repr: Ipv6Repr): number {
    return IPV6_HEADER_LEN;
  },

  /** Writes the 40-byte header at buf[0, 40) and returns 40. RangeError for a Repr no packet can carry. */
  emit(repr: Ipv6Repr, buf: Uint8Array): number {
    if (repr.payloadLen > 0xffff || repr.payloadLen < 0) throw new RangeError(`IPv6 payload length ${repr.payloadLen}`);
    if (repr.src.length !== 16 || repr.dst.length !== 16) throw new RangeError('IPv6 addresses must be 16 bytes');
    if (buf.length < IPV6_HEADER_LEN) throw new RangeError(`IPv6 header needs 40 bytes, buffer has ${buf.length}`);
    const dv = new DataView(buf.buffer, buf.byteOffset, IPV6_HEADER_LEN);
    dv.setUint32(F.VER_TC_FLOW, ((6 << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & 0xfffff)) >>> 0);
    dv.setUint16(F.PAYLOAD_LEN, repr.payloadLen);
    buf[F.NEXT_HEADER] = repr.nextHeader;
    buf[F.HOP_LIMIT] = repr.hopLimit;
    buf.set(repr.src, F.SRC);
    buf.set(repr.dst, F.DST);
    return IPV6_HEADER_LEN;
  },
};

/** RFC 4291 text → 16 bytes, or null (shares src/protocol/address.ts with the tunnel). */
export function ipv6FromText(text: string): Uint8Array | null {
  return parseIPv6(text);
}

/** 16 bytes → RFC 5952 canonical text. */
export function ipv6ToText(addr: Uint8Array): string {
  return formatIPv6(addr);
}
