// The directories the control sockets live in, with a real other user (nobody, through setpriv) planting things
// in a sticky 1777 directory that plays /tmp: a proxy never puts its socket into a zks-<uid> dir someone else made
// (or reached through their symlink, or open to others), `zks status` never trusts a socket found there, and
// zksd's run dir gets its mode (0700, or 0710 with group zks) whatever the umask or an older dir said.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupId } from '../../src/control/run-dir';
import { startControlServer, type ControlServer } from '../../src/control/server';
import { ZksError } from '../../src/errors/zks-error';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UID = process.getuid?.() ?? 0;
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
// Planting as another user needs root (setpriv); under CI it runs anyway, so that it fails instead of skipping.
const asRoot = UID === 0 || !!process.env.CI;
const RUN_DIR_MODE = groupId('zks') === null ? 0o700 : 0o710;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(cmd, args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
    const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
    resolve({ code, stdout: String(stdout), stderr: String(stderr) });
  }));
}
const asNobody = (args: string[]) => run('setpriv', [...NOBODY, ...args]);

let tmp: string; // plays /tmp: sticky, world-writable
let server: ControlServer | undefined;
const noop = () => null;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'zks-rundir-'));
  chmodSync(tmp, 0o1777);
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(tmp, { recursive: true, force: true });
});

async function refusal(path: string): Promise<ZksError> {
  const err = await startControlServer(path, noop, { access: 'user' }).then((s) => ((server = s), null), (e: unknown) => e);
  expect(err).toBeInstanceOf(ZksError);
  return err as ZksError;
}

describe.skipIf(!asRoot)('a user\'s private socket dir (/tmp/zks-<uid> without XDG_RUNTIME_DIR)', () => {
  it('used without checking owner: a zks-<uid> dir another user made first is refused, nothing goes into it', async () => {
    const mine = join(tmp, `zks-${UID}`);
    expect((await asNobody(['mkdir', '-m', '0777', mine])).code).toBe(0);
    const err = await refusal(join(mine, 'client.sock'));
    expect(err.code).toBe('ZKS_ERR_CONFIG');
    expect(err.message).toMatch(/belongs to uid 65534/);
    expect(readdirSync(mine)).toEqual([]);
  });

  it('used without checking for a symlink: zks-<uid> pointing at another user\'s dir is refused, never followed', async () => {
    const theirs = join(tmp, 'theirs');
    expect((await asNobody(['mkdir', '-m', '0777', theirs])).code).toBe(0);
    expect((await asNobody(['ln', '-s', theirs, join(tmp, `zks-${UID}`)])).code).toBe(0);
    const err = await refusal(join(tmp, `zks-${UID}`, 'client.sock'));
    expect(err.message).toMatch(/symbolic link/);
    expect(readdirSync(theirs)).toEqual([]);
  });

  it('used without checking mode: the user\'s own zks-<uid> open to others (0755) is refused', async () => {
    const mine = join(tmp, `zks-${UID}`);
    mkdirSync(mine);
    chmodSync(mine, 0o755);
    const err = await refusal(join(mine, 'client.sock'));
    expect(err.message).toMatch(/mode 0755, not 0700/);
    expect(readdirSync(mine)).toEqual([]);
  });

  it('a fresh one is made 0700 whatever the umask, and a symlink to the user\'s own dir is refused as well', async () => {
    const old = process.umask(0o000);
    try {
      server = await startControlServer(join(tmp, `zks-${UID}`, 'client.sock'), noop, { access: 'user' });
    } finally {
      process.umask(old);
    }
    expect(statSync(join(tmp, `zks-${UID}`)).mode & 0o777).toBe(0o700);
    await server.close();
    server = undefined;
    symlinkSync(join(tmp, `zks-${UID}`), join(tmp, 'link'));
    expect((await refusal(join(tmp, 'link', 'client.sock'))).message).toMatch(/symbolic link/);
  });

  it('zks status never trusts a socket in a zks-<uid> dir another user made (their fake proxy status)', async () => {
    const planted = join(tmp, `zks-${UID}`);
    expect((await asNobody(['mkdir', '-m', '0777', planted])).code).toBe(0);
    // The other user's fake proxy: answers status with whatever it likes.
    const fake = `const s = require('node:net').createServer((c) => c.on('data', (d) => {
        const id = JSON.parse(String(d).split('\\n')[0]).id;
        c.write(JSON.stringify({ v: 1, id, ok: true, result: { pid: 1, mode: 'socks5', relay: 'wss://fake.example', listen: '127.0.0.1:1',
          room: null, exitPeer: null, killSwitch: null, bypass: null, uptimeMs: 0, connections: [], flows: 0, bytesUp: 0,
          bytesDown: 0, rateUp: 0, rateDown: 0 } }) + '\\n');
      })).listen(${JSON.stringify(join(planted, 'client.sock'))}, () => { require('node:fs').chmodSync(${JSON.stringify(join(planted, 'client.sock'))}, 0o777); console.log('listening'); });
      setTimeout(() => s.close(), 15000);`;
    const { spawn } = await import('node:child_process');
    const child = spawn('setpriv', [...NOBODY, process.execPath, '-e', fake], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => String(d).includes('listening') && resolve());
        child.on('exit', (code) => reject(new Error(`fake proxy exited (${code})`)));
      });
      // XDG_RUNTIME_DIR stands in for /tmp here (the same base/zks-<uid> path; the host's /tmp stays untouched).
      const env = { ...process.env, XDG_RUNTIME_DIR: tmp, ZKS_RUN_DIR: join(tmp, 'no-zksd') };
      const r = await run(process.execPath, [join(ROOT, 'bin/zks.js'), 'status', '--json'], env);
      expect(r.stdout).not.toMatch(/fake\.example/);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ZKS_ERR_CONFIG|belongs to uid 65534/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe.skipIf(!asRoot)('zks-tui and a planted zks-<uid>', () => {
  it('zks-tui never attaches to a socket in a zks-<uid> dir another user made; it says why', async () => {
    const planted = join(tmp, `zks-${UID}`);
    expect((await asNobody(['mkdir', '-m', '0777', planted])).code).toBe(0);
    // A listening socket there (made by root for brevity: the dir's owner is what counts).
    const { createServer } = await import('node:net');
    const fake = createServer((c) => c.end());
    await new Promise<void>((r) => fake.listen(join(planted, 'client.sock'), r));
    const saved = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = tmp; // stands in for /tmp, as above
    const { ControlFeed } = await import('../../src/tui/feed');
    const { proxyControlPath } = await import('../../src/control/paths');
    const feed = new ControlFeed({ sockets: [proxyControlPath()], retryMaxMs: 200 });
    try {
      feed.start();
      const st = await feed.until((x) => x.failedRounds >= 1, 5_000);
      expect(st.phase).toBe('waiting');
      expect(st.problem).toMatch(/belongs to uid 65534/);
    } finally {
      feed.stop();
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });
});

describe.skipIf(!asRoot)('zksd\'s run dir (/run/zks)', () => {
  it('created 0755 though the code says 0700: the daemon socket\'s dir is 0700 (0710 with group zks), umask or not', async () => {
    const dir = join(tmp, 'run', 'zks');
    const old = process.umask(0o022);
    try {
      server = await startControlServer(join(dir, 'zksd.sock'), noop, { access: 'daemon' });
    } finally {
      process.umask(old);
    }
    expect(statSync(dir).mode & 0o777).toBe(RUN_DIR_MODE);
    expect(statSync(join(dir, 'zksd.sock')).mode & 0o777).toBe(0o660);
  });

  it('an existing run dir left 0755 is narrowed; a symlink or another owner\'s dir is refused', async () => {
    const dir = join(tmp, 'zks');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    server = await startControlServer(join(dir, 'zksd.sock'), noop, { access: 'daemon' });
    expect(statSync(dir).mode & 0o777).toBe(RUN_DIR_MODE);
    await server.close();
    server = undefined;
    symlinkSync(dir, join(tmp, 'link'));
    const viaLink = await startControlServer(join(tmp, 'link', 'zksd.sock'), noop, { access: 'daemon' }).catch((e: unknown) => e);
    expect((viaLink as ZksError).code).toBe('ZKS_ERR_CONFIG');
    expect(lstatSync(join(tmp, 'link')).isSymbolicLink()).toBe(true);
    const theirs = join(tmp, 'theirs');
    expect((await asNobody(['mkdir', theirs])).code).toBe(0);
    const other = await startControlServer(join(theirs, 'zksd.sock'), noop, { access: 'daemon' }).catch((e: unknown) => e);
    expect((other as ZksError).message).toMatch(/belongs to uid 65534/);
    expect(existsSync(join(theirs, 'zksd.sock'))).toBe(false);
  });
});
