// The kill switch: one nftables table of our own, `inet zks_killswitch`, whose output chain drops everything the
// host sends except loopback, the TUN, the relay endpoints, bypass prefixes and the bits of link plumbing that keep
// the relay path alive. Loaded in one `nft -f -` transaction; removed with `delete table` only — the rest of the
// ruleset (other tables) is never flushed or touched. It outlives a crashed daemon on purpose: `zksd down` removes it.

import { outermost, parseCidr, type Cidr } from './cidr';
import { run, systemError, type RunResult } from './exec';

export const KILLSWITCH_TABLE = 'zks_killswitch';
/** SO_MARK on zksd's relay-link sockets (daemon/relay-connector.ts): only packets with it may reach the relay
 *  endpoints outside the tunnel. "zksd" in ASCII; outside the fwmark bits WireGuard and Tailscale use. */
export const ZKSD_SOCKET_MARK = 0x7a6b7364;

/**
 * Local UDP ports of zksd's direct path (src/direct/, PROTOCOL.md §3.6): libdatachannel's sockets cannot carry the
 * mark, so the kill switch lets out root's UDP from these ports, and only to the peer addresses zksd allowed.
 */
export const DIRECT_PORTS = { min: 40760, max: 40799 } as const;

export interface KillSwitchSpec {
  tun: string;
  relayEndpoints: readonly { address: string; port: number }[];
  /** Direct path peers (address . UDP or TCP port) zksd allowed (HostNetwork.allowDirect). */
  direct?: readonly { address: string; port: number }[];
  /** Interfaces of the default routes: DHCP (broadcast / ff02::1:2 only) may leave through these. */
  uplinks: readonly string[];
  bypass: readonly string[];
  ipv6: 'carry' | 'blackhole';
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
const setElements = (items: readonly string[]): string => (items.length ? ` elements = { ${items.join(', ')} }` : '');

/** The address part of the bypass list as nft interval-set elements (outermost prefixes only: no overlaps). */
export function bypassElements(bypass: readonly string[]): { v4: string[]; v6: string[] } {
  const top = outermost(bypass.map((b) => parseCidr(b)));
  const text = (c: Cidr): string => (c.prefix === (c.family === 4 ? 32 : 128) ? c.address : c.text);
  return { v4: top.filter((c) => c.family === 4).map(text), v6: top.filter((c) => c.family === 6).map(text) };
}

/** The ruleset text, for `nft -f -`. Replacing an existing table is atomic (add + delete + define, one transaction). */
export function killSwitchRuleset(s: KillSwitchSpec): string {
  const relay = (fam: 4 | 6): string[] => s.relayEndpoints
    .filter((e) => e.address.includes(':') === (fam === 6))
    .map((e) => `${e.address} . ${e.port}`);
  const { v4, v6 } = bypassElements(s.bypass);
  const direct = (fam: 4 | 6): string[] => (s.direct ?? [])
    .filter((e) => e.address.includes(':') === (fam === 6))
    .map((e) => `${e.address} . ${e.port}`);
  const directPorts = `${DIRECT_PORTS.min}-${DIRECT_PORTS.max}`;
  // blackhole: IPv6 is not carried, so not even the TUN may take it (the netstack would drop it anyway).
  const tunRule = s.ipv6 === 'carry' ? `oifname "${s.tun}" accept` : `oifname "${s.tun}" meta nfproto ipv4 accept`;
  const uplinks = s.uplinks.length ? `{ ${s.uplinks.map((u) => `"${u}"`).join(', ')} }` : '';
  const dhcp = uplinks ? `
    oifname ${uplinks} ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
    oifname ${uplinks} ip6 daddr ff02::1:2 udp sport 546 udp dport 547 accept` : '';
  return `table inet ${KILLSWITCH_TABLE}
delete table inet ${KILLSWITCH_TABLE}
table inet ${KILLSWITCH_TABLE} {
  set relay4 { type ipv4_addr . inet_service;${setElements(relay(4))} }
  set relay6 { type ipv6_addr . inet_service;${setElements(relay(6))} }
  set direct4 { type ipv4_addr . inet_service;${setElements(direct(4))} }
  set direct6 { type ipv6_addr . inet_service;${setElements(direct(6))} }
  set bypass4 { type ipv4_addr; flags interval;${setElements(v4)} }
  set bypass6 { type ipv6_addr; flags interval;${setElements(v6)} }
  chain output {
    type filter hook output priority filter; policy drop;
    oif "lo" accept
    ${tunRule}
    meta mark ${hex(ZKSD_SOCKET_MARK)} ip daddr . tcp dport @relay4 accept
    meta mark ${hex(ZKSD_SOCKET_MARK)} ip6 daddr . tcp dport @relay6 accept
    meta skuid 0 udp sport ${directPorts} ip daddr . udp dport @direct4 accept
    meta skuid 0 udp sport ${directPorts} ip6 daddr . udp dport @direct6 accept
    meta mark ${hex(ZKSD_SOCKET_MARK)} ip daddr . tcp dport @direct4 accept
    meta mark ${hex(ZKSD_SOCKET_MARK)} ip6 daddr . tcp dport @direct6 accept
    ip daddr @bypass4 accept
    ip6 daddr @bypass6 accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept${dhcp}
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }
}
`;
}
// Why each of the less obvious lines is there:
// - oifname, not oif, for the TUN: the rule must load before the TUN exists and keep matching it if it is recreated.
// - relay: zksd's own link sockets only (their mark), and only to the pinned address . port. A relay address is often
//   shared (a workers.dev address is Cloudflare anycast serving many sites): exempting it for every process would
//   let any application, a browser included, reach those sites with the real address. Setting a mark needs
//   CAP_NET_ADMIN, so an unprivileged process cannot forge it (root can; root can also delete this table). Not
//   `meta skuid 0`: every root process would pass. Not `socket cgroupv2`: zksd's cgroup is systemd's or the
//   container's to choose, and moving zksd out of it breaks the service manager's tracking.
// - direct path: root's UDP from DIRECT_PORTS to the peer address . port zksd allowed for its WebRTC path. Not a
//   mark (libdatachannel opens its own sockets); an unprivileged process matches no skuid 0 rule. Its direct TCP
//   path is zksd's own socket, so it carries the mark, as the relay link's do, to the same allowed address . port.
// - no `ct state established accept`: connections opened before `up` must not keep leaking past the tunnel.
// - NS/NA (hop limit 255 = on-link only): the relay's and on-link bypass's IPv6 next hop must still be resolvable.
// - DHCP (v4 68→67, v6 546→547): without renewals the lease on the real interface expires under a long session and
//   takes the relay path with it. Only out of an uplink and only to the broadcast / All_DHCP_Relay_Agents_and_Servers
//   address: a port-68 datagram to any unicast host would be a way out of the tunnel (port 68 needs no root where
//   ip_unprivileged_port_start is low). A client's unicast RENEW to its server is refused; it broadcasts a
//   REBINDING request at T2 instead (RFC 2131 §4.4.5), which passes. (dhclient and systemd-networkd send their
//   broadcasts through packet sockets, which the output hook does not see at all.)
// - reject, not drop, at the end: every packet here is locally generated, so apps get ECONNREFUSED/EHOSTUNREACH at
//   once (browsers fall back, resolvers move on) instead of hanging until a timeout; nothing reaches the wire.

function nft(input: string, netns?: string, args: string[] = ['-f', '-']): Promise<RunResult> {
  return run('nft', args, { input, netns });
}

export async function killSwitchOn(spec: KillSwitchSpec, netns?: string): Promise<void> {
  const r = await nft(killSwitchRuleset(spec), netns);
  if (r.code !== 0) throw systemError(`nft -f - (table inet ${KILLSWITCH_TABLE})`, r.stderr);
}

/** Deletes our table; true when it was there, false when it was already gone. */
export async function killSwitchOff(netns?: string): Promise<boolean> {
  const r = await nft('', netns, ['delete', 'table', 'inet', KILLSWITCH_TABLE]);
  if (r.code === 0) return true;
  if (/No such file or directory|does not exist/i.test(r.stderr)) return false;
  throw systemError(`nft delete table inet ${KILLSWITCH_TABLE}`, r.stderr);
}

/** Lets zksd's direct path reach `address`:`port` (one element in direct4/direct6). */
export async function killSwitchAllowDirect(address: string, port: number, netns?: string): Promise<void> {
  const set = address.includes(':') ? 'direct6' : 'direct4';
  const r = await nft('', netns, ['add', 'element', 'inet', KILLSWITCH_TABLE, set, `{ ${address} . ${port} }`]);
  if (r.code !== 0) throw systemError(`nft add element inet ${KILLSWITCH_TABLE} ${set}`, r.stderr);
}

/** Moves the bypass sets from `before` to `after` in one transaction (elements are outermost prefixes). */
export async function killSwitchBypass(before: readonly string[], after: readonly string[], netns?: string): Promise<void> {
  const a = bypassElements(before);
  const b = bypassElements(after);
  const lines: string[] = [];
  for (const [set, was, now] of [['bypass4', a.v4, b.v4], ['bypass6', a.v6, b.v6]] as const) {
    const gone = was.filter((x) => !now.includes(x));
    const added = now.filter((x) => !was.includes(x));
    // Deletions first: an outer prefix replacing inner ones would otherwise conflict with them.
    if (gone.length) lines.push(`delete element inet ${KILLSWITCH_TABLE} ${set} { ${gone.join(', ')} }`);
    if (added.length) lines.push(`add element inet ${KILLSWITCH_TABLE} ${set} { ${added.join(', ')} }`);
  }
  if (lines.length === 0) return;
  const r = await nft(lines.join('\n') + '\n', netns);
  if (r.code !== 0) throw systemError('nft -f - (bypass set update)', r.stderr);
}

/** The table's current text (`nft list table`), or undefined when it is absent. */
export async function killSwitchListing(netns?: string): Promise<string | undefined> {
  const r = await nft('', netns, ['list', 'table', 'inet', KILLSWITCH_TABLE]);
  return r.code === 0 ? r.stdout : undefined;
}
