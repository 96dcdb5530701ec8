// Three network namespaces for the direct path tests, created and destroyed by the test (nothing on the host
// changes): a relay router in the middle runs the Worker (workerd) and a TURN server (Debian's coturn); client and
// exit peer sit on either side of it, each behind its own veth.
//
//   client 10.80.1.2 ──veth── 10.80.1.1 relay 10.80.2.1 ──veth── 10.80.2.2 exit (+ HTTP origin on 127.0.0.1:8080,
//                                                                                 UDP echo on 127.0.0.1:7007)
//
// The relay forwards between the two sides, so client and exit can reach each other directly (host candidates).
// Named nftables counters in the relay tell which way the bytes went: `tcp` (TCP forwarded between the sides: the
// direct TCP path), `direct` (UDP forwarded between the sides: the WebRTC path), `turn` (UDP to the relay itself:
// TURN) and `room` (TCP to the Worker: the room). block() drops TCP forwarded between the sides ('tcp'), all
// traffic forwarded between them ('direct'), or that and UDP to the relay too ('all': TURN blocked).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateKey } from '../../src/cli/args';
import { execIn, killAllSync, startIn, type NsProcess } from '../daemon/topology-proc';

export const ADDR = { client: '10.80.1.2', relayClientSide: '10.80.1.1', relayExitSide: '10.80.2.1', exit: '10.80.2.2' } as const;
export const ORIGIN_PORT = 8080;
/** A UDP echo server beside the exit, on its loopback. */
export const UDP_ECHO_PORT = 7007;
export const TURN = { port: 3478, user: 'zks', pass: 'turn-secret-1' } as const;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ZKS = join(ROOT, 'bin/zks.js');
const WORLD_SERVICES = join(ROOT, 'test/fixtures/world-services.ts');

export interface DirectTopology {
  readonly ns: { client: string; relay: string; exit: string };
  readonly relayUrl: string;
  readonly key: string;
  readonly room: string;
  exec(ns: 'client' | 'relay' | 'exit', cmd: string, args: string[], timeoutMs?: number): ReturnType<typeof execIn>;
  /** Starts `zks exit-peer` in exit and `zks p2p-client` (SOCKS5 on 127.0.0.1:1080) in client with `args` each. */
  startPeers(exitArgs: string[], clientArgs: string[]): Promise<{ exit: NsProcess; client: NsProcess }>;
  /** A process in `n`, stopped with the topology. */
  spawn(n: 'client' | 'relay' | 'exit', name: string, argv: string[]): NsProcess;
  /** `zks flows --json` against the client's control socket. */
  clientFlows(): Promise<Array<{ protocol: string; path: string; via: string | null; state: string }>>;
  /** `zks status --json` against the client's control socket (its own XDG_RUNTIME_DIR under the topology's dir). */
  clientStatus(): Promise<{ connections: Array<{ path: string; pathRttMs: number; pathRoute: string | null; pathError: string | null }> }>;
  /** Bytes the relay's counters saw so far. */
  counters(): Promise<{ tcp: number; direct: number; turn: number; room: number }>;
  /** Drops TCP between the two sides ('tcp'), everything between them ('direct'), and UDP to the relay too ('all'). */
  block(what: 'tcp' | 'direct' | 'all'): Promise<void>;
  destroy(): Promise<void>;
}

const live = new Set<() => void>();
process.on('exit', () => {
  killAllSync();
  for (const cleanup of live) cleanup();
});

export async function createDirectTopology(opts: { turn?: boolean } = {}): Promise<DirectTopology> {
  const id = randomBytes(3).toString('hex');
  const ns = { client: `zksdc-${id}`, relay: `zksdr-${id}`, exit: `zksde-${id}` };
  const dir = mkdtempSync(join(tmpdir(), `zks-direct-${id}-`));
  const procs: NsProcess[] = [];
  const cleanupSync = () => {
    for (const n of Object.values(ns)) {
      const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', n]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  live.add(cleanupSync);
  const must = async (n: string, cmd: string, args: string[], input?: string) => {
    const r = await execIn(n, cmd, args, { timeoutMs: 10_000, input });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${n || 'host'} failed: ${r.stderr.trim()}`);
    return r.stdout.toString();
  };
  const key = generateKey();
  const room = generateKey();
  const relayUrl = `ws://${ADDR.relayClientSide}:8787`;
  // The client's control socket lives in the topology's dir, away from any other zks of this user.
  const clientEnv = { ...process.env, XDG_RUNTIME_DIR: dir, ZKS_RUN_DIR: join(dir, 'no-zksd') };
  const destroy = async () => {
    if (!live.delete(cleanupSync)) return;
    await Promise.all(procs.map((p) => p.stop()));
    cleanupSync();
  };
  try {
    for (const n of Object.values(ns)) {
      await must('', 'ip', ['netns', 'add', n]);
      await must(n, 'ip', ['link', 'set', 'lo', 'up']);
    }
    for (const [side, relayAddr, peerAddr] of [[ns.client, ADDR.relayClientSide, ADDR.client], [ns.exit, ADDR.relayExitSide, ADDR.exit]] as const) {
      await must('', 'ip', ['link', 'add', 'veth-relay', 'netns', side, 'type', 'veth', 'peer', 'name', side === ns.client ? 'veth-client' : 'veth-exit', 'netns', ns.relay]);
      await must(side, 'ip', ['addr', 'add', `${peerAddr}/24`, 'dev', 'veth-relay']);
      await must(side, 'ip', ['link', 'set', 'veth-relay', 'up']);
      await must(side, 'ip', ['route', 'add', 'default', 'via', relayAddr]);
      const relayDev = side === ns.client ? 'veth-client' : 'veth-exit';
      await must(ns.relay, 'ip', ['addr', 'add', `${relayAddr}/24`, 'dev', relayDev]);
      await must(ns.relay, 'ip', ['link', 'set', relayDev, 'up']);
    }
    await must(ns.relay, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await must(ns.relay, 'nft', ['-f', '-'], [
      'table inet zks_direct_test {',
      '  counter tcp_path {}', '  counter direct {}', '  counter turn {}', '  counter room {}',
      '  chain forward {', '    type filter hook forward priority 0; policy accept;',
      '    meta l4proto tcp counter name "tcp_path"', '    meta l4proto udp counter name "direct"', '  }',
      '  chain input {', '    type filter hook input priority 0; policy accept;',
      '    tcp dport 8787 counter name "room"', '    meta l4proto udp counter name "turn"', '  }',
      '}', '',
    ].join('\n'));

    const ready: Array<Promise<unknown>> = [];
    const worker = startIn(ns.relay, 'zks worker', [process.execPath, ZKS, 'worker', '--listen', `${ADDR.relayClientSide}:8787`, '--key', key]);
    procs.push(worker);
    ready.push(worker.waitLine(/zks worker ready on/, 30_000));
    if (opts.turn) {
      const turn = startIn(ns.relay, 'turnserver', ['turnserver', '-n', '--lt-cred-mech', '--user', `${TURN.user}:${TURN.pass}`, '--realm', 'zks.test',
        '--listening-ip', ADDR.relayClientSide, '--listening-ip', ADDR.relayExitSide, '--relay-ip', ADDR.relayClientSide,
        '--listening-port', String(TURN.port), '--no-tls', '--no-dtls', '--no-cli', '--fingerprint', '--log-file', 'stdout', '--simple-log',
        '--pidfile', join(dir, 'turnserver.pid'), '--db', join(dir, 'turndb'), '--min-port', '50000', '--max-port', '50999']);
      procs.push(turn);
      ready.push(turn.waitLine(/Total General servers/, 15_000));
    }
    const udpEcho = startIn(ns.exit, 'udp echo', ['/usr/bin/python3', '-u', '-c', [
      'import socket', 's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', `s.bind(('127.0.0.1', ${UDP_ECHO_PORT}))`, "print('ready')",
      'while True:', '    d, a = s.recvfrom(65535)', '    s.sendto(d, a)',
    ].join('\n')]);
    procs.push(udpEcho);
    ready.push(udpEcho.waitLine(/ready/, 15_000));
    const origin = startIn(ns.exit, 'origin', [process.execPath, '--import', 'tsx', WORLD_SERVICES, JSON.stringify({ http: { host: '127.0.0.1', port: ORIGIN_PORT } })]);
    procs.push(origin);
    ready.push(origin.waitLine(/"ready":true/, 15_000));
    await Promise.all(ready);
  } catch (e) {
    await destroy();
    throw e;
  }

  const counter = async (name: string) => {
    const out = JSON.parse(await must(ns.relay, 'nft', ['-j', 'list', 'counter', 'inet', 'zks_direct_test', name])) as { nftables: Array<{ counter?: { bytes: number } }> };
    return out.nftables.find((e) => e.counter)!.counter!.bytes;
  };
  return {
    ns, relayUrl, key, room,
    exec: (n, cmd, args, timeoutMs = 120_000) => execIn(ns[n], cmd, args, { timeoutMs }),
    async startPeers(exitArgs, clientArgs) {
      const common = ['--relay', relayUrl, '--key', key, '--room', room];
      const exit = startIn(ns.exit, 'zks exit-peer', [process.execPath, ZKS, 'exit-peer', ...common, '--allow-lan', ...exitArgs]);
      procs.push(exit);
      await exit.waitLine(/zks exit-peer ready/, 30_000);
      const client = startIn(ns.client, 'zks p2p-client', [process.execPath, ZKS, 'p2p-client', ...common, '--listen', '127.0.0.1:1080', ...clientArgs], clientEnv);
      procs.push(client);
      await client.waitLine(/zks p2p-client ready/, 30_000);
      return { exit, client };
    },
    spawn(n, name, argv) {
      const p = startIn(ns[n], name, argv);
      procs.push(p);
      return p;
    },
    async clientFlows() {
      const r = await execIn(ns.client, process.execPath, [ZKS, 'flows', '--json'], { timeoutMs: 30_000, env: clientEnv });
      if (r.code !== 0) throw new Error(`zks flows failed: ${r.stderr}`);
      return JSON.parse(r.stdout.toString()) as Awaited<ReturnType<DirectTopology['clientFlows']>>;
    },
    async clientStatus() {
      const r = await execIn(ns.client, process.execPath, [ZKS, 'status', '--json'], { timeoutMs: 30_000, env: clientEnv });
      if (r.code !== 0) throw new Error(`zks status failed: ${r.stderr}`);
      return JSON.parse(r.stdout.toString()) as Awaited<ReturnType<DirectTopology['clientStatus']>>;
    },
    async counters() {
      return { tcp: await counter('tcp_path'), direct: await counter('direct'), turn: await counter('turn'), room: await counter('room') };
    },
    async block(what) {
      await must(ns.relay, 'nft', ['add', 'rule', 'inet', 'zks_direct_test', 'forward', 'meta', 'l4proto', 'tcp', 'drop']);
      if (what === 'tcp') return;
      await must(ns.relay, 'nft', ['add', 'rule', 'inet', 'zks_direct_test', 'forward', 'meta', 'l4proto', 'udp', 'drop']);
      if (what === 'all') await must(ns.relay, 'nft', ['add', 'rule', 'inet', 'zks_direct_test', 'input', 'meta', 'l4proto', 'udp', 'drop']);
    },
    destroy,
  };
}
