// scripts/setup-routes.sh on its own: argument checks (exit 2 before any ip command), the exact lines `up` prints,
// all-or-nothing when a later step fails, and `down` tolerating routes already gone. Real runs use a namespace.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRouteLines, recordLine, SETUP_ROUTES } from '../../../src/daemon/system/routes';
import { createRig, deleteAllRigs, sh, TUN, type Rig } from './rig';

// Under CI it runs even when not root, so that it fails loudly instead of skipping.
const runnable = process.getuid?.() === 0 || !!process.env.CI;
// A namespace that does not exist: should a check ever let a bad call through, `ip -n` fails instead of acting.
const GUARD = ['--netns', `zkssys-none-${randomBytes(3).toString('hex')}`];
const script = (args: string[], input?: string) => sh('bash', [SETUP_ROUTES, ...args], { input });

describe('setup-routes.sh arguments', () => {
  it.each([
    [['up', '--tun', TUN, '--bypass', '0.0.0.0/1'], /shorter than \/2/],
    [['up', '--tun', TUN, '--bypass', '::/0'], /shorter than \/2/],
    [['up', '--tun', TUN, '--bypass', '10.1.2.3/8'], /host bits/],
    [['up', '--tun', TUN, '--bypass', '10.1.2/8'], /not an IPv4 or IPv6/],
    [['up', '--tun', TUN, '--bypass', '10.1.2.0'], /not a CIDR/],
    [['up', '--tun', TUN, '--bypass', '10.1.2.0/33'], /at most \/32/],
    [['up', '--tun', TUN, '--bypass', '10.1.2.0/024'], /not a CIDR/],
    [['up', '--tun', TUN, '--relay', '1.2.3.4.5'], /not an IPv4 or IPv6/],
    [['up', '--tun', TUN, '--relay', 'relay.example'], /not an IPv4 or IPv6/],
    [['up', '--tun', 'bad name!'], /interface name/],
    [['up', '--tun', TUN, '--ipv6', 'maybe'], /carry or blackhole/],
    [['up', '--tun'], /needs a value/],
    [['up', '--frob'], /unknown argument/],
    [['bypass-add', '--tun', TUN], /needs --bypass/],
    [['sideways'], /unknown verb/],
    [[], /missing verb/],
  ])('%j exits 2', async (args, message) => {
    const r = await script(args.length ? [args[0]!, ...GUARD, ...args.slice(1)] : []);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('down validates every record before deleting any', async () => {
    for (const input of ['route tunnel x 5 0.0.0.0/1 dev zks0\n', 'route tunnel x 4\n', 'route tunnel x 4 0.0.0.0/1 dev zks0;reboot\n']) {
      expect((await script(['down', ...GUARD], input)).code).toBe(2);
    }
    const r = await script(['bypass-del', ...GUARD], 'route tunnel 0.0.0.0/1 4 0.0.0.0/1 dev zks0\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/only takes 'route bypass'/);
  });
});

describe('route records', () => {
  it('parse the script lines, skip decisions, and print back the same line', () => {
    const out = 'route relay fd80:9::9 6 fd80:9::9/128 via fd80::1 dev veth0\nskip relay 127.0.0.1 local\n' +
      'route tunnel 0.0.0.0/1 4 0.0.0.0/1 dev zks0\n\n';
    const recs = parseRouteLines(out);
    expect(recs).toEqual([
      { kind: 'relay', key: 'fd80:9::9', family: 6, args: ['fd80:9::9/128', 'via', 'fd80::1', 'dev', 'veth0'] },
      { kind: 'tunnel', key: '0.0.0.0/1', family: 4, args: ['0.0.0.0/1', 'dev', 'zks0'] },
    ]);
    expect(recs.map(recordLine)).toEqual(out.split('\n').filter((l) => l.startsWith('route')));
    expect(() => parseRouteLines('route sideways x 4 a')).toThrow(expect.objectContaining({ code: 'ZKS_ERR_SYSTEM' }));
  });
});

describe.skipIf(!runnable)('setup-routes.sh in a namespace', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await createRig();
  });
  afterEach(async () => {
    await rig.del();
  });
  afterAll(deleteAllRigs);

  it('up prints one line per decision; down deletes exactly those routes', async () => {
    const before = await rig.snapshot();
    const r = await script(['up', '--netns', rig.ns, '--tun', TUN, '--relay', '10.80.9.9', '--relay', '127.0.0.1',
      '--relay', 'fd80:9::9', '--bypass', '10.80.7.0/24', '--bypass', '10.80.0.0/24', '--bypass', 'fd80:7::/64']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([
      'route relay 10.80.9.9 4 10.80.9.9/32 via 10.80.0.1 dev veth0',
      'skip relay 127.0.0.1 local',
      'route relay fd80:9::9 6 fd80:9::9/128 via fd80::1 dev veth0',
      'route bypass 10.80.7.0/24 4 10.80.7.0/24 via 10.80.0.1 dev veth0',
      'skip bypass 10.80.0.0/24 exists', // the on-link prefix is already more specific than /1
      'route bypass fd80:7::/64 6 fd80:7::/64 via fd80::1 dev veth0',
      `route tunnel 0.0.0.0/1 4 0.0.0.0/1 dev ${TUN}`,
      `route tunnel 128.0.0.0/1 4 128.0.0.0/1 dev ${TUN}`,
      `route tunnel ::/1 6 ::/1 dev ${TUN}`,
      `route tunnel 8000::/1 6 8000::/1 dev ${TUN}`,
    ]);
    // bypass-add while the /1 routes exist still finds the gateway that served the prefix before them.
    const b = await script(['bypass-add', '--netns', rig.ns, '--tun', TUN, '--bypass', '10.80.8.0/24']);
    expect(b.stdout).toBe('route bypass 10.80.8.0/24 4 10.80.8.0/24 via 10.80.0.1 dev veth0\n');
    expect((await script(['bypass-del', '--netns', rig.ns], b.stdout)).stdout).toBe('deleted 4 10.80.8.0/24 via 10.80.0.1 dev veth0\n');

    await rig.ip('link', 'del', TUN); // a crashed daemon: its routes went with the TUN
    const d = await script(['down', '--netns', rig.ns], r.stdout);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^absent 6 8000::\/1 dev zks0\n/);
    expect(d.stdout).toMatch(/\ndeleted 4 10\.80\.9\.9\/32 via 10\.80\.0\.1 dev veth0\n$/);
    await rig.addTun();
    expect(await rig.snapshot()).toBe(before);
  });

  it('is all or nothing: a failure after some routes were added deletes them again', async () => {
    await rig.ip('-6', 'route', 'del', 'default');
    const before = await rig.snapshot();
    const r = await script(['up', '--netns', rig.ns, '--tun', TUN, '--relay', '10.80.9.9', '--bypass', 'fd80:7::/64']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/no route to fd80:7::\/64/);
    expect(r.stderr).toMatch(/rolled back 1 route/);
    expect(await rig.snapshot()).toBe(before);

    // Without an IPv6 default route there is nothing to carry: v4 only, said so; an IPv6 relay is skipped.
    const ok = await script(['up', '--netns', rig.ns, '--tun', TUN, '--relay', 'fd80:9::9']);
    expect(ok.stdout).toContain('skip relay fd80:9::9 unreachable');
    expect(ok.stdout).toContain('skip tunnel ::/1 no-ipv6-default-route');
    await script(['down', '--netns', rig.ns], ok.stdout);
    expect(await rig.snapshot()).toBe(before);
  });
});
