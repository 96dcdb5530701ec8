// A throwaway two-namespace network for the host-network tests; the host's own routes, rules and firewall are never
// touched. `ns` plays the host: veth0 10.80.0.2/24 + fd80::2/64, default routes via the gateway, a TUN-like `zks0`
// (a persistent tuntap nobody reads: routes and nft see a real TUN) with 10.200.0.1/24 + fd80:200::1/64, and an
// unrelated nft table that must survive. `peer` is the gateway (10.80.0.1, fd80::1) and owns the far addresses:
// relay 10.80.9.9 / fd80:9::9, bypass targets 10.80.7.7 / fd80:7::7, 10.80.8.8 (live bypass), all on its lo.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Res {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Res> {
  return new Promise((resolve) => {
    const c = execFile(cmd, args, { timeout: opts.timeoutMs ?? 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    c.stdin?.on('error', () => {}); // the tool may exit without reading stdin
    c.stdin?.end(opts.input ?? '');
  });
}

export async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await sh(cmd, args, { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

export const TUN = 'zks0';
export const UNRELATED_TABLE = `table ip unrelated {
  set keep { type ipv4_addr; elements = { 192.0.2.1, 198.51.100.7 } }
  chain out { type filter hook output priority 10; policy accept; ip daddr @keep accept; }
}
`;

const live = new Set<string>();

export interface Rig {
  ns: string;
  peer: string;
  ip(...args: string[]): Promise<string>;
  exec(cmd: string, args: string[], input?: string): Promise<Res>;
  /** ip route/-6 route/rule/-6 rule and the whole nft ruleset of `ns`: what up→down must leave identical. */
  snapshot(): Promise<string>;
  addTun(): Promise<void>;
  del(): Promise<void>;
}

export async function createRig(): Promise<Rig> {
  const id = randomBytes(4).toString('hex');
  const ns = `zkssys-${id}`;
  const peer = `zkssys-${id}-gw`;
  for (const n of [ns, peer]) {
    await must('ip', ['netns', 'add', n]);
    live.add(n);
  }
  const rig: Rig = {
    ns,
    peer,
    ip: (...args) => must('ip', ['-n', ns, ...args]),
    exec: (cmd, args, input) => sh('ip', ['netns', 'exec', ns, cmd, ...args], { input }),
    async snapshot() {
      const parts = await Promise.all([
        must('ip', ['-n', ns, 'route']), must('ip', ['-n', ns, '-6', 'route']),
        must('ip', ['-n', ns, 'rule']), must('ip', ['-n', ns, '-6', 'rule']),
        must('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset']),
      ]);
      return parts.join('\n----\n');
    },
    async addTun() {
      await rig.ip('tuntap', 'add', 'dev', TUN, 'mode', 'tun');
      await rig.ip('link', 'set', 'dev', TUN, 'up');
      await rig.ip('addr', 'add', '10.200.0.1/24', 'dev', TUN);
      await rig.ip('-6', 'addr', 'add', 'fd80:200::1/64', 'dev', TUN, 'nodad');
    },
    async del() {
      for (const n of [ns, peer]) {
        if (live.delete(n)) await sh('ip', ['netns', 'del', n]);
      }
    },
  };
  try {
    const P = (...a: string[]) => must('ip', ['-n', peer, ...a]);
    await rig.ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', peer);
    await rig.ip('link', 'set', 'lo', 'up');
    await P('link', 'set', 'lo', 'up');
    await rig.ip('addr', 'add', '10.80.0.2/24', 'dev', 'veth0');
    await rig.ip('-6', 'addr', 'add', 'fd80::2/64', 'dev', 'veth0', 'nodad');
    await P('addr', 'add', '10.80.0.1/24', 'dev', 'veth1');
    await P('-6', 'addr', 'add', 'fd80::1/64', 'dev', 'veth1', 'nodad');
    for (const a of ['10.80.9.9/32', '10.80.7.7/32', '10.80.8.8/32']) await P('addr', 'add', a, 'dev', 'lo');
    for (const a of ['fd80:9::9/128', 'fd80:7::7/128']) await P('-6', 'addr', 'add', a, 'dev', 'lo');
    await rig.ip('link', 'set', 'veth0', 'up');
    await P('link', 'set', 'veth1', 'up');
    await rig.ip('route', 'add', 'default', 'via', '10.80.0.1');
    await rig.ip('-6', 'route', 'add', 'default', 'via', 'fd80::1');
    await rig.addTun();
    await must('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], UNRELATED_TABLE);
  } catch (e) {
    await rig.del();
    throw e;
  }
  return rig;
}

/** afterAll safety net: every namespace this process created and has not deleted. */
export async function deleteAllRigs(): Promise<void> {
  for (const n of [...live]) {
    live.delete(n);
    await sh('ip', ['netns', 'del', n]);
  }
}

/** A long-lived child (listener, capture) that is killed when the test ends. */
export interface Child {
  proc: ChildProcess;
  out: string[];
  err(): string;
  waitFor(re: RegExp, timeoutMs?: number, stream?: 'out' | 'err'): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function start(cmd: string, args: string[]): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  let err = '';
  let partial = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    out.push(...lines);
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => proc.on('close', () => r()));
  return {
    proc,
    out,
    err: () => err,
    async waitFor(re, timeoutMs = 10_000, stream = 'out') {
      const end = Date.now() + timeoutMs;
      while (!(stream === 'out' ? out.some((l) => re.test(l)) : re.test(err))) {
        if (Date.now() > end || proc.exitCode !== null) throw new Error(`no ${re} from ${cmd} ${args.join(' ')}: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (partial) out.push(partial), (partial = '');
    },
  };
}
