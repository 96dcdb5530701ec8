// The kill-switch ruleset text (what `nft -f -` receives), its bypass-set updates, and table removal that leaves
// the rest of the ruleset alone and tolerates a table already gone.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bypassElements, killSwitchBypass, killSwitchListing, killSwitchOff, killSwitchOn, killSwitchRuleset, type KillSwitchSpec,
} from '../../../src/daemon/system/killswitch';
import { createRig, deleteAllRigs, TUN, type Rig } from './rig';

const SPEC: KillSwitchSpec = {
  tun: 'zks0',
  relayEndpoints: [{ address: '203.0.113.5', port: 443 }, { address: '2001:db8::5', port: 443 }, { address: '203.0.113.6', port: 8443 }],
  uplinks: ['eth0', 'wlan0'],
  bypass: ['192.168.0.0/16', '192.168.1.0/24', '10.1.2.3/32', 'fd00::/8'],
  ipv6: 'carry',
};

describe('kill-switch ruleset', () => {
  it('is one replace-the-table transaction with relay, direct path and bypass sets', () => {
    expect(killSwitchRuleset({ ...SPEC, direct: [{ address: '198.51.100.7', port: 50123 }, { address: '2001:db8::7', port: 3478 }] })).toBe(`table inet zks_killswitch
delete table inet zks_killswitch
table inet zks_killswitch {
  set relay4 { type ipv4_addr . inet_service; elements = { 203.0.113.5 . 443, 203.0.113.6 . 8443 } }
  set relay6 { type ipv6_addr . inet_service; elements = { 2001:db8::5 . 443 } }
  set direct4 { type ipv4_addr . inet_service; elements = { 198.51.100.7 . 50123 } }
  set direct6 { type ipv6_addr . inet_service; elements = { 2001:db8::7 . 3478 } }
  set bypass4 { type ipv4_addr; flags interval; elements = { 192.168.0.0/16, 10.1.2.3 } }
  set bypass6 { type ipv6_addr; flags interval; elements = { fd00::/8 } }
  chain output {
    type filter hook output priority filter; policy drop;
    oif "lo" accept
    oifname "zks0" accept
    meta mark 0x7a6b7364 ip daddr . tcp dport @relay4 accept
    meta mark 0x7a6b7364 ip6 daddr . tcp dport @relay6 accept
    meta skuid 0 udp sport 40760-40799 ip daddr . udp dport @direct4 accept
    meta skuid 0 udp sport 40760-40799 ip6 daddr . udp dport @direct6 accept
    meta mark 0x7a6b7364 ip daddr . tcp dport @direct4 accept
    meta mark 0x7a6b7364 ip6 daddr . tcp dport @direct6 accept
    ip daddr @bypass4 accept
    ip6 daddr @bypass6 accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
    oifname { "eth0", "wlan0" } ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
    oifname { "eth0", "wlan0" } ip6 daddr ff02::1:2 udp sport 546 udp dport 547 accept
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }
}
`);
  });

  it('blackhole: empty sets have no elements clause, the TUN takes IPv4 only', () => {
    const text = killSwitchRuleset({ tun: 'zks0', relayEndpoints: [], uplinks: [], bypass: [], ipv6: 'blackhole' });
    expect(text).toContain('set relay6 { type ipv6_addr . inet_service; }');
    expect(text).toContain('set bypass4 { type ipv4_addr; flags interval; }');
    expect(text).toContain('oifname "zks0" meta nfproto ipv4 accept');
    expect(text).not.toMatch(/sport 68|sport 546/); // no uplink known: no DHCP exemption at all
  });

  it('bypass sets hold only the outermost prefixes (nft refuses overlapping intervals)', () => {
    expect(bypassElements(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '172.16.0.0/12', 'fd00::/8', 'fd00:1::/32']))
      .toEqual({ v4: ['10.0.0.0/8', '172.16.0.0/12'], v6: ['fd00::/8'] });
  });
});

// Under CI it runs even when not root, so that it fails loudly instead of skipping.
describe.skipIf(process.getuid?.() !== 0 && !process.env.CI)('kill-switch table in a namespace', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await createRig();
  });
  afterEach(async () => {
    await rig.del();
  });
  afterAll(deleteAllRigs);

  it('loads, re-loads in place, updates sets in one transaction, and is removed alone', async () => {
    const before = await rig.snapshot();
    const spec = { ...SPEC, tun: TUN };
    await killSwitchOn(spec, rig.ns);
    await killSwitchOn(spec, rig.ns); // replacing an existing table is fine
    expect(await killSwitchListing(rig.ns)).toMatch(/elements = \{ 10\.1\.2\.3, 192\.168\.0\.0\/16 \}/);

    // Widening: the new outer prefix swallows 10.1.2.3 — deleted and added in the same transaction.
    await killSwitchBypass(spec.bypass, [...spec.bypass, '10.0.0.0/8'], rig.ns);
    expect(await killSwitchListing(rig.ns)).toMatch(/set bypass4 \{[^}]*elements = \{ 10\.0\.0\.0\/8, 192\.168\.0\.0\/16 \}/);
    await killSwitchBypass([...spec.bypass, '10.0.0.0/8'], ['192.168.1.0/24'], rig.ns);
    expect(await killSwitchListing(rig.ns)).toMatch(/set bypass4 \{[^}]*elements = \{ 192\.168\.1\.0\/24 \}/);
    expect(await killSwitchListing(rig.ns)).toMatch(/set bypass6 \{\s*type ipv6_addr\s*flags interval\s*\}/);

    expect(await killSwitchOff(rig.ns)).toBe(true);
    expect(await killSwitchOff(rig.ns)).toBe(false);
    expect(await killSwitchListing(rig.ns)).toBeUndefined();
    expect(await rig.snapshot()).toBe(before); // the unrelated table included
  });

  it('a ruleset nft refuses is ZKS_ERR_SYSTEM and changes nothing', async () => {
    const before = await rig.snapshot();
    await expect(killSwitchOn({ ...SPEC, tun: 'bad"name' }, rig.ns)).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
    expect(await rig.snapshot()).toBe(before);
  });
});
