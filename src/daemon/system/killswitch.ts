// The kill switch: one nftables table of our own, `inet zks_killswitch`, whose output chain drops everything the
// host sends except loopback, the TUN, the relay endpoints, bypass prefixes and the bits of link plumbing that keep
// the relay path alive. Loaded in one `nft -f -` transaction; removed with `delete table` only — the rest of the
// ruleset (other tables) is never flushed or touched. It outlives a crashed daemon on purpose: `zksd down` removes it.

import { outermost, parseCidr, type Cidr } from './cidr';
import { run, systemError, type RunResult } from './exec';

export const KILLSWITCH_TABLE = 'zks_killswitch';

export interface KillSwitchSpec {
  tun: string;
  relayEndpoints: readonly { address: string; port: number }[];
  bypass: readonly string[];
  ipv6: 'carry' | 'blackhole';
}

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
  // blackhole: IPv6 is not carried, so not even the TUN may take it (the netstack would drop it anyway).
  const tunRule = s.ipv6 === 'carry' ? `oifname "${s.tun}" accept` : `oifname "${s.tun}" meta nfproto ipv4 accept`;
  return `table inet ${KILLSWITCH_TABLE}
delete table inet ${KILLSWITCH_TABLE}
table inet ${KILLSWITCH_TABLE} {
  set relay4 { type ipv4_addr . inet_service;${setElements(relay(4))} }
  set relay6 { type ipv6_addr . inet_service;${setElements(relay(6))} }
  set bypass4 { type ipv4_addr; flags interval;${setElements(v4)} }
  set bypass6 { type ipv6_addr; flags interval;${setElements(v6)} }
  chain output {
    type filter hook output priority filter; policy drop;
    oif "lo" accept
    ${tunRule}
    ip daddr . tcp dport @relay4 accept
    ip6 daddr . tcp dport @relay6 accept
    ip daddr @bypass4 accept
    ip6 daddr @bypass6 accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
    udp sport 68 udp dport 67 accept
    meta nfproto ipv6 udp sport 546 udp dport 547 accept
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }
}
`;
}
// Why each of the less obvious lines is there:
// - oifname, not oif, for the TUN: the rule must load before the TUN exists and keep matching it if it is recreated.
// - no `ct state established accept`: connections opened before `up` must not keep leaking past the tunnel.
// - NS/NA (hop limit 255 = on-link only): the relay's and on-link bypass's IPv6 next hop must still be resolvable.
// - DHCP (v4 68→67, v6 546→547): without renewals the lease on the real interface expires under a long session and
//   takes the relay path with it.
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
