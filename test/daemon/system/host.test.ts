// HostNetwork against the real kernel, inside throwaway namespaces (see rig.ts): up puts the routes, the kill-switch
// table and DNS in place; live bypass and kill-switch changes; down — and recover() after a simulated crash —
// leave `ip route`, `ip -6 route`, `ip rule`, `nft list ruleset` and resolv.conf exactly as they were.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostNetwork, KILLSWITCH_TABLE, type HostPlan } from '../../../src/daemon/system/index';
import { createRig, deleteAllRigs, must, TUN, UNRELATED_TABLE, type Rig } from './rig';

// Under CI it runs even when it cannot, so that a missing tool fails loudly instead of skipping.
const runnable = (process.getuid?.() === 0 && existsSync('/usr/sbin/nft')) || !!process.env.CI;
const ORIGINAL_RESOLV = '# resolv.conf before zksd\nsearch example.internal\nnameserver 10.80.0.1\noptions edns0\n';

let rig: Rig;
let dir: string;
let hosts: HostNetwork[] = [];

beforeEach(async () => {
  if (!runnable) return;
  rig = await createRig();
  dir = await mkdtemp(join(tmpdir(), 'zkssys-'));
});
afterEach(async () => {
  if (!runnable) return;
  for (const h of hosts) await h.down().catch(() => {});
  hosts = [];
  await rig.del();
  await rm(dir, { recursive: true, force: true });
});
afterAll(deleteAllRigs);

function plan(over: Partial<HostPlan> = {}): HostPlan {
  return {
    tun: TUN,
    relayEndpoints: [{ address: '10.80.9.9', port: 7443 }, { address: 'fd80:9:0::9', port: 7443 }, { address: '10.80.9.9', port: 7443 }],
    bypass: ['10.80.7.0/24', 'fd80:7::/64'],
    killSwitch: true,
    ipv6: 'carry',
    dns: { resolver: '10.200.0.53', resolvConfPath: join(dir, 'resolv.conf') },
    statePath: join(dir, 'run', 'state.json'),
    netns: rig.ns,
    ...over,
  };
}

async function up(p: HostPlan): Promise<HostNetwork> {
  const h = await HostNetwork.up(p);
  hosts.push(h);
  return h;
}

const routeGet = async (addr: string): Promise<string> => rig.ip('route', 'get', addr);
const nftTable = async (): Promise<string> => {
  const r = await rig.exec('nft', ['list', 'table', 'inet', KILLSWITCH_TABLE]);
  return r.code === 0 ? r.stdout : '';
};

describe.skipIf(!runnable)('HostNetwork in a namespace', () => {
  it('up routes everything into the TUN except relay and bypass; down restores routes, rules, nft and resolv.conf exactly', async () => {
    await writeFile(join(dir, 'resolv.conf'), ORIGINAL_RESOLV, { mode: 0o640 });
    const before = await rig.snapshot();
    const h = await up(plan());

    expect(await routeGet('10.80.5.5')).toMatch(/ dev zks0 /);
    expect(await routeGet('200.1.2.3')).toMatch(/ dev zks0 /);
    expect(await routeGet('10.80.9.9')).toMatch(/via 10\.80\.0\.1 dev veth0/);
    expect(await routeGet('10.80.7.7')).toMatch(/via 10\.80\.0\.1 dev veth0/);
    expect(await rig.ip('-6', 'route', 'get', '2001:db8::1')).toMatch(/ dev zks0 /);
    expect(await rig.ip('-6', 'route', 'get', 'fd80:9::9')).toMatch(/via fd80::1 dev veth0/);
    expect(await rig.ip('-6', 'route', 'get', 'fd80:7::7')).toMatch(/via fd80::1 dev veth0/);
    expect(await rig.ip('route', 'show', 'default')).toMatch(/^default via 10\.80\.0\.1 dev veth0/); // untouched (def1)

    const table = await nftTable();
    expect(table).toMatch(/set relay4 \{[^}]*elements = \{ 10\.80\.9\.9 \. 7443 \}/);
    expect(table).toMatch(/set relay6 \{[^}]*elements = \{ fd80:9::9 \. 7443 \}/);
    expect(table).toMatch(/set bypass4 \{[^}]*flags interval[^}]*elements = \{ 10\.80\.7\.0\/24 \}/);
    expect(table).toMatch(/set bypass6 \{[^}]*elements = \{ fd80:7::\/64 \}/);
    expect(table).toMatch(/policy drop;/);
    expect(table).toContain('oifname "zks0" accept');
    expect(await rig.exec('nft', ['list', 'table', 'ip', 'unrelated']).then((r) => r.stdout)).toContain('198.51.100.7');

    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe('# written by zksd; restored by zksd down\nnameserver 10.200.0.53\n');
    const state = JSON.parse(await readFile(plan().statePath!, 'utf8'));
    expect(state).toMatchObject({ version: 1, pid: process.pid, tun: TUN, killSwitch: true, bypass: ['10.80.7.0/24', 'fd80:7::/64'] });
    expect(state.routes.map((r: { key: string }) => r.key)).toEqual(
      ['10.80.9.9', 'fd80:9::9', '10.80.7.0/24', 'fd80:7::/64', '0.0.0.0/1', '128.0.0.0/1', '::/1', '8000::/1']);
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o700);
    expect(h.killSwitch).toBe(true);
    expect(h.bypass).toEqual(['10.80.7.0/24', 'fd80:7::/64']);

    await h.down();
    expect(await rig.snapshot()).toBe(before);
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe(ORIGINAL_RESOLV);
    expect((await stat(join(dir, 'resolv.conf'))).mode & 0o777).toBe(0o640);
    expect(existsSync(plan().statePath!)).toBe(false);
    await h.down(); // idempotent
    expect(await rig.snapshot()).toBe(before);
  });

  it('addBypass/delBypass change the route and the nft set live, nested prefixes included', async () => {
    const before = await rig.snapshot();
    const h = await up(plan({ dns: undefined }));
    expect(await routeGet('10.80.8.8')).toMatch(/ dev zks0 /);

    await h.addBypass('10.80.8.8/24'); // host bits cleared
    expect(h.bypass).toContain('10.80.8.0/24');
    expect(await routeGet('10.80.8.8')).toMatch(/via 10\.80\.0\.1 dev veth0/);
    expect(await nftTable()).toMatch(/set bypass4 \{[^}]*elements = \{ 10\.80\.7\.0\/24, 10\.80\.8\.0\/24 \}/);

    // An enclosing prefix replaces both in the interval set (nft refuses overlaps), the inner ones stay listed.
    await h.addBypass('10.80.0.0/17');
    expect(await nftTable()).toMatch(/set bypass4 \{[^}]*elements = \{ 10\.80\.0\.0\/17 \}/);
    await h.delBypass('10.80.0.0/17');
    expect(await nftTable()).toMatch(/set bypass4 \{[^}]*elements = \{ 10\.80\.7\.0\/24, 10\.80\.8\.0\/24 \}/);

    await h.addBypass('fd80:8::/48');
    expect(await rig.ip('-6', 'route', 'get', 'fd80:8::1')).toMatch(/via fd80::1 dev veth0/);
    await h.delBypass('fd80:8::/48');
    expect(await rig.ip('-6', 'route', 'get', 'fd80:8::1')).toMatch(/ dev zks0 /);

    await h.delBypass('10.80.8.0/24');
    expect(await routeGet('10.80.8.8')).toMatch(/ dev zks0 /);
    expect(await nftTable()).toMatch(/set bypass4 \{[^}]*elements = \{ 10\.80\.7\.0\/24 \}/);
    const state = JSON.parse(await readFile(plan().statePath!, 'utf8'));
    expect(state.bypass).toEqual(['10.80.7.0/24', 'fd80:7::/64']);

    await expect(h.addBypass('0.0.0.0/1')).rejects.toMatchObject({ code: 'ZKS_ERR_CONFIG' });
    await expect(h.addBypass('10.80/16')).rejects.toMatchObject({ code: 'ZKS_ERR_CONFIG' });
    await expect(h.delBypass('10.99.0.0/16')).rejects.toMatchObject({ code: 'ZKS_ERR_CONFIG' });
    await expect(h.addBypass('10.200.0.0/24')).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' }); // the TUN's own prefix
    expect(h.bypass).toEqual(['10.80.7.0/24', 'fd80:7::/64']);

    await h.down();
    expect(await rig.snapshot()).toBe(before);
  });

  it('setKillSwitch switches the table live and down removes only what is there', async () => {
    const before = await rig.snapshot();
    const h = await up(plan({ dns: undefined, killSwitch: false }));
    expect(await nftTable()).toBe('');
    await h.setKillSwitch(true);
    expect(await nftTable()).toMatch(/policy drop/);
    await h.addBypass('10.80.8.0/24');
    await h.setKillSwitch(false);
    expect(await nftTable()).toBe('');
    expect(h.killSwitch).toBe(false);
    await h.setKillSwitch(true); // rebuilt with the current bypass list
    expect(await nftTable()).toMatch(/elements = \{ 10\.80\.7\.0\/24, 10\.80\.8\.0\/24 \}/);
    await h.down();
    expect(await rig.snapshot()).toBe(before);
    await expect(h.setKillSwitch(false)).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
  });

  it('ipv6 blackhole: unreachable /1 routes instead of the TUN, and the TUN accepts IPv4 only', async () => {
    const before = await rig.snapshot();
    const h = await up(plan({ dns: undefined, ipv6: 'blackhole' }));
    expect((await rig.exec('ip', ['-6', 'route', 'get', '2001:db8::1'])).stderr).toMatch(/No route to host/);
    expect(await rig.ip('-6', 'route', 'get', 'fd80:9::9')).toMatch(/via fd80::1 dev veth0/);
    expect(await routeGet('10.80.5.5')).toMatch(/ dev zks0 /);
    expect(await nftTable()).toContain('oifname "zks0" meta nfproto ipv4 accept');
    await h.down();
    expect(await rig.snapshot()).toBe(before);
  });

  it('crash: the TUN vanishes, the kill switch stays; recover() undoes everything from the state file', async () => {
    await writeFile(join(dir, 'resolv.conf'), ORIGINAL_RESOLV);
    const before = await rig.snapshot();
    const p = plan();
    await HostNetwork.up(p); // dropped on purpose: the "daemon" dies without down()
    await rig.ip('link', 'del', TUN);
    expect(await nftTable()).toMatch(/policy drop/);
    expect(await routeGet('10.80.9.9')).toMatch(/via 10\.80\.0\.1 dev veth0/);

    expect(await HostNetwork.recover(p.statePath, rig.ns)).toBe(true);
    await rig.addTun();
    expect(await rig.snapshot()).toBe(before);
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe(ORIGINAL_RESOLV);
    expect(await HostNetwork.recover(p.statePath, rig.ns)).toBe(false);
  });

  it('a second up over a live state file is refused; a failed up leaves nothing behind', async () => {
    const before = await rig.snapshot();
    const h = await up(plan({ dns: undefined }));
    await expect(HostNetwork.up(plan({ dns: undefined }))).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
    await h.down();

    // No IPv4 default route: the IPv4 relay is skipped (unreachable), the IPv6 relay route goes in, then the bypass
    // prefix has no path and the script fails — after the kill switch went in. up undoes all of it.
    await rig.ip('route', 'del', 'default');
    const noDefault = await rig.snapshot();
    await expect(HostNetwork.up(plan({ dns: undefined }))).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM', message: /no route to 10\.80\.7\.0\/24/ });
    expect(await rig.snapshot()).toBe(noDefault);
    expect(existsSync(plan().statePath!)).toBe(false);
    await rig.ip('route', 'add', 'default', 'via', '10.80.0.1');
    expect(await rig.snapshot()).toBe(before);

    await expect(HostNetwork.up(plan({ bypass: ['10.0.0.0/1'] }))).rejects.toMatchObject({ code: 'ZKS_ERR_CONFIG' });
    await expect(HostNetwork.up(plan({ tun: 'no such' }))).rejects.toMatchObject({ code: 'ZKS_ERR_CONFIG' });
    await expect(HostNetwork.up(plan({ relayEndpoints: [{ address: 'relay.example', port: 443 }] })))
      .rejects.toMatchObject({ code: 'ZKS_ERR_CONFIG' });
    await expect(HostNetwork.up(plan({ tun: 'zks9' }))).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM', message: /zks9/ });
    expect(await rig.snapshot()).toBe(before);
  });

  it('the default resolv.conf path inside a namespace is /etc/netns/NS/resolv.conf, restored byte for byte', async () => {
    const hostResolv = await readFile('/etc/resolv.conf').catch(() => Buffer.alloc(0));
    const nsDir = `/etc/netns/${rig.ns}`;
    await must('mkdir', ['-p', nsDir]);
    try {
      await writeFile(`${nsDir}/resolv.conf`, ORIGINAL_RESOLV);
      const h = await up(plan({ dns: { resolver: 'fd80:200::53' }, killSwitch: false }));
      expect((await rig.exec('cat', ['/etc/resolv.conf'])).stdout).toBe('# written by zksd; restored by zksd down\nnameserver fd80:200::53\n');
      await h.down();
      expect((await rig.exec('cat', ['/etc/resolv.conf'])).stdout).toBe(ORIGINAL_RESOLV);
      expect(await readFile(`${nsDir}/resolv.conf`, 'utf8')).toBe(ORIGINAL_RESOLV);
    } finally {
      await rm(nsDir, { recursive: true, force: true });
    }
    expect(await readFile('/etc/resolv.conf').catch(() => Buffer.alloc(0))).toEqual(hostResolv);
  });

  it('the unrelated table is byte-identical after a full cycle', async () => {
    const list = async (): Promise<string> => (await rig.exec('nft', ['list', 'table', 'ip', 'unrelated'])).stdout;
    const first = await list();
    expect(first).toContain('192.0.2.1');
    const h = await up(plan({ dns: undefined }));
    await h.setKillSwitch(false);
    await h.setKillSwitch(true);
    expect(await list()).toBe(first);
    await h.down();
    expect(await list()).toBe(first);
    expect(UNRELATED_TABLE).toContain('unrelated');
  });
});
