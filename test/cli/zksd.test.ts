// The zksd / zks daemon commands as a user meets them without a running daemon: help, bad flags and CIDRs, not
// root, which settings a root zksd trusts, route changes saved for the next `zksd up`, status/down with nothing running. Each run gets its own
// run/config dirs (ZKS_RUN_DIR, ZKS_ZKSD_CONFIG_DIR), so nothing touches /run/zks or /etc/zks.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleForNobody } from '../fixtures/as-nobody';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'zks-zksd-cli-'));
// XDG_RUNTIME_DIR too: `zks status` falls back to a running proxy's socket there (/tmp/zks-<uid> without it).
const env = {
  ...process.env, ZKS_RUN_DIR: join(dir, 'run'), ZKS_ZKSD_CONFIG_DIR: join(dir, 'etc'), ZKS_CONFIG_DIR: join(dir, 'cfg'),
  XDG_RUNTIME_DIR: join(dir, 'xdg'),
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The cases that need root run under CI even when not root, so that they fail there instead of skipping.
const asRoot = process.getuid?.() === 0 || !!process.env.CI;

/** `nocaps`: root without capabilities (can still read a checkout only root may read). */
function cli(bin: 'zks' | 'zksd', args: string[], as: 'root' | 'nocaps' = 'root'): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [join(ROOT, `bin/${bin}.js`), ...args];
  const drop = ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all'];
  const [cmd, full] = as === 'root' ? [process.execPath, argv] : ['setpriv', [...drop, process.execPath, ...argv]];
  return new Promise((resolve) => {
    execFile(cmd, full, { env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe('zksd and zks daemon commands without a daemon', () => {
  it('zksd help lists up/down/status and the flags', async () => {
    const r = await cli('zksd', ['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sudo zksd up/);
    expect(r.stdout).toMatch(/--no-kill-switch/);
    expect(r.stdout).toMatch(/zksd down/);
  });

  it('unknown flags and commands are clear errors', async () => {
    const a = await cli('zksd', ['up', '--bogus']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/zksd: .*bogus/);
    const b = await cli('zksd', ['sideways']);
    expect(b.stderr).toMatch(/unknown command "sideways"/);
  });

  // `nobody` may not be able to read the checkout (a clone under a 0700 mktemp folder): zksd runs from a bundle
  // in a world-readable temp dir.
  it.skipIf(!asRoot)('zksd up as an unprivileged user says it needs root', async () => {
    const zksd = await bundleForNobody('src/cli/zksd.ts');
    try {
      const r = await zksd.run(['up', '--relay', 'ws://127.0.0.1:9', '--key', 'x'], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/needs root.*sudo zksd up.*\[ZKS_ERR_TUN\]/);
    } finally {
      zksd.cleanup();
    }
  });

  it.skipIf(!asRoot)('zksd up as root without CAP_NET_ADMIN says it needs it', async () => {
    const r = await cli('zksd', ['up', '--relay', 'ws://127.0.0.1:9', '--key', 'x'], 'nocaps');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs root \(CAP_NET_ADMIN.*sudo zksd up.*\[ZKS_ERR_TUN\]/);
  });

  it('bad options are refused before anything changes', async () => {
    const key = (await cli('zks', ['keygen'])).stdout.trim();
    const mtu = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--mtu', '70000']);
    expect(mtu.stderr).toMatch(/--mtu must be .*\[ZKS_ERR_CONFIG\]/);
    const v6 = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--ipv6', 'maybe']);
    expect(v6.stderr).toMatch(/--ipv6 must be carry or blackhole/);
    const addr = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--address', '100.77.0.1/30']);
    expect(addr.stderr).toMatch(/--address must be an IPv4 CIDR of \/24 or wider/);
    const weakRoom = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--room', 'my room passphrase']);
    expect(weakRoom.stderr).toMatch(/32 random bytes.*`zks keygen`.*\[ZKS_ERR_CONFIG\]/s);
    const lonelyExitId = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--exit-id', key]);
    expect(lonelyExitId.stderr).toMatch(/--exit-id .* needs --room/);
    const badExitId = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--room', key, '--exit-id', 'short']);
    expect(badExitId.stderr).toMatch(/exit id must be 32 bytes.*`zks keygen --exit`/);
  });

  it.skipIf(!asRoot)('zksd up with an unreachable relay fails before touching the host', async () => {
    const key = (await cli('zks', ['keygen'])).stdout.trim();
    const r = await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9', '--key', key, '--name', 'zkscli0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/relay|127\.0\.0\.1:9/);
    expect(r.stderr).toMatch(/\[ZKS_ERR_RELAY_UNREACHABLE\]/);
    const links = await new Promise<string>((res) => execFile('ip', ['-br', 'link'], (_e, out) => res(String(out))));
    expect(links).not.toContain('zkscli0');
  });

  // The trust rule (settings/daemon-settings.ts): a root zksd reads its flags and root's zksd.json, never the
  // invoking user's `zks config`, which that user can write.
  it.skipIf(!asRoot)('zksd up as root ignores the user\'s zks config; zksd config is what it reads', async () => {
    const key = (await cli('zks', ['keygen'])).stdout.trim();
    expect((await cli('zks', ['config', 'set', 'relay', 'ws://127.0.0.1:9'])).code).toBe(0);
    expect((await cli('zks', ['config', 'set', 'key', key])).code).toBe(0);
    const ignored = await cli('zksd', ['up', '--foreground', '--name', 'zkscli1']);
    expect(ignored.code).toBe(1);
    expect(ignored.stderr).toMatch(/no relay: pass --relay URL or run `sudo zksd config set relay URL`.*never reads a user's `zks config`.*\[ZKS_ERR_CONFIG\]/);
    expect((await cli('zksd', ['up', '--foreground', '--relay', 'ws://127.0.0.1:9'])).stderr).toMatch(/no key: pass --key KEY/);

    expect((await cli('zksd', ['config', 'set', 'relay', 'ws://127.0.0.1:9'])).code).toBe(0);
    expect((await cli('zksd', ['config', 'set', 'key', key])).code).toBe(0);
    const list = await cli('zksd', ['config', 'list']);
    expect(list.stdout).toBe('relay=ws://127.0.0.1:9\nkey=(set, hidden)\n');
    expect((await cli('zksd', ['config', 'path'])).stdout.trim()).toBe(join(dir, 'etc', 'zksd.json'));
    expect(statSync(join(dir, 'etc', 'zksd.json')).mode & 0o777).toBe(0o600);
    // Now it reads relay and key from zksd.json: it gets as far as dialling the (closed) relay.
    const used = await cli('zksd', ['up', '--foreground', '--name', 'zkscli1']);
    expect(used.stderr).toMatch(/\[ZKS_ERR_RELAY_UNREACHABLE\]/);
    // A saved exit-id pins the saved room: it is read (a bad one is refused before dialling), and needs a room.
    expect((await cli('zksd', ['config', 'set', 'exit-id', 'short'])).code).toBe(0);
    expect((await cli('zksd', ['up', '--foreground', '--name', 'zkscli1'])).stderr).toMatch(/--exit-id pins the exit peer of a room: it needs --room/);
    expect((await cli('zksd', ['config', 'set', 'room', key])).code).toBe(0);
    expect((await cli('zksd', ['up', '--foreground', '--name', 'zkscli1'])).stderr).toMatch(/exit id must be 32 bytes.*\[ZKS_ERR_CONFIG\]/);
    expect((await cli('zksd', ['config', 'unset', 'exit-id'])).code).toBe(0);
    expect((await cli('zksd', ['config', 'unset', 'room'])).code).toBe(0);

    // A zksd.json that someone other than root could write is refused, not read.
    chmodSync(join(dir, 'etc', 'zksd.json'), 0o666);
    try {
      const refused = await cli('zksd', ['up', '--foreground', '--name', 'zkscli1']);
      expect(refused.stderr).toMatch(/zksd\.json is not trusted: zksd runs as root.*mode 666.*\[ZKS_ERR_CONFIG\]/);
    } finally {
      chmodSync(join(dir, 'etc', 'zksd.json'), 0o600);
      await cli('zksd', ['config', 'unset', 'relay']);
      await cli('zksd', ['config', 'unset', 'key']);
    }
  });

  it('zks route: --bypass required, CIDRs checked, saved while zksd is not running', async () => {
    const noFlag = await cli('zks', ['route', 'add', '10.0.0.0/8']);
    expect(noFlag.stderr).toMatch(/needs --bypass .* or --via worker\|exit/);
    const bad = await cli('zks', ['route', 'add', '10.0.0.300/8', '--bypass']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\[ZKS_ERR_CONFIG\]/);
    const wide = await cli('zks', ['route', 'add', '0.0.0.0/1', '--bypass']);
    expect(wide.stderr).toMatch(/\/1|shorter|prefix/i);
    const add = await cli('zks', ['route', 'add', '10.1.2.3/8', '--bypass']);
    expect(add.stdout).toMatch(/zksd is not running: saved bypass 10\.0\.0\.0\/8/);
    const list = await cli('zks', ['route', 'list']);
    expect(list.stdout).toContain('10.0.0.0/8 bypass');
    expect(list.stderr).toMatch(/apply at the next `zksd up`/);
    expect(JSON.parse(readFileSync(join(dir, 'etc', 'zksd.json'), 'utf8'))).toEqual({ bypass: ['10.0.0.0/8'] });
    const del = await cli('zks', ['route', 'del', '10.0.0.0/8']);
    expect(del.stdout).toMatch(/removed bypass 10\.0\.0\.0\/8/);
    expect((await cli('zks', ['route', 'list'])).stdout).toContain('no bypass routes');
  });

  it('zks status / zks flows / zksd down with nothing running', async () => {
    const st = await cli('zks', ['status']);
    expect(st.code).toBe(1);
    expect(st.stderr).toMatch(/zksd is not running .*sudo zksd up.*\[ZKS_ERR_NOT_RUNNING\]/);
    const fl = await cli('zks', ['flows']);
    expect(fl.stderr).toMatch(/\[ZKS_ERR_NOT_RUNNING\]/);
    if (asRoot) {
      const down = await cli('zksd', ['down']);
      expect(down.code).toBe(0);
      expect(down.stdout).toMatch(/nothing to undo/);
    }
  });
});
