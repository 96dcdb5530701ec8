// A real ssh session through the tunnel, in both modes: ssh → nc -X 5 (SOCKS5) → zks client → Worker in workerd
// (→ room → exit peer in relay mode) → sshd, all on loopback. sshd runs as a throw-away instance with its own host key and config in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';

import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, sha256, startStack, freePort } from './harness';
import type { LocalStack } from '../../src/cli/start';

const haveTools = existsSync('/usr/sbin/sshd') && existsSync('/usr/bin/nc') && existsSync('/usr/bin/ssh');
// CI installs openssh-server and netcat-openbsd (.ci/run); elsewhere a missing tool skips rather than fails.
const describeSsh = haveTools || process.env.CI ? describe : describe.skip;

const stacks: Record<'direct' | 'relay', LocalStack | undefined> = { direct: undefined, relay: undefined };
let sshd: ChildProcess | undefined;
let dir = '';
let sshPort = 0;

/** A failure deadline only: sshd normally listens within a few hundred ms. */
const SSHD_START_MS = 30_000;

/**
 * Resolves once sshd (-D -e) logs "Server listening on" (it logs after listen(), so the port accepts from then on);
 * rejects with sshd's stderr if it exits or fails to spawn first, or is not listening after SSHD_START_MS.
 */
function sshdListening(child: ChildProcess): Promise<void> {
  let err = '';
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`sshd ${why}; its stderr:\n${err}`));
    };
    const timer = setTimeout(() => fail(`was not listening after ${SSHD_START_MS} ms`), SSHD_START_MS);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (err.length < 64 * 1024) err += chunk; // keep reading even then: a full pipe would block sshd
      if (/Server listening on /.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('error', (e) => fail(`did not start (${e.message})`));
    child.on('exit', (code, signal) => fail(`exited (${signal ?? `code ${code}`}) before listening`));
  });
}

beforeAll(async () => {
  if (!haveTools && !process.env.CI) return;
  dir = mkdtempSync(join(tmpdir(), 'zks-ssh-'));
  mkdirSync('/run/sshd', { recursive: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'user_key')]);
  sshPort = await freePort();
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${sshPort}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'user_key.pub')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'PermitRootLogin prohibit-password',
    'KbdInteractiveAuthentication no', 'LogLevel INFO', // INFO: the "Server listening on" line
  ].join('\n'));
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const listening = sshdListening(sshd);
  listening.catch(() => {}); // awaited below, once the stacks (which afterAll closes) are assigned
  [stacks.direct, stacks.relay] = await Promise.all([startStack(), startStack({ mode: 'relay' })]);
  await listening;
});

afterAll(async () => {
  sshd?.kill('SIGTERM');
  await stacks.direct?.close();
  await stacks.relay?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ssh(stack: LocalStack, command: string, input?: Buffer) {
  return run('ssh', [
    '-F', '/dev/null', '-i', join(dir, 'user_key'), '-p', String(sshPort),
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
    '-o', `ProxyCommand=nc -X 5 -x 127.0.0.1:${stack.socks.port} %h %p`,
    'root@127.0.0.1', command,
  ], { input, timeoutMs: 30_000 });
}

describeSsh.each(['direct', 'relay'] as const)('ssh through the tunnel (%s mode)', (mode) => {
  it('runs a command and moves 8 MB both ways over ssh via nc -X 5', async () => {
    const stack = stacks[mode]!;
    const hello = await ssh(stack, 'echo hello-through-zks');
    expect(hello.stderr).toBe('');
    expect(hello.stdout.toString()).toBe('hello-through-zks\n');
    const data = randomBytes(8 * 1024 * 1024);
    const up = await ssh(stack, 'sha256sum', data);
    expect(up.code).toBe(0);
    expect(up.stdout.toString().split(' ')[0]).toBe(sha256(data));
    const down = await ssh(stack, 'head -c 8388608 /dev/zero');
    expect(down.stdout.length).toBe(8 * 1024 * 1024);
  });
});
