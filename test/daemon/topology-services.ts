// World-side services of the test topology that need more than one line to start: the world-services process
// (HTTP + DNS + a control channel, test/fixtures/world-services.ts) and a throw-away sshd with its own keys.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorldRequest, WorldServicesConfig } from '../fixtures/world-services';
import { execIn, startIn, type NsProcess } from './topology-proc';

const WORLD_SERVICES = fileURLToPath(new URL('../fixtures/world-services.ts', import.meta.url));

export interface WorldControl {
  readonly ready: Promise<void>;
  /** One request over the control channel; resolves with the reply object. */
  request(req: WorldRequest): Promise<Record<string, unknown>>;
  /** Whether host:port accepts a TCP connection, tried from inside world. */
  probe(host: string, port: number): Promise<boolean>;
}

export function startWorldServices(ns: string, procs: NsProcess[], cfg: WorldServicesConfig): WorldControl {
  const proc = startIn(ns, 'world-services', [process.execPath, '--import', 'tsx', WORLD_SERVICES, JSON.stringify(cfg)]);
  procs.push(proc);
  let nextId = 1;
  const request = async (req: WorldRequest): Promise<Record<string, unknown>> => {
    const id = nextId++;
    const from = proc.lines.length;
    proc.send(JSON.stringify({ id, ...req }));
    return JSON.parse(await proc.waitLine(new RegExp(`^\\{"id":${id}[,}]`), 5000, from)) as Record<string, unknown>;
  };
  return {
    ready: proc.waitLine(/"ready":true/, 15_000).then(() => {}),
    request,
    probe: async (host, port) => (await request({ op: 'probe', host, port })).ok === true,
  };
}

/** sshd on world's addresses, port 22, root login with the key in `dir`/user_key only. */
export async function startSshd(ns: string, dir: string, procs: NsProcess[], world: WorldControl): Promise<void> {
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true }); // privilege separation directory sshd insists on
  for (const k of ['host_key', 'user_key']) {
    const r = await execIn(ns, 'ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'sshd_config'), [
    'Port 22', 'ListenAddress 0.0.0.0', 'ListenAddress ::', `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'user_key.pub')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'PermitRootLogin prohibit-password',
    'KbdInteractiveAuthentication no', 'LogLevel ERROR', '',
  ].join('\n'));
  const sshd = startIn(ns, 'sshd', ['/usr/sbin/sshd', '-D', '-e', '-f', join(dir, 'sshd_config')]);
  procs.push(sshd);
  for (let i = 0; i < 100; i++) {
    if (await world.probe('10.79.0.1', 22)) return;
    if (sshd.exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not start: ${sshd.stderr()}`);
}
