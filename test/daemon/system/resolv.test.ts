// DNS configuration on temp paths: a regular resolv.conf comes back byte for byte with its mode; a missing one is
// removed again; a foreign symlink is relinked; a symlink into systemd-resolved is left alone and a stand-in
// resolvectl records the calls. Also the state file: atomic write, modes, refusal of anything not a state record.
import { chmod, lstat, mkdtemp, readFile, readlink, readdir, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyDns, backupDns, restoreDns, resolvConfText, type DnsOptions } from '../../../src/daemon/system/resolv';
import { readState, removeState, writeState, type HostState } from '../../../src/daemon/system/state';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zkssys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const opts = (over: Partial<DnsOptions> = {}): DnsOptions =>
  ({ resolver: '10.200.0.53', tun: 'zks0', resolvConfPath: join(dir, 'resolv.conf'), ...over });

async function cycle(o: DnsOptions) {
  const backup = await backupDns(o);
  await applyDns(o, backup);
  return backup;
}

// A resolvectl stand-in: appends its arguments to calls.log; exits 1 with `fail` as stderr when that file exists.
async function fakeResolvectl(): Promise<string> {
  const path = join(dir, 'resolvectl');
  await writeFile(path, `#!/bin/sh\nif [ -f "${dir}/fail" ]; then cat "${dir}/fail" >&2; exit 1; fi\necho "$@" >> "${dir}/calls.log"\n`);
  await chmod(path, 0o755);
  return path;
}

describe('resolv.conf', () => {
  it('a regular file is rewritten in place and restored byte for byte with its mode', async () => {
    const original = Buffer.from([...Buffer.from('# odd bytes, no final newline\nnameserver 10.80.0.1\n'), 0xff, 0xfe, 0x00, 0x41]);
    const path = join(dir, 'resolv.conf');
    await writeFile(path, original);
    await chmod(path, 0o604);
    const inode = (await lstat(path)).ino;
    const b = await cycle(opts());
    expect(b.kind).toBe('file');
    expect(await readFile(path, 'utf8')).toBe('# written by zksd; restored by zksd down\nnameserver 10.200.0.53\n');
    expect((await lstat(path)).ino).toBe(inode); // in place: works on a bind-mounted resolv.conf
    await restoreDns(JSON.parse(JSON.stringify(b))); // as it comes back from the state file
    expect(await readFile(path)).toEqual(original);
    expect((await lstat(path)).mode & 0o7777).toBe(0o604);
  });

  it('a missing file is created and removed again', async () => {
    const b = await cycle(opts({ resolver: 'fd80:200::53' }));
    expect(b).toEqual({ kind: 'absent', path: join(dir, 'resolv.conf') });
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe(resolvConfText('fd80:200::53'));
    await restoreDns(b);
    await expect(lstat(join(dir, 'resolv.conf'))).rejects.toMatchObject({ code: 'ENOENT' });
    await restoreDns(b); // idempotent
  });

  it('a symlink managed by something else is replaced by a file and relinked on restore', async () => {
    await writeFile(join(dir, 'managed.conf'), 'nameserver 192.0.2.53\n');
    await symlink('managed.conf', join(dir, 'resolv.conf'));
    const b = await cycle(opts());
    expect(b).toMatchObject({ kind: 'symlink', target: 'managed.conf' });
    expect((await lstat(join(dir, 'resolv.conf'))).isFile()).toBe(true);
    expect(await readFile(join(dir, 'managed.conf'), 'utf8')).toBe('nameserver 192.0.2.53\n');
    await restoreDns(b);
    expect(await readlink(join(dir, 'resolv.conf'))).toBe('managed.conf');
  });

  it('a symlink into systemd-resolved: resolvectl dns + domain ~. on the TUN, revert on restore', async () => {
    const resolvectl = await fakeResolvectl();
    await symlink('/run/systemd/resolve/stub-resolv.conf', join(dir, 'resolv.conf'));
    const b = await cycle(opts({ resolvectl }));
    expect(b).toMatchObject({ kind: 'resolved', tun: 'zks0' });
    expect(await readlink(join(dir, 'resolv.conf'))).toBe('/run/systemd/resolve/stub-resolv.conf');
    await restoreDns(b, { resolvectl });
    expect(await readFile(join(dir, 'calls.log'), 'utf8')).toBe('dns zks0 10.200.0.53\ndomain zks0 ~.\nrevert zks0\n');
    // The TUN vanished with a crashed daemon: resolved already forgot the link.
    await writeFile(join(dir, 'fail'), 'Failed to resolve interface "zks0": No such device\n');
    await restoreDns(b, { resolvectl });
    await writeFile(join(dir, 'fail'), 'Access denied\n');
    await expect(restoreDns(b, { resolvectl })).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
  });

  it('refuses what it must not touch', async () => {
    await symlink(relative(dir, '/run/systemd/resolve/resolv.conf'), join(dir, 'resolv.conf')); // relative, like /etc's
    const b = await backupDns(opts({ netns: 'zkssys-none' })); // deciding changes nothing
    expect(b.kind).toBe('resolved');
    // resolvectl would reach the host's resolved from inside a test namespace.
    await expect(applyDns(opts({ netns: 'zkssys-none' }), b)).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
    // Inside a namespace the default path is /etc/netns/NS/resolv.conf, never the host's /etc/resolv.conf.
    await expect(backupDns({ resolver: '10.200.0.53', tun: 'zks0', netns: 'zkssys-none-0' }))
      .rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM', message: /\/etc\/netns\/zkssys-none-0\/resolv\.conf/ });
    await mkdir(join(dir, 'adir'));
    await expect(backupDns(opts({ resolvConfPath: join(dir, 'adir') }))).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
  });
});

describe('state file', () => {
  const state: HostState = {
    version: 1, pid: 1234, tun: 'zks0', ipv6: 'carry', relayEndpoints: [{ address: '10.80.9.9', port: 443 }],
    uplinks: ['eth0'], bypass: ['10.80.7.0/24'], killSwitch: true,
    routes: [{ kind: 'tunnel', key: '0.0.0.0/1', family: 4, args: ['0.0.0.0/1', 'dev', 'zks0'] }],
    resolv: { kind: 'absent', path: '/tmp/x' },
  };

  it('is written atomically into a 0700 directory as 0600 and read back', async () => {
    const path = join(dir, 'run', 'zks', 'state.json');
    await writeState(path, state);
    await writeState(path, { ...state, killSwitch: false });
    expect(await readState(path)).toEqual({ ...state, killSwitch: false });
    expect((await lstat(join(dir, 'run', 'zks'))).mode & 0o777).toBe(0o700);
    expect((await lstat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'run', 'zks'))).toEqual(['state.json']); // no tmp file left
    await removeState(path);
    expect(await readState(path)).toBeUndefined();
    await removeState(path);
  });

  it('refuses a file that is not a state record', async () => {
    const path = join(dir, 'state.json');
    for (const text of ['{', '{}', JSON.stringify({ ...state, version: 2 }), JSON.stringify({ ...state, routes: [{ args: 1 }] }),
      JSON.stringify({ ...state, uplinks: ['eth0" accept'] })]) { // an uplink name goes into the nft ruleset
      await writeFile(path, text);
      await expect(readState(path)).rejects.toMatchObject({ code: 'ZKS_ERR_SYSTEM' });
    }
  });
});
