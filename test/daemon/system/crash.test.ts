// A real crash: a child process inside the namespace opens a real TUN, applies the host network and is SIGKILLed.
// The TUN (and the routes into it) die with it; the kill switch, the relay/bypass routes and DNS stay. The next
// `up` sees the dead pid in the state file, undoes that session first, and its own down restores the baseline.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostNetwork, KILLSWITCH_TABLE } from '../../../src/daemon/system/index';
import { createRig, deleteAllRigs, sh, start, TUN, type Child, type Rig } from './rig';

const addonBuilt = existsSync(new URL('../../../src/daemon/tun/build/Release/zks_tun.node', import.meta.url));
// Under CI it runs even when it cannot, so that a missing tool fails loudly instead of skipping.
const runnable = (process.getuid?.() === 0 && existsSync('/dev/net/tun') && existsSync('/usr/sbin/nft') && addonBuilt) || !!process.env.CI;
const ORIGINAL = 'nameserver 10.80.0.1\n';

let rig: Rig;
let dir: string;
let child: Child | undefined;

beforeEach(async () => {
  if (!runnable) return;
  rig = await createRig();
  await rig.ip('link', 'del', TUN); // the child opens a real, non-persistent one
  dir = await mkdtemp(join(tmpdir(), 'zkssys-'));
});
afterEach(async () => {
  if (!runnable) return;
  await child?.stop();
  child = undefined;
  await rig.del();
  await rm(dir, { recursive: true, force: true });
});
afterAll(deleteAllRigs);

describe.skipIf(!runnable)('crash', () => {
  it('SIGKILL leaves the kill switch up; the next up recovers from the state file, its down restores the baseline', async () => {
    const statePath = join(dir, 'state.json');
    const resolv = join(dir, 'resolv.conf');
    await writeFile(resolv, ORIGINAL);
    const noTun = await rig.snapshot();

    child = start('ip', ['netns', 'exec', rig.ns, process.execPath, '--import', 'tsx',
      'test/daemon/system/fixtures/crash-child.ts', statePath, resolv]);
    await child.waitFor(/^up$/, 30_000);
    const pid = JSON.parse(await readFile(statePath, 'utf8')).pid;
    expect(pid).toBe(child.proc.pid);
    expect(await rig.ip('route', 'get', '10.80.5.5')).toMatch(/ dev zks0 /);

    await child.stop('SIGKILL');
    expect((await sh('ip', ['-n', rig.ns, 'link', 'show', TUN])).code).not.toBe(0); // the TUN died with it
    expect((await rig.exec('nft', ['list', 'table', 'inet', KILLSWITCH_TABLE])).stdout).toMatch(/policy drop/);
    expect(await rig.ip('route', 'get', '10.80.5.5')).toMatch(/via 10\.80\.0\.1 dev veth0/); // only the kill switch holds
    expect(await rig.ip('route', 'get', '10.80.9.9')).toMatch(/via 10\.80\.0\.1 dev veth0/);
    expect(await readFile(resolv, 'utf8')).toContain('nameserver 10.200.0.53');

    await rig.addTun();
    const h = await HostNetwork.up({
      tun: TUN, relayEndpoints: [{ address: '10.80.9.9', port: 7443 }], bypass: [], killSwitch: false, ipv6: 'carry',
      dns: { resolver: '10.200.0.54', resolvConfPath: resolv }, statePath, netns: rig.ns,
    });
    expect(JSON.parse(await readFile(statePath, 'utf8')).pid).toBe(process.pid);
    expect((await rig.exec('nft', ['list', 'table', 'inet', KILLSWITCH_TABLE])).code).not.toBe(0); // old table gone
    expect(await readFile(resolv, 'utf8')).toContain('nameserver 10.200.0.54');
    await h.down();
    expect(await readFile(resolv, 'utf8')).toBe(ORIGINAL);
    expect(existsSync(statePath)).toBe(false);
    await rig.ip('link', 'del', TUN);
    expect(await rig.snapshot()).toBe(noTun); // both sessions' relay/bypass routes and the kill switch are gone
  });
});
