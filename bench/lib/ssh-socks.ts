// `ssh -D` as a baseline SOCKS5 tunnel measured in the same run as ours (the reference: OpenSSH's client
// with AES-GCM). A throwaway sshd on 127.0.0.1 with its own host and client keys in a 0700 temp dir; the ssh client
// logs in as the current user with that key and opens a dynamic forward. Both are registered child processes
// (procs.ts), so killAll() ends them and the per-connection sshd children with them.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { spawnProc, type Proc } from './procs';

const SSHD = '/usr/sbin/sshd';
/** The cipher of the reference figure (1.9 CPU-s/GB with ssh -D here); the conservative pick for us (AES-128 < AES-256). */
export const SSH_CIPHER = 'aes128-gcm@openssh.com';

export interface SshSocks {
  socksPort: number;
  /** The ssh client (the counterpart of `zks socks5`) and the sshd listener (its session children do the work). */
  pids: { 'ssh -D client': number; sshd: number };
  stop(): Promise<void>;
}

/** Why ssh -D cannot be measured here, or null when sshd, ssh and ssh-keygen are installed. */
export function sshMissing(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} not installed (openssh-server)`;
  for (const tool of ['ssh', 'ssh-keygen']) {
    if (spawnSync(tool, ['-V'], { stdio: 'ignore' }).error) return `${tool} not installed (openssh-client)`;
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function keygen(path: string, comment: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path, '-C', comment], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.trim()}`);
}

export async function startSshSocks(): Promise<SshSocks> {
  const dir = mkdtempSync(join(tmpdir(), 'zks-bench-ssh-'));
  // sshd refuses to start without its privilege-separation directory; made here only if absent, removed after.
  const madeRunDir = !existsSync('/run/sshd');
  if (madeRunDir) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  const started: Proc[] = [];
  const stop = async () => {
    await Promise.all(started.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
    if (madeRunDir) rmSync('/run/sshd', { recursive: true, force: true });
  };
  try {
    keygen(join(dir, 'host_key'), 'zks-bench-host');
    keygen(join(dir, 'client_key'), 'zks-bench-client');
    copyFileSync(join(dir, 'client_key.pub'), join(dir, 'authorized_keys'));
    const [sshdPort, socksPort] = await Promise.all([freePort(), freePort()]);
    const config = join(dir, 'sshd_config');
    writeFileSync(config, [
      `Port ${sshdPort}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, 'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes',
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowTcpForwarding yes',
      `Ciphers ${SSH_CIPHER}`, 'LogLevel INFO', '',
    ].join('\n'));
    const sshd = await spawnProc('sshd', SSHD, ['-D', '-e', '-f', config], /Server listening on 127\.0\.0\.1 port/);
    started.push(sshd.proc);
    const client = await spawnProc('ssh -D', 'ssh', [
      '-v', '-F', '/dev/null', '-N', '-D', `127.0.0.1:${socksPort}`, '-c', SSH_CIPHER, '-i', join(dir, 'client_key'),
      '-p', String(sshdPort), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'ExitOnForwardFailure=yes', `${userInfo().username}@127.0.0.1`,
    ], /Local forwarding listening on 127\.0\.0\.1 port/);
    started.push(client.proc);
    return { socksPort, pids: { 'ssh -D client': client.proc.pid, sshd: sshd.proc.pid }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
