// ICMP at the interface: echo requests from the applications (RFC 792 / RFC 4443 §4.1) become IcmpEcho objects for
// the daemon, and the two messages the interface writes back are built here — an echo reply carrying the request's
// identifier, sequence number and data unchanged (RFC 792 "Echo or Echo Reply Message", RFC 4443 §4.2), and a
// Destination Unreachable (port) quoting the invoking packet (RFC 792, RFC 1812 §4.3.2.3: within 576 bytes; RFC 4443
// §3.1/§2.4(c): within 1280) so the application's kernel fails its socket at once (ECONNREFUSED).
// No state, no clock: pure functions over packets, like wire/. The interface queues what they return.

import { unusableAddress } from './address-kinds';
import {
  ICMP_HEADER_LEN,
  ICMPV4_MAX_QUOTE,
  ICMPV6_MAX_QUOTE,
  IPV4_HEADER_LEN,
  IPV6_HEADER_LEN,
  Icmpv4Repr,
  Icmpv4Unreachable,
  Icmpv4View,
  Icmpv6Repr,
  Icmpv6Unreachable,
  Icmpv6View,
  IpProtocol,
  Ipv4Repr,
  Ipv4View,
  Ipv6Repr,
  Ipv6View,
  badChecksum,
  isWireError,
  type WireError,
} from './wire/index';

const TTL = 64;
/** Time Exceeded code 1, the same in ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 §3.3): fragment reassembly time exceeded. */
const REASSEMBLY_TIME_EXCEEDED = 1;
const NO_BYTES = new Uint8Array(0);

/** An echo request from an application. Everything is a copy (the daemon keeps it across an async echo). */
export interface IcmpEcho {
  readonly family: 4 | 6;
  /** The application's address (where the reply goes). */
  readonly src: Uint8Array;
  /** The address it pinged (the reply's source). */
  readonly dst: Uint8Array;
  readonly ident: number;
  readonly seq: number;
  readonly data: Uint8Array;
}

/**
 * Reads an ICMP/ICMPv6 message (the IP payload). An echo request gives an IcmpEcho; any other valid message gives
 * null (the interface drops and counts it); a short message or a wrong checksum gives the WireError.
 */
export function parseEchoRequest(family: 4 | 6, src: Uint8Array, dst: Uint8Array, message: Uint8Array): IcmpEcho | WireError | null {
  if (family === 4) {
    const v = Icmpv4View.checked(message);
    if (isWireError(v)) return v;
    if (!v.verifyChecksum()) return badIcmpChecksum('ICMPv4');
    const r = Icmpv4Repr.parse(v);
    if (r.kind !== 'echo-request') return null;
    return { family, src: src.slice(), dst: dst.slice(), ident: r.ident, seq: r.seqNo, data: r.data.slice() };
  }
  const v = Icmpv6View.checked(message);
  if (isWireError(v)) return v;
  if (!v.verifyChecksum(src, dst)) return badIcmpChecksum('ICMPv6');
  const r = Icmpv6Repr.parse(v);
  if (r.kind !== 'echo-request') return null;
  return { family, src: src.slice(), dst: dst.slice(), ident: r.ident, seq: r.seqNo, data: r.data.slice() };
}

function badIcmpChecksum(what: string): WireError {
  return badChecksum(`${what}: checksum`);
}

/** The echo reply to `echo` as a whole IP packet: from the pinged address to the application, same id/seq/data. */
export function echoReplyPacket(echo: IcmpEcho, ipIdent: number): Uint8Array {
  const len = ICMP_HEADER_LEN + echo.data.length;
  const hl = echo.family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
  const buf = new Uint8Array(hl + len);
  const src = echo.dst;
  const dst = echo.src;
  if (echo.family === 4) {
    ipv4Header(src, dst, IpProtocol.ICMP, len, ipIdent, buf);
    Icmpv4Repr.emit({ kind: 'echo-reply', ident: echo.ident, seqNo: echo.seq, data: echo.data }, buf.subarray(hl));
  } else {
    ipv6Header(src, dst, IpProtocol.ICMPV6, len, buf);
    Icmpv6Repr.emit({ kind: 'echo-reply', ident: echo.ident, seqNo: echo.seq, data: echo.data }, buf.subarray(hl), { src, dst });
  }
  return buf;
}

/**
 * Destination Unreachable (port) for `original`, a whole IP packet the application sent, as an IP packet from the
 * address it tried to reach back to it; the quote is capped by RFC 1812 / RFC 4443 and by `mtu`. null when no error
 * may be sent (RFC 1122 §3.2.2, RFC 4443 §2.4(e)): the packet does not parse, it was an ICMP error itself, a
 * non-first fragment, or to or from a multicast/broadcast/unspecified address.
 */
export function portUnreachablePacket(original: Uint8Array, mtu: number, ipIdent: number): Uint8Array | null {
  return errorPacket(original, mtu, ipIdent, false,
    (quote) => Icmpv4Repr.unreachable(Icmpv4Unreachable.PORT, quote),
    (quote) => Icmpv6Repr.unreachable(Icmpv6Unreachable.PORT, quote));
}

/**
 * Time Exceeded, code 1 (fragment reassembly time exceeded: RFC 792, RFC 4443 §3.3) for a datagram whose
 * reassembly timed out, quoting `firstFragment` (the offset-0 fragment). null under the same rules as above.
 */
export function reassemblyTimeExceededPacket(firstFragment: Uint8Array, mtu: number, ipIdent: number): Uint8Array | null {
  return errorPacket(firstFragment, mtu, ipIdent, true,
    (quote) => ({ kind: 'time-exceeded', code: REASSEMBLY_TIME_EXCEEDED, invoking: quote }),
    (quote) => ({ kind: 'time-exceeded', code: REASSEMBLY_TIME_EXCEEDED, invoking: quote }));
}

/** An ICMP error about `original`, from its destination back to its source; `firstFragment`: it may be one. */
function errorPacket(
  original: Uint8Array, mtu: number, ipIdent: number, firstFragment: boolean,
  v4: (quote: Uint8Array) => Icmpv4Repr, v6: (quote: Uint8Array) => Icmpv6Repr,
): Uint8Array | null {
  const version = original.length > 0 ? original[0] >> 4 : 0;
  if (version === 4) {
    const ip = Ipv4View.checked(original, { verifyChecksum: false });
    if (isWireError(ip) || ip.fragOffset !== 0) return null;
    if (unusableAddress(ip.src) || unusableAddress(ip.dst) || isIcmpError(IpProtocol.ICMP, ip.payload)) return null;
    const quoteMax = Math.min(ICMPV4_MAX_QUOTE, mtu - IPV4_HEADER_LEN - ICMP_HEADER_LEN);
    const repr = v4(ip.packet.subarray(0, quoteMax));
    const len = Icmpv4Repr.bufferLen(repr);
    const buf = new Uint8Array(IPV4_HEADER_LEN + len);
    ipv4Header(ip.dst, ip.src, IpProtocol.ICMP, len, ipIdent, buf);
    Icmpv4Repr.emit(repr, buf.subarray(IPV4_HEADER_LEN));
    return buf;
  }
  if (version === 6) {
    const ip = Ipv6View.checked(original);
    if (isWireError(ip) || (ip.isFragment && !firstFragment)) return null;
    if (unusableAddress(ip.src) || unusableAddress(ip.dst)) return null;
    if (ip.upperProtocol === IpProtocol.ICMPV6 && isIcmpError(IpProtocol.ICMPV6, ip.upperPayload)) return null;
    const quoteMax = Math.min(ICMPV6_MAX_QUOTE, mtu - IPV6_HEADER_LEN - ICMP_HEADER_LEN);
    const repr = v6(ip.packet.subarray(0, quoteMax));
    const len = Icmpv6Repr.bufferLen(repr);
    const buf = new Uint8Array(IPV6_HEADER_LEN + len);
    const src = ip.dst.slice();
    const dst = ip.src.slice();
    ipv6Header(src, dst, IpProtocol.ICMPV6, len, buf);
    Icmpv6Repr.emit(repr, buf.subarray(IPV6_HEADER_LEN), { src, dst });
    return buf;
  }
  return null;
}

/** ICMPv4 types 3, 4, 5, 11, 12 and ICMPv6 types < 128 are errors; never answer an error with an error. */
function isIcmpError(protocol: number, upper: Uint8Array): boolean {
  if (protocol === IpProtocol.ICMP) {
    if (upper.length === 0) return false;
    const t = upper[0];
    return t === 3 || t === 4 || t === 5 || t === 11 || t === 12;
  }
  return upper.length > 0 && upper[0] < 128;
}

function ipv4Header(src: Uint8Array, dst: Uint8Array, protocol: number, payloadLen: number, ident: number, buf: Uint8Array): void {
  Ipv4Repr.emit({
    src, dst, protocol, payloadLen, ttl: TTL, dscp: 0, ecn: 0, ident, dontFrag: false, moreFrags: false, fragOffset: 0,
    options: NO_BYTES,
  }, buf);
}

function ipv6Header(src: Uint8Array, dst: Uint8Array, nextHeader: number, payloadLen: number, buf: Uint8Array): void {
  Ipv6Repr.emit({ src, dst, nextHeader, payloadLen, hopLimit: TTL, trafficClass: 0, flowLabel: 0 }, buf);
}
