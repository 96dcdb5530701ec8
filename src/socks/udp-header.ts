// The SOCKS5 UDP request header (RFC 1928 §7). Every datagram between the client and our relay socket starts with
//
//   +-----+------+------+----------+----------+----------+
//   | RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//   |  2  |  1   |  1   | Variable |    2     | Variable |
//   +-----+------+------+----------+----------+----------+
//
// Client → relay: DST is where DATA goes. Relay → client: DST is where DATA came from. One datagram is one whole
// message (no streaming). Pure, no node:*; bad input comes back as a SocksUdpError value, never thrown.

import { AddressType } from '../protocol/constants';
import { formatIPv4, formatIPv6, isValidDomain, parseIPv4, parseIPv6, type Target } from '../protocol/address';
import { MAX_DATAGRAM_PAYLOAD } from '../protocol/datagram-types';
import { SocksUdpDrop, SocksUdpError } from './errors';
import { canonicalDomain } from './socks5-parser';

/** Largest UDP payload the client's side can carry: 65 535 − 20 (IPv4 header) − 8 (UDP header). */
export const MAX_UDP_PAYLOAD_IPV4 = 65_507;
/** IPv6 without jumbograms: 65 535 (payload length field) − 8. */
export const MAX_UDP_PAYLOAD_IPV6 = 65_527;

export interface SocksUdpDatagram {
  target: Target;
  /** DATA: a view into the parsed buffer (no copy). */
  payload: Uint8Array;
}

/** Parses one datagram from the client. `maxPayload` defaults to what a datagram frame carries. */
export function parseUdpDatagram(
  buf: Uint8Array,
  maxPayload = MAX_DATAGRAM_PAYLOAD,
): SocksUdpDatagram | SocksUdpError {
  if (buf.length < 4) return truncated(buf.length);
  if (buf[0] !== 0 || buf[1] !== 0) {
    const rsv = `0x${hex2(buf[0])}${hex2(buf[1])}`;
    return new SocksUdpError(SocksUdpDrop.RESERVED, `reserved field of the UDP header must be 0x0000, got ${rsv}`);
  }
  // RFC 1928 §7: "An implementation that does not support fragmentation MUST drop any datagram whose FRAG field
  // is other than X'00'."
  if (buf[2] !== 0) {
    const why = 'SOCKS5 UDP fragmentation is not supported';
    return new SocksUdpError(SocksUdpDrop.FRAGMENTED, `fragment ${buf[2]} dropped: ${why}`);
  }
  const atyp = buf[3];
  let host: string | null;
  let addrEnd: number;
  if (atyp === AddressType.IPV4) {
    addrEnd = 8;
    if (buf.length < addrEnd + 2) return truncated(buf.length, 'IPv4');
    host = formatIPv4(buf.subarray(4, 8));
  } else if (atyp === AddressType.IPV6) {
    addrEnd = 20;
    if (buf.length < addrEnd + 2) return truncated(buf.length, 'IPv6');
    host = formatIPv6(buf.subarray(4, 20));
  } else if (atyp === AddressType.DOMAIN) {
    if (buf.length < 5) return truncated(buf.length, 'domain');
    addrEnd = 5 + buf[4];
    if (buf.length < addrEnd + 2) return truncated(buf.length, 'domain');
    if (buf[4] === 0) return new SocksUdpError(SocksUdpDrop.BAD_TARGET, 'empty domain name in UDP header');
    host = canonicalDomain(buf.subarray(5, addrEnd));
    if (host === null) return new SocksUdpError(SocksUdpDrop.BAD_TARGET, 'invalid host name in UDP header');
  } else {
    return new SocksUdpError(SocksUdpDrop.ADDRESS_TYPE, `unsupported address type ${atyp} in UDP header`);
  }
  const port = (buf[addrEnd] << 8) | buf[addrEnd + 1];
  if (port === 0) return new SocksUdpError(SocksUdpDrop.BAD_TARGET, 'destination port 0 in UDP header');
  const payload = buf.subarray(addrEnd + 2);
  if (payload.length > maxPayload) {
    const limit = `the ${maxPayload}-byte limit of a tunnelled datagram`;
    return new SocksUdpError(SocksUdpDrop.OVERSIZE, `${payload.length}-byte payload exceeds ${limit}`);
  }
  return { target: { host, port }, payload };
}

/** Header length for `addr`, or null when it is not an IPv4/IPv6 literal or a valid domain name. */
export function udpHeaderLength(addr: Target): number | null {
  if (parseIPv4(addr.host)) return 10;
  if (addr.host.includes(':')) return parseIPv6(addr.host) ? 22 : null;
  const name = addr.host.toLowerCase();
  return isValidDomain(name) && name.length <= 255 ? 7 + name.length : null;
}

/**
 * One datagram to the client: the header naming `source` (where the payload came from), then the payload. An
 * error when `source` is no valid address or the result would exceed `maxDatagram` (the client side's UDP limit).
 */
export function encodeUdpDatagram(
  source: Target,
  payload: Uint8Array,
  maxDatagram = MAX_UDP_PAYLOAD_IPV6,
): Uint8Array | SocksUdpError {
  const headerLength = udpHeaderLength(source);
  if (headerLength === null || !Number.isInteger(source.port) || source.port < 0 || source.port > 0xffff) {
    return new SocksUdpError(SocksUdpDrop.BAD_TARGET, 'reply source is not an address a SOCKS5 header can carry');
  }
  if (headerLength + payload.length > maxDatagram) {
    const what = `${payload.length}-byte reply with its ${headerLength}-byte SOCKS5 header`;
    return new SocksUdpError(SocksUdpDrop.OVERSIZE, `${what} does not fit a ${maxDatagram}-byte UDP datagram`);
  }
  const out = new Uint8Array(headerLength + payload.length);
  const v4 = parseIPv4(source.host);
  if (v4) {
    out[3] = AddressType.IPV4;
    out.set(v4, 4);
  } else if (source.host.includes(':')) {
    out[3] = AddressType.IPV6;
    out.set(parseIPv6(source.host)!, 4);
  } else {
    const name = source.host.toLowerCase();
    out[3] = AddressType.DOMAIN;
    out[4] = name.length;
    for (let i = 0; i < name.length; i++) out[5 + i] = name.charCodeAt(i);
  }
  out[headerLength - 2] = source.port >> 8;
  out[headerLength - 1] = source.port & 0xff;
  out.set(payload, headerLength);
  return out;
}

function truncated(length: number, kind?: string): SocksUdpError {
  const header = kind ? `its SOCKS5 UDP header (${kind} address)` : 'a SOCKS5 UDP header';
  return new SocksUdpError(SocksUdpDrop.TRUNCATED, `${length}-byte datagram is shorter than ${header}`);
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}
