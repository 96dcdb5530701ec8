// Target addresses: "host:port" as carried in CONNECT (IPv4, IPv6 or a domain name, RFC 1928 §5 numbering).
// Text <-> bytes conversions and the "is this a local/private address" policy check live here so the Worker,
// the exit peer and the SOCKS front share one implementation. No node:* imports (the Worker bundles this).

import { AddressType, type AddressTypeValue } from './constants';
import { ZksError } from '../errors/zks-error';

export interface Target {
  host: string; // canonical text: dotted IPv4, RFC 5952 IPv6 (no brackets), or a lower-cased domain
  port: number;
}

/** Parses dotted-quad IPv4 text; returns null when it is not exactly four decimal octets. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** Parses IPv6 text (with "::" and an optional embedded IPv4 tail); null when malformed. No zone ids. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45 || text.includes('%')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  // Only the last group of the whole address may be an embedded IPv4 (RFC 4291 §2.2 form 3).
  const groups = (s: string, last: boolean): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (last && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (!head || !tail) return null;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const words = [...head, ...new Array(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  return out;
}

export function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 canonical text: lower case, longest run (>= 2) of zero groups compressed, first run wins. */
export function formatIPv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Host names as accepted in CONNECT: 1-255 bytes of LDH labels (underscore allowed, as real DNS has it). */
const DOMAIN_RE = /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

/** A last label like "1" or "0x7f" makes resolvers read the name as an IPv4 shorthand (127.1, 2130706433). */
const NUMERIC_TLD_RE = /(?:^|\.)(?:\d+|0x[0-9a-f]*)\.?$/;

export function isValidDomain(name: string): boolean {
  // Numeric last labels are refused: they would slip past isLocalOrPrivate and then resolve to an address.
  return DOMAIN_RE.test(name) && !NUMERIC_TLD_RE.test(name);
}

export type HostKind = 'ipv4' | 'ipv6' | 'domain';

export interface EncodedHost {
  type: AddressTypeValue;
  bytes: Uint8Array; // 4 or 16 address bytes, or the ASCII name (without length prefix)
}

/** Classifies and canonicalises user-supplied host text (brackets around IPv6 are stripped). */
export function encodeHost(host: string): EncodedHost {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const v4 = parseIPv4(h);
  if (v4) return { type: AddressType.IPV4, bytes: v4 };
  if (h.includes(':')) {
    const v6 = parseIPv6(h);
    if (v6) return { type: AddressType.IPV6, bytes: v6 };
    throw new ZksError('ZKS_ERR_BAD_ADDRESS', `"${host}" is not a valid IPv6 address`);
  }
  const name = h.toLowerCase();
  if (!isValidDomain(name)) throw new ZksError('ZKS_ERR_BAD_ADDRESS', `"${host}" is not a valid host name`);
  return { type: AddressType.DOMAIN, bytes: new TextEncoder().encode(name) };
}

export function hostKind(host: string): HostKind {
  if (parseIPv4(host)) return 'ipv4';
  if (host.includes(':') && parseIPv6(host)) return 'ipv6';
  return 'domain';
}

/** "host:port" for logs and for connect(); IPv6 gets brackets. */
export function formatTarget(t: Target): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

function v4IsLocal(b: Uint8Array): boolean {
  const [a, b1, b2] = [b[0], b[1], b[2]];
  return (
    a === 0 || a === 10 || a === 127 || (a === 100 && b1 >= 64 && b1 < 128) || (a === 169 && b1 === 254) ||
    (a === 172 && b1 >= 16 && b1 < 32) || (a === 192 && b1 === 168) || (a === 198 && (b1 === 18 || b1 === 19)) ||
    (a === 192 && b1 === 0 && b2 === 0) || // 192.0.0.0/24: IETF protocol assignments (DS-Lite B4, NAT64 discovery)
    a >= 224 // multicast, reserved, broadcast
  );
}

const startsWith = (b: Uint8Array, prefix: readonly number[]) => prefix.every((x, i) => b[i] === x);

/**
 * IPv6 ranges that carry an IPv4 address a translator or tunnel would deliver to: the IPv6 address is as local
 * as the IPv4 inside it. Offsets are where the 4 embedded bytes start.
 */
const V4_EMBEDDING: ReadonlyArray<{ prefix: readonly number[]; at: number }> = [
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], at: 12 }, // ::ffff:0:0/96 IPv4-mapped (RFC 4291 §2.5.5.2)
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0], at: 12 }, // ::ffff:0:0:0/96 IPv4-translated (RFC 2765)
  { prefix: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], at: 12 }, // 64:ff9b::/96 NAT64 well-known (RFC 6052)
  { prefix: [0x20, 0x02], at: 2 }, // 2002::/16 6to4 (RFC 3056)
];

function v6IsLocal(v6: Uint8Array): boolean {
  for (const { prefix, at } of V4_EMBEDDING) if (startsWith(v6, prefix)) return v4IsLocal(v6.subarray(at, at + 4));
  // Teredo (RFC 4380): the client's IPv4 is stored inverted in the last 4 bytes.
  if (startsWith(v6, [0x20, 0x01, 0, 0])) return v4IsLocal(v6.subarray(12).map((x) => x ^ 0xff));
  if (v6.subarray(0, 12).every((x) => x === 0)) return true; // ::/96: ::, ::1, IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
  if (startsWith(v6, [0, 0x64, 0xff, 0x9b, 0, 1])) return true; // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
  if ((v6[0] & 0xfe) === 0xfc) return true; // fc00::/7 unique local
  if (v6[0] === 0xfe && (v6[1] & 0xc0) === 0x80) return true; // fe80::/10 link-local
  if (v6[0] === 0xfe && (v6[1] & 0xc0) === 0xc0) return true; // fec0::/10 site-local (deprecated, still routed inside sites)
  if (v6[0] === 0xff) return true; // multicast
  return false;
}

/**
 * True for loopback, private (RFC 1918, ULA), CGNAT, link-local, site-local, multicast and unspecified addresses,
 * IPv6 forms that embed such an IPv4 (mapped, translated, NAT64, 6to4, Teredo, IPv4-compatible), and for names that
 * obviously mean this host ("localhost", "*.localhost"). Domains that merely resolve to such
 * addresses cannot be seen here; the component that resolves names must check again.
 */
export function isLocalOrPrivate(host: string): boolean {
  const v4 = parseIPv4(host);
  if (v4) return v4IsLocal(v4);
  if (host.includes(':')) {
    const v6 = parseIPv6(host.replace(/^\[|\]$/g, ''));
    if (!v6) return false;
    return v6IsLocal(v6);
  }
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}
