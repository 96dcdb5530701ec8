// Two namespaces for the pinger's tests: `exit` (where the pinger runs) and `world`, joined by a veth pair. Only
// documentation addresses, which the LAN guard treats as public, so the pinger runs without --allow-lan:
//
//   exit 198.51.100.2 ──veth── 198.51.100.1 world (forwarding on, ICMP rate limits off)
//        2001:db8:1::2          2001:db8:1::1
//   world answers:   203.0.113.1 / 2001:db8:2::1 (on its lo)
//   world drops:     203.0.113.128/25, 2001:db8:3::/48 (blackhole: no answer at all → TIMEOUT)
//   world rejects:   192.0.2.0/24, 2001:db8:4::/48 (unreachable routes: ICMP destination unreachable)
//   world forwards:  203.0.113.64/26, 2001:db8:5::/64 back to exit, which does not forward and drops them: a packet
//                    with TTL 1 gets "time exceeded" from world, any other is lost. One router hop for traceroute.
// destroy() removes both namespaces (the veth goes with them), also after a half-built setup.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execIn, type ExecResult } from '../daemon/topology-proc';

/** Namespaces not yet destroyed: removed synchronously if the test process exits first (a crash, a kill). */
const live = new Set<string>();
process.on('exit', () => {
  for (const ns of live) spawnSync('ip', ['netns', 'del', ns]);
});

export const PING_ADDR = {
  world: '198.51.100.1',
  up: '203.0.113.1',
  up6: '2001:db8:2::1',
  blackhole: '203.0.113.200',
  blackhole6: '2001:db8:3::9',
  unreachable: '192.0.2.7',
  unreachable6: '2001:db8:4::7',
  transit: '203.0.113.70',
  transit6: '2001:db8:5::9',
} as const;

export interface PingTopology {
  readonly exit: string;
  readonly world: string;
  /** Runs `cmd args` inside the exit namespace (no shell). */
  exec(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<ExecResult>;
  /** Sets net.ipv4.ping_group_range in the exit namespace (it also governs ICMPv6 ping sockets). */
  pingGroupRange(low: number, high: number): Promise<void>;
  destroy(): Promise<void>;
}

async function must(ns: string, cmd: string, args: string[]): Promise<void> {
  const r = await execIn(ns, cmd, args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${ns || 'host'}) failed: ${r.stderr.trim()}`);
}

export async function createPingTopology(): Promise<PingTopology> {
  const id = randomBytes(3).toString('hex');
  const exit = `zkpe-${id}`;
  const world = `zkpw-${id}`;
  const created: string[] = [];
  const destroy = async () => {
    for (const ns of created.splice(0)) {
      await execIn('', 'ip', ['netns', 'del', ns], { timeoutMs: 10_000 });
      live.delete(ns);
    }
  };
  try {
    for (const ns of [exit, world]) {
      await must('', 'ip', ['netns', 'add', ns]);
      created.push(ns);
      live.add(ns);
      await must(ns, 'ip', ['link', 'set', 'lo', 'up']);
      // No duplicate address detection on the links made below: until the link-local address has passed it,
      // IPv6 neighbour discovery cannot start and the first echoes wait ~1 s (seen as 1 000 ms pings).
      await must(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
    }
    await must(exit, 'ip', ['link', 'add', 'veth-world', 'type', 'veth', 'peer', 'name', 'veth-exit', 'netns', world]);
    await must(exit, 'ip', ['addr', 'add', '198.51.100.2/24', 'dev', 'veth-world']);
    await must(exit, 'ip', ['-6', 'addr', 'add', '2001:db8:1::2/64', 'dev', 'veth-world', 'nodad']);
    await must(exit, 'ip', ['link', 'set', 'veth-world', 'up']);
    await must(exit, 'ip', ['route', 'add', 'default', 'via', '198.51.100.1']);
    await must(exit, 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:1::1']);
    await must(world, 'ip', ['addr', 'add', '198.51.100.1/24', 'dev', 'veth-exit']);
    await must(world, 'ip', ['-6', 'addr', 'add', '2001:db8:1::1/64', 'dev', 'veth-exit', 'nodad']);
    await must(world, 'ip', ['link', 'set', 'veth-exit', 'up']);
    await must(world, 'ip', ['addr', 'add', '203.0.113.1/32', 'dev', 'lo']);
    await must(world, 'ip', ['-6', 'addr', 'add', '2001:db8:2::1/128', 'dev', 'lo']);
    await must(world, 'ip', ['route', 'add', 'blackhole', '203.0.113.128/25']);
    await must(world, 'ip', ['-6', 'route', 'add', 'blackhole', '2001:db8:3::/48']);
    await must(world, 'ip', ['route', 'add', 'unreachable', '192.0.2.0/24']);
    await must(world, 'ip', ['-6', 'route', 'add', 'unreachable', '2001:db8:4::/48']);
    await must(world, 'ip', ['route', 'add', '203.0.113.64/26', 'via', '198.51.100.2']);
    await must(world, 'ip', ['-6', 'route', 'add', '2001:db8:5::/64', 'via', '2001:db8:1::2']);
    // A router sends "unreachable" only when it forwards; rate limits off so every echo gets its error: the
    // per-destination ones (icmp_ratelimit) and, through empty rate masks, also the namespace's global budget
    // (icmp_msgs_per_sec, 1 000/s with bursts of 50), which a whole suite's ICMP could drain at the wrong moment.
    await must(world, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
      'net.ipv4.icmp_ratelimit=0', 'net.ipv6.icmp.ratelimit=0', 'net.ipv4.icmp_ratemask=0', 'net.ipv6.icmp.ratemask=',
      'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.veth-exit.send_redirects=0']);
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    exit,
    world,
    exec: (cmd, args, opts = {}) => execIn(exit, cmd, args, { timeoutMs: opts.timeoutMs ?? 30_000, env: opts.env }),
    pingGroupRange: (low, high) => must(exit, 'sysctl', ['-qw', `net.ipv4.ping_group_range=${low} ${high}`]),
    destroy,
  };
}
