// IP literals and CIDR prefixes for the host-network layer: strict parsing (dotted-quad IPv4 without leading zeros,
// RFC 4291 §2.2 IPv6 text without zone ids), canonical text out (RFC 5952 §4 for IPv6), containment.
// parseCidr normalises host bits (10.1.2.3/8 → 10.0.0.0/8): `ip route` and nft interval sets both refuse unaligned
// prefixes, and a bare address means the host prefix (/32, /128). Errors are ZksError('ZKS_ERR_CONFIG').

import { ZksError } from '../../errors/zks-error';

export interface Cidr {
  family: 4 | 6;
  /** Network address (host bits zero), canonical text. */
  address: string;
  prefix: number;
  /** `${address}/${prefix}` */
  text: string;
}

export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

const bad = (text: string, why: string): ZksError =>
  new ZksError('ZKS_ERR_CONFIG', `invalid address or CIDR ${JSON.stringify(text.slice(0, 80))}: ${why}`);

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    // Leading zeros are refused: inet_aton reads them as octal, so "010.0.0.1" is ambiguous.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // An embedded IPv4 address may only end the text.
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Parses an IPv4 or IPv6 literal; undefined when it is neither. */
export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = text.includes(':') ? parseIpv6(text) : undefined;
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

/** Canonical text: dotted quad, or RFC 5952 (lowercase, first longest run of ≥2 zero groups as "::"). */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

/** Canonical text of an IP literal; throws ZKS_ERR_CONFIG when `text` is not one. */
export function canonicalIp(text: string): string {
  const ip = parseIp(text);
  if (!ip) throw bad(text, 'not an IPv4 or IPv6 address');
  return formatIp(ip);
}

export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw bad(String(text), 'not a string');
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) throw bad(text, 'expected an IPv4 or IPv6 address, optionally followed by /prefix');
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) throw bad(text, `the prefix length must be 0..${max}`);
    prefix = Number(p);
  }
  const bytes = ip.bytes.slice();
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  const address = formatIp({ family: ip.family, bytes });
  return { family: ip.family, address, prefix, text: `${address}/${prefix}` };
}

/** True when `inner` lies inside `outer` (same family, longer or equal prefix, same leading bits). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const a = parseIp(outer.address)!.bytes;
  const b = parseIp(inner.address)!.bytes;
  for (let bit = 0; bit < outer.prefix; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((a[bit >> 3]! & m) !== (b[bit >> 3]! & m)) return false;
  }
  return true;
}

/**
 * The prefixes of `list` not inside another one. Two CIDRs are either nested or disjoint, so these cover the
 * same addresses without overlapping — what an nft interval set accepts ("conflicting intervals" otherwise).
 */
export function outermost(list: readonly Cidr[]): Cidr[] {
  const uniq = [...new Map(list.map((c) => [c.text, c])).values()];
  return uniq.filter((c) => !uniq.some((o) => o.text !== c.text && cidrContains(o, c)));
}
