// What a Worker's connect() cannot reach: Cloudflare's own network (its published ranges, and every site behind
// it, which fails only when connect() is tried) and port 25. The Worker refuses these up front with FORBIDDEN and
// a message that names the cause; a client with an exit peer sends them there instead (docs/PROTOCOL.md §9.1,
// README "Automatic exit choice"). No node:* imports: the Worker bundles this.

import { parseIPv4, parseIPv6 } from './address';

/** https://www.cloudflare.com/ips/ (the list changes rarely), and 1.1.1.0/24 + 1.0.0.0/24 (its public resolver). */
export const CLOUDFLARE_RANGES: readonly string[] = [
  '173.245.48.0/20', '103.21.244.0/22', '103.22.200.0/22', '103.31.4.0/22', '141.101.64.0/18', '108.162.192.0/18',
  '190.93.240.0/20', '188.114.96.0/20', '197.234.240.0/22', '198.41.128.0/17', '162.158.0.0/15', '104.16.0.0/13',
  '104.24.0.0/14', '172.64.0.0/13', '131.0.72.0/22', '1.1.1.0/24', '1.0.0.0/24',
  '2400:cb00::/32', '2606:4700::/32', '2803:f800::/32', '2405:b500::/32', '2405:8100::/32', '2a06:98c0::/29',
  '2c0f:f248::/32',
];

/** Ports connect() refuses ("Connections to port 25 are prohibited"). */
export const WORKER_BLOCKED_PORTS: ReadonlySet<number> = new Set([25]);

export interface AddressRange {
  text: string;
  bytes: Uint8Array;
  prefix: number;
}

/** Parses "ADDRESS/PREFIX" (or a bare address: the host prefix); null when it is not one. */
export function parseAddressRange(text: string): AddressRange | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIPv4(addr) ?? (addr.includes(':') ? parseIPv6(addr) : null);
  if (!bytes) return null;
  const bits = bytes.length * 8;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return null;
  return { text: slash < 0 ? `${text}/${bits}` : text, bytes, prefix: Number(prefixText) };
}

/** Whether `address` (bytes of the same family) lies inside `range`. */
export function rangeContains(range: AddressRange, address: Uint8Array): boolean {
  if (address.length !== range.bytes.length) return false;
  const whole = range.prefix >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== range.bytes[i]) return false;
  const rest = range.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[whole]! & mask) === (range.bytes[whole]! & mask);
}

const CLOUDFLARE = CLOUDFLARE_RANGES.map((r) => parseAddressRange(r)!);

/**
 * Every refusal of this kind starts with this text: a client retries through its exit peer only these (never a
 * private-address refusal, which is policy, not reach). Older Workers send none, and get no such retry.
 */
export const WORKER_UNREACHABLE_PREFIX = 'not reachable from a Worker: ';

export function isWorkerUnreachable(message: string): boolean {
  return message.startsWith(WORKER_UNREACHABLE_PREFIX);
}

/** IPv6 forms that carry an IPv4 address (mapped, NAT64 well-known, 6to4): where the 4 bytes start. */
const V4_IN_V6: ReadonlyArray<{ prefix: readonly number[]; at: number }> = [
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], at: 12 },
  { prefix: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], at: 12 },
  { prefix: [0x20, 0x02], at: 2 },
];

/** The address bytes of an IP literal (IPv6 with or without brackets); null for a name. */
export function literalBytes(host: string): Uint8Array | null {
  return parseIPv4(host) ?? (host.includes(':') ? parseIPv6(host.replace(/^\[|\]$/g, '')) : null);
}

/** The first of `ranges` holding `host` (an IP literal, or an IPv6 form of an IPv4 one), or null. */
export function matchingRange(host: string, ranges: readonly AddressRange[]): AddressRange | null {
  const bytes = literalBytes(host);
  if (!bytes) return null;
  const forms = [bytes];
  if (bytes.length === 16) {
    for (const { prefix, at } of V4_IN_V6) if (prefix.every((b, i) => bytes[i] === b)) forms.push(bytes.subarray(at, at + 4));
  }
  for (const form of forms) {
    const hit = ranges.find((r) => rangeContains(r, form));
    if (hit) return hit;
  }
  return null;
}

/**
 * Why a Worker cannot connect to host:port (a message starting with WORKER_UNREACHABLE_PREFIX), or null when
 * nothing known stops it. `host` is an IP literal or a name (a name is only checked for its port: whether it is
 * behind Cloudflare shows when it resolves). `blocked` are the relay operator's extra ranges (ZKS_BLOCKED_RANGES).
 */
export function workerCannotReach(host: string, port: number, blocked: readonly AddressRange[] = []): string | null {
  const why = (text: string) => `${WORKER_UNREACHABLE_PREFIX}${text}`;
  if (WORKER_BLOCKED_PORTS.has(port)) return why(`port ${port} (SMTP) is closed to Workers' connect()`);
  const cf = matchingRange(host, CLOUDFLARE);
  if (cf) return why(`${host} is Cloudflare's own address (${cf.text}), which a Worker's connect() cannot reach`);
  const own = matchingRange(host, blocked);
  if (own) return why(`${host} is in ${own.text}, which this relay refuses (ZKS_BLOCKED_RANGES)`);
  return null;
}

/** workerCannotReach's answer for one of the addresses `name` resolved to, said of the name. */
export function viaName(name: string, why: string): string {
  return `${WORKER_UNREACHABLE_PREFIX}${name} → ${why.slice(WORKER_UNREACHABLE_PREFIX.length)}`;
}

/**
 * connect() failures that name the cause. Not "proxy request failed, cannot connect to the specified address":
 * workerd says that of every failed connect (a refused port, an unknown name), Cloudflare's network included, so
 * only the addresses of the name can tell (resolve.ts).
 */
export function isCloudflareRefusal(message: string): boolean {
  return /TCP Loop detected|port 25 are prohibited/i.test(message);
}
