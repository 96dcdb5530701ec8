// ICMP echo messages as the exit's ICMP sockets send and receive them (RFC 792, RFC 4443 §3–4): encode an echo
// request; parse what a socket hands back: an echo reply, an error about one of our echoes (destination
// unreachable, time exceeded: the inner packet tells which echo), or our own request (a dgram socket's error queue
// returns the echo an error is about). Raw IPv4 sockets deliver the IP header first; dgram sockets and every IPv6
// socket start at the ICMP header. parseIcmp never throws: malformed input is a ZksError (ZKS_ERR_MALFORMED_PACKET).

import { ZksError } from '../errors/zks-error';

export const ICMP_HEADER_LEN = 8;
/** Largest echo payload the tunnel carries (1500 − 20 − 8: one unfragmented IPv4 packet on Ethernet). */
export const MAX_ECHO_PAYLOAD = 1472;

const V4 = { ECHO_REPLY: 0, UNREACHABLE: 3, ECHO_REQUEST: 8, TIME_EXCEEDED: 11, PROTO: 1 } as const;
const V6 = { UNREACHABLE: 1, TIME_EXCEEDED: 3, ECHO_REQUEST: 128, ECHO_REPLY: 129, NEXT_HEADER: 58 } as const;

export type IcmpParsed =
  | { kind: 'echo-reply' | 'echo-request'; ident: number; seq: number; payload: Uint8Array; ttl: number; source: string }
  | {
      kind: 'error';
      /** 'unreachable': destination unreachable; 'ttl-exceeded': time (hop limit) exceeded in transit. */
      failure: 'unreachable' | 'ttl-exceeded';
      type: number;
      code: number;
      /** The echo the error is about (from the packet quoted inside it). */
      ident: number;
      seq: number;
      /** Where that echo was going, and who sent the error ('' when the socket gave no IP header). */
      destination: string;
      source: string;
    }
  /** Any other ICMP message, or an error about something that was not an echo: not ours, ignored. */
  | { kind: 'other'; type: number };

const malformed = (why: string) => new ZksError('ZKS_ERR_MALFORMED_PACKET', `ICMP: ${why}`);

/** The Internet checksum (RFC 1071) of `bytes`. */
export function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * An echo request: type 8 (IPv4) or 128 (IPv6), code 0, identifier, sequence, payload. The IPv4 checksum is set
 * here (raw sockets need it; dgram sockets recompute it); the ICMPv6 one covers a pseudo-header the kernel fills.
 */
export function encodeEchoRequest(family: 4 | 6, ident: number, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(ICMP_HEADER_LEN + payload.length);
  const dv = new DataView(out.buffer);
  out[0] = family === 4 ? V4.ECHO_REQUEST : V6.ECHO_REQUEST;
  dv.setUint16(4, ident & 0xffff);
  dv.setUint16(6, seq & 0xffff);
  out.set(payload, ICMP_HEADER_LEN);
  if (family === 4) dv.setUint16(2, internetChecksum(out));
  return out;
}

function ipv4Text(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6Text(b: Uint8Array, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[at + i] << 8) | b[at + i + 1]).toString(16));
  // RFC 5952 §4.2: the longest run (≥ 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The IPv4 header at `at`: its length, TTL, protocol and addresses; a ZksError when it does not fit. */
function ipv4Header(b: Uint8Array, at: number): { len: number; ttl: number; proto: number; src: string; dst: string } | ZksError {
  if (b.length < at + 20) return malformed('truncated IPv4 header');
  if (b[at] >> 4 !== 4) return malformed('not an IPv4 header');
  const len = (b[at] & 0x0f) * 4;
  if (len < 20 || b.length < at + len) return malformed('bad IPv4 header length');
  return { len, ttl: b[at + 8], proto: b[at + 9], src: ipv4Text(b, at + 12), dst: ipv4Text(b, at + 16) };
}

export interface ParseOptions {
  family: 4 | 6;
  /** Raw IPv4 sockets: `data` starts with the IP header. */
  ipHeader: boolean;
}

/** What a socket handed us, classified; see IcmpParsed. */
export function parseIcmp(data: Uint8Array, opts: ParseOptions): IcmpParsed | ZksError {
  let at = 0;
  let ttl = -1;
  let source = '';
  if (opts.family === 4 && opts.ipHeader) {
    const ip = ipv4Header(data, 0);
    if (ip instanceof ZksError) return ip;
    if (ip.proto !== V4.PROTO) return malformed(`IP protocol ${ip.proto} on an ICMP socket`);
    [at, ttl, source] = [ip.len, ip.ttl, ip.src];
  }
  if (data.length < at + ICMP_HEADER_LEN) return malformed(`message of ${data.length - at} bytes, shorter than its header`);
  const type = data[at];
  const code = data[at + 1];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const echo = (kind: 'echo-reply' | 'echo-request'): IcmpParsed => ({
    kind, ident: dv.getUint16(at + 4), seq: dv.getUint16(at + 6), payload: data.subarray(at + ICMP_HEADER_LEN), ttl, source,
  });
  const T = opts.family === 4 ? V4 : V6;
  if (type === T.ECHO_REPLY) return echo('echo-reply');
  if (type === T.ECHO_REQUEST) return echo('echo-request');
  if (type !== T.UNREACHABLE && type !== T.TIME_EXCEEDED) return { kind: 'other', type };

  // An error quotes the packet it is about: its IP header, then (at least) the first 8 bytes of our echo.
  const inner = at + ICMP_HEADER_LEN;
  let quoted: number;
  let destination: string;
  if (opts.family === 4) {
    const ip = ipv4Header(data, inner);
    if (ip instanceof ZksError) return ip;
    if (ip.proto !== V4.PROTO) return { kind: 'other', type };
    [quoted, destination] = [inner + ip.len, ip.dst];
  } else {
    if (data.length < inner + 40) return malformed('truncated IPv6 header in an ICMPv6 error');
    if (data[inner] >> 4 !== 6) return malformed('not an IPv6 header in an ICMPv6 error');
    // Our echoes carry no extension headers: anything else was not sent by us.
    if (data[inner + 6] !== V6.NEXT_HEADER) return { kind: 'other', type };
    [quoted, destination] = [inner + 40, ipv6Text(data, inner + 24)];
  }
  if (data.length < quoted + ICMP_HEADER_LEN) return malformed('the quoted packet is shorter than an ICMP header');
  if (data[quoted] !== T.ECHO_REQUEST) return { kind: 'other', type };
  return {
    kind: 'error',
    failure: type === T.UNREACHABLE ? 'unreachable' : 'ttl-exceeded',
    type,
    code,
    ident: dv.getUint16(quoted + 4),
    seq: dv.getUint16(quoted + 6),
    destination,
    source,
  };
}

const V4_UNREACHABLE = [
  'Destination Net Unreachable', 'Destination Host Unreachable', 'Destination Protocol Unreachable',
  'Destination Port Unreachable', 'Frag needed and DF set', 'Source Route Failed', 'Destination Net Unknown',
  'Destination Host Unknown', 'Source Host Isolated', 'Destination Net Prohibited', 'Destination Host Prohibited',
  'Destination Net Unreachable for Type of Service', 'Destination Host Unreachable for Type of Service',
  'Packet filtered', 'Precedence Violation', 'Precedence Cutoff',
];
const V6_UNREACHABLE = [
  'No route', 'Administratively prohibited', 'Beyond scope of source address', 'Address unreachable',
  'Port unreachable', 'Source address failed ingress/egress policy', 'Reject route to destination',
];

/** What ping(8) of iputils prints for an ICMP error (its pr_icmph texts). */
export function describeIcmpError(family: 4 | 6, type: number, code: number): string {
  if (family === 4) {
    if (type === V4.UNREACHABLE) return V4_UNREACHABLE[code] ?? `Dest Unreachable, Bad Code: ${code}`;
    if (type === V4.TIME_EXCEEDED) return code === 0 ? 'Time to live exceeded' : code === 1 ? 'Frag reassembly time exceeded' : `Time exceeded, Bad Code: ${code}`;
    return `Bad ICMP type: ${type}`;
  }
  if (type === V6.UNREACHABLE) return `Destination unreachable: ${V6_UNREACHABLE[code] ?? `Unknown code ${code}`}`;
  if (type === V6.TIME_EXCEEDED) return `Time exceeded: ${code === 0 ? 'Hop limit' : code === 1 ? 'Defragmentation failure' : `Unknown code ${code}`}`;
  return `Bad ICMP type: ${type}`;
}

/** ICMP type numbers of the two errors, for a dgram socket's queued error (sock_extended_err.ee_type). */
export function errorFailure(family: 4 | 6, type: number): 'unreachable' | 'ttl-exceeded' | null {
  const T = family === 4 ? V4 : V6;
  return type === T.UNREACHABLE ? 'unreachable' : type === T.TIME_EXCEEDED ? 'ttl-exceeded' : null;
}
