// A real ssh session through the tunnel, in both modes: ssh → nc -X 5 (SOCKS5) → zks client → Worker in workerd
// (→ room → exit peer in relay mode) → sshd, all on loopback. sshd runs as a throw-away instance with its own host key and config in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run, sha256, startStack } from './harness';
import { haveSshTools, startSshd, type Sshd } from '../fixtures/sshd';
import type { LocalStack } from '../../src/cli/start';

const haveTools = haveSshTools && existsSync('/usr/bin/nc');
// CI installs openssh-server and netcat-openbsd (.ci/run); elsewhere a missing tool skips rather than fails.
const describeSsh = haveTools || process.env.CI ? describe : describe.skip;

const stacks: Record<'direct' | 'relay', LocalStack | undefined> = { direct: undefined, relay: undefined };
let sshd: Sshd | undefined;

beforeAll(async () => {
  if (!haveTools && !process.env.CI) return;
  const starting = startSshd();
  starting.catch(() => {}); // awaited below, once the stacks (which afterAll closes) are assigned
  [stacks.direct, stacks.relay] = await Promise.all([startStack(), startStack({ mode: 'relay' })]);
  sshd = await starting;
});

afterAll(async () => {
  sshd?.stop();
  await stacks.direct?.close();
  await stacks.relay?.close();
});

function ssh(stack: LocalStack, command: string, input?: Buffer) {
  return run('ssh', sshd!.sshArgs(`nc -X 5 -x 127.0.0.1:${stack.socks.port} %h %p`, command), { input, timeoutMs: 30_000 });
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
