// The namespace topology for zksd end-to-end tests. Namespaces are ours alone (`zksw-<id>` world, `zksc-<id>`
// client, `zksa-<id>` app with the impairment line); veth pairs are created directly inside them, so the host's
// devices, routes, firewall and /etc/resolv.conf are never touched. Address plan (ADDR below):
//
//   app 10.79.9.2 ──veth── 10.79.9.1 client 10.79.0.2 ──veth── 10.79.0.1 world (+ lo: 10.79.1.1, 10.79.2.1)
//   (only with `impair`)     imp0 10.79.250.1/30 (line)          fd79::2 ── fd79::1   (+ fd79:1::1, fd79:2::1)
//
// World runs the services (Worker, exit peer, HTTP, DNS, iperf3, sshd); 10.79.1.1 / fd79:1::1 refuse everything
// that arrives from the client veth, so only the Worker/exit peer inside world reach them ("tunnel-only"
// targets); 10.79.2.1 / fd79:2::1 are plain ("bypass") targets. destroy() removes everything, even half-built.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKey } from '../../src/cli/args';
import type { DnsStats } from '../fixtures/dns-server';
import { startCapture, type Capture, type CaptureMarker, type CaptureOptions } from './topology-capture';
import { execIn, killAllSync, startIn, type ExecOptions, type ExecResult, type NsProcess } from './topology-proc';
import { startSshd, startWorldServices, type WorldControl } from './topology-services';

export { pseudoSha256 as expectedSha256, pseudoBytes } from '../fixtures/pseudo-bytes';
export { otherThan, withoutNeighbour, type Capture, type CaptureResult, type PacketSummary } from './topology-capture';
export type { ExecResult } from './topology-proc';
export type { DnsStats } from '../fixtures/dns-server';

export const ADDR = {
  world: '10.79.0.1',
  world6: 'fd79::1',
  client: '10.79.0.2',
  client6: 'fd79::2',
  /** On world's lo; world refuses it from the client veth: reachable only through the Worker/exit peer. */
  tunnelOnly: '10.79.1.1',
  tunnelOnly6: 'fd79:1::1',
  /** On world's lo, reachable directly: for bypass/exclusion tests. */
  bypass: '10.79.2.1',
  bypass6: 'fd79:2::1',
  /** Impair topology: the app namespace and its gateway (client). */
  app: '10.79.9.2',
  app6: 'fd79:9::2',
  appGateway: '10.79.9.1',
  appGateway6: 'fd79:9::1',
  appNet: '10.79.9.0/24',
  appNet6: 'fd79:9::/64',
  impairTun: '10.79.250.1/30',
} as const;

export const PORTS = { worker: 8787, http: 80, dns: 53, ssh: 22, iperf: 5201, /** nothing listens: RST */ closed: 9 } as const;

/** Interface names, each named after the namespace at its other end. */
export const IFACES = { clientToWorld: 'veth-world', worldToClient: 'veth-client', clientToApp: 'veth-app', appToClient: 'veth-client', impair: 'imp0' } as const;

/** Names the DNS server answers from the start (A records; add more with dns.set). */
export const DEFAULT_DNS: Record<string, string[]> = {
  'target.zks.test': [ADDR.world],
  'tunnel-only.zks.test': [ADDR.tunnelOnly],
  'bypass.zks.test': [ADDR.bypass],
  'target6.zks.test': [ADDR.world6],
};

export type NsRole = 'world' | 'client' | 'app';

export interface ImpairOptions {
  /** Drop probability (default 0.01). */
  loss?: number;
  /** Probability a packet is held back behind its successor (default 0.01). */
  reorder?: number;
  delayMs?: number;
  jitterMs?: number;
  seed?: number;
  /** Give world a route back to the app net via the client (only for tests without zksd: it hides leaks). */
  routeBackFromWorld?: boolean;
}

export interface TopologyOptions {
  /** `zks worker` on 10.79.0.1:8787 with a fresh key and --allow-private (default true). */
  worker?: boolean;
  /** `zks exit-peer --allow-lan` in world, attached to a fresh room (default false; needs the worker). */
  exitPeer?: boolean;
  /** More flags for that exit peer (e.g. --udp-max-flows 4096). */
  exitArgs?: string[];
  /** HTTP server on port 80 of every world address (default true). */
  http?: boolean;
  /** DNS server on 10.79.0.1:53 and [fd79::1]:53, UDP and TCP (default true; an object replaces DEFAULT_DNS). */
  dns?: boolean | Record<string, string[]>;
  /** iperf3 -s on port 5201 of every world address (default true). */
  iperf?: boolean;
  /** sshd on port 22 of every world address, with throw-away keys (default true). */
  ssh?: boolean;
  /** Adds the app namespace and the impairment line between app and client. */
  impair?: ImpairOptions | boolean;
}

export interface ImpairCounters {
  seen: number;
  dropped: number;
  reordered: number;
  delayed: number;
  written: number;
  writeDrops: number;
}

export interface Topology {
  readonly ns: { world: string; client: string; app: string | undefined };
  /** ws://10.79.0.1:8787 when the worker runs. */
  readonly relayUrl: string | undefined;
  readonly key: string | undefined;
  /** The room the exit peer serves (when opts.exitPeer). */
  readonly roomSecret: string | undefined;
  /** A temp dir for the test's own files (removed by destroy). */
  readonly dir: string;
  /** Runs `cmd args` in a namespace (role or name) without a shell. */
  exec(ns: NsRole | string, cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** `ssh root@host command` from a namespace (default: client → 10.79.0.1). */
  ssh(command: string, input?: Buffer | string, opts?: { from?: NsRole; host?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** http://host/path on world's HTTP server (IPv6 hosts bracketed). */
  url(path?: string, host?: string): string;
  readonly dns: {
    set(name: string, addrs: string[]): Promise<void>;
    stats(): Promise<DnsStats>;
    reset(): Promise<void>;
  };
  /**
   * tcpdump on `ifname` ('any' for all) in a namespace; resolves once it captures. Supported: the veths and 'any'
   * in every namespace, and imp0 (endMarker() knows how each capture's end marker gets there).
   */
  capture(ns: NsRole | string, ifname: string, opts?: CaptureOptions): Promise<Capture>;
  /** The impairment line's counters (SIGUSR1). */
  impairCounters(): Promise<ImpairCounters>;
  /** Every process inside the topology's namespaces (`ip netns pids`). */
  pids(): Promise<number[]>;
  /** Stops `zks worker` (every WebSocket and room gone) and starts it again on the same address; resolves when ready. */
  restartWorker(): Promise<void>;
  destroy(): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ZKS = join(ROOT, 'bin/zks.js');
const IMPAIR_LINE = join(ROOT, 'test/fixtures/impair-line.ts');

interface Live {
  names: string[];
  dir: string;
  procs: NsProcess[];
  captures: Capture[];
}
const live = new Set<Live>();

/** Synchronous last resort (process 'exit'): kill, delete namespaces, remove /etc/netns entries and temp dirs. */
function cleanupSync(t: Live): void {
  for (const ns of t.names) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
  if (t.dir) rmSync(t.dir, { recursive: true, force: true });
}
let exitHook = false;
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    killAllSync();
    for (const t of live) cleanupSync(t);
    live.clear();
  });
}

async function host(cmd: string, args: string[]): Promise<string> {
  const r = await execIn('', cmd, args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.toString();
}

export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  installExitHook();
  const id = randomBytes(3).toString('hex');
  const impair = opts.impair === true ? {} : opts.impair || undefined;
  const ns = { world: `zksw-${id}`, client: `zksc-${id}`, app: impair ? `zksa-${id}` : undefined };
  const t: Live = { names: [], dir: mkdtempSync(join(tmpdir(), `zks-topo-${id}-`)), procs: [], captures: [] };
  live.add(t);
  const nsName = (n: NsRole | string): string => {
    if (n !== 'world' && n !== 'client' && n !== 'app') return n;
    if (!ns[n]) throw new Error('no app namespace: create the topology with { impair }');
    return ns[n]!;
  };
  const ipn = (n: string, ...args: string[]) => host('ip', ['-n', n, ...args]);
  const exec = (n: NsRole | string, cmd: string, args: string[], o?: ExecOptions) => execIn(nsName(n), cmd, args, o);
  const mustExec = async (n: NsRole | string, cmd: string, args: string[], input?: string) => {
    const r = await exec(n, cmd, args, { input, timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${nsName(n)} failed: ${r.stderr.trim()}`);
  };
  let world: WorldControl | undefined;
  let impairLine: NsProcess | undefined;
  let key: string | undefined;
  let relayUrl: string | undefined;
  let worker: NsProcess | undefined;
  const startWorker = () => {
    const w = startIn(ns.world, 'zks worker', [process.execPath, ZKS, 'worker', '--listen', `${ADDR.world}:${PORTS.worker}`, '--key', key!, '--allow-private']);
    t.procs.push(w);
    worker = w;
    return w;
  };
  let roomSecret: string | undefined;

  const destroy = async (): Promise<void> => {
    if (!live.has(t)) return;
    live.delete(t);
    await Promise.all([...t.captures.map((c) => c.discard()), ...t.procs.map((p) => p.stop())]);
    cleanupSync(t); // stragglers (ssh sessions, workerd) die with SIGKILL before their namespace goes
  };

  try {
    for (const n of Object.values(ns)) {
      if (!n) continue;
      // Before anything runs in it: `ip netns exec` bind-mounts these over /etc/resolv.conf, so the daemon may
      // rewrite "its" resolv.conf while the host's file stays untouched. World and app resolve via world's DNS.
      mkdirSync(`/etc/netns/${n}`, { recursive: true });
      writeFileSync(`/etc/netns/${n}/resolv.conf`, `nameserver ${ADDR.world}\n`);
      await host('ip', ['netns', 'add', n]);
      t.names.push(n);
      await ipn(n, 'link', 'set', 'lo', 'up');
      // No duplicate address detection: link-local addresses would stay tentative for ~2 s after creation and
      // IPv6 neighbour discovery (hence every IPv6 flow) fail meanwhile. `default` covers devices made later.
      await mustExec(n, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    }
    await host('ip', ['link', 'add', IFACES.worldToClient, 'netns', ns.world, 'type', 'veth', 'peer', 'name', IFACES.clientToWorld, 'netns', ns.client]);
    await ipn(ns.world, 'addr', 'add', `${ADDR.world}/24`, 'dev', IFACES.worldToClient);
    await ipn(ns.world, 'addr', 'add', `${ADDR.world6}/64`, 'dev', IFACES.worldToClient, 'nodad');
    for (const a of [`${ADDR.tunnelOnly}/32`, `${ADDR.bypass}/32`]) await ipn(ns.world, 'addr', 'add', a, 'dev', 'lo');
    for (const a of [`${ADDR.tunnelOnly6}/128`, `${ADDR.bypass6}/128`]) await ipn(ns.world, 'addr', 'add', a, 'dev', 'lo', 'nodad');
    await ipn(ns.world, 'link', 'set', IFACES.worldToClient, 'up');
    await ipn(ns.client, 'addr', 'add', `${ADDR.client}/24`, 'dev', IFACES.clientToWorld);
    await ipn(ns.client, 'addr', 'add', `${ADDR.client6}/64`, 'dev', IFACES.clientToWorld, 'nodad');
    await ipn(ns.client, 'link', 'set', IFACES.clientToWorld, 'up');
    await pinNeighbours([ns.client, IFACES.clientToWorld, ADDR.client, ADDR.client6], [ns.world, IFACES.worldToClient, ADDR.world, ADDR.world6]);
    // Default routes only: an explicit /32 for the extra targets would beat zksd's /1 routes.
    await ipn(ns.client, 'route', 'add', 'default', 'via', ADDR.world);
    await ipn(ns.client, '-6', 'route', 'add', 'default', 'via', ADDR.world6);
    // Tunnel-only targets: refused (RST / ICMP) when they arrive from the client veth, reachable from world itself.
    const refuse = [`ip daddr ${ADDR.tunnelOnly}`, `ip6 daddr ${ADDR.tunnelOnly6}`].flatMap((to) => [
      `    iifname "${IFACES.worldToClient}" ${to} meta l4proto tcp reject with tcp reset`,
      `    iifname "${IFACES.worldToClient}" ${to} reject`,
    ]);
    await mustExec('world', 'nft', ['-f', '-'], ['table inet zks_topology {', '  chain input {',
      '    type filter hook input priority 0; policy accept;', ...refuse, '  }', '}', ''].join('\n'));

    const services: Array<Promise<unknown>> = [];
    const dnsTable = opts.dns === false ? undefined : opts.dns === true || opts.dns === undefined ? DEFAULT_DNS : opts.dns;
    world = startWorldServices(ns.world, t.procs, {
      http: opts.http === false ? undefined : { host: '::', port: PORTS.http },
      dns: dnsTable && { addresses: [ADDR.world, ADDR.world6], table: dnsTable },
    });
    services.push(world.ready);
    if (opts.ssh !== false) services.push(world.ready.then(() => startSshd(ns.world, join(t.dir, 'ssh'), t.procs, world!)));
    if (opts.iperf !== false) {
      const iperf = startIn(ns.world, 'iperf3', ['iperf3', '-s', '-p', String(PORTS.iperf), '--forceflush']);
      t.procs.push(iperf);
      services.push(iperf.waitLine(/Server listening/, 10_000));
    }
    if (opts.worker !== false) {
      key = generateKey();
      services.push(startWorker().waitLine(/zks worker ready on/, 30_000).then(async () => {
        // Not the URL from the ready line: for a non-loopback --listen it names Miniflare's internal loopback
        // port, while workerd serves the Worker on exactly --listen.
        relayUrl = `ws://${ADDR.world}:${PORTS.worker}`;
        if (!opts.exitPeer) return;
        roomSecret = generateKey();
        const exit = startIn(ns.world, 'zks exit-peer', [process.execPath, ZKS, 'exit-peer', '--relay', relayUrl!, '--key', key!, '--room', roomSecret, '--allow-lan', ...(opts.exitArgs ?? [])]);
        t.procs.push(exit);
        await exit.waitLine(/zks exit-peer ready/, 30_000);
      }));
    }
    if (impair) services.push(buildImpairment(impair).then((p) => (impairLine = p)));
    await Promise.all(services);
  } catch (e) {
    await destroy();
    throw e;
  }

  /**
   * Permanent neighbour entries for both ends of a veth: no ARP/NDP on the wire (quiet captures), and no 1 s
   * stall of the first IPv6 packet the client forwards (its first neighbour solicitation leaves only after a
   * second when a forwarded packet triggers it).
   */
  async function pinNeighbours(a: [string, string, string, string], b: [string, string, string, string]): Promise<void> {
    const mac = async (n: string, dev: string) => (JSON.parse(await ipn(n, '-j', 'link', 'show', 'dev', dev)) as Array<{ address: string }>)[0]!.address;
    const [macA, macB] = [await mac(a[0], a[1]), await mac(b[0], b[1])];
    for (const addr of [b[2], b[3]]) await ipn(a[0], 'neigh', 'replace', addr, 'lladdr', macB, 'dev', a[1], 'nud', 'permanent');
    for (const addr of [a[2], a[3]]) await ipn(b[0], 'neigh', 'replace', addr, 'lladdr', macA, 'dev', b[1], 'nud', 'permanent');
  }

  async function buildImpairment(o: ImpairOptions): Promise<NsProcess> {
    const app = ns.app!;
    await host('ip', ['link', 'add', IFACES.appToClient, 'netns', app, 'type', 'veth', 'peer', 'name', IFACES.clientToApp, 'netns', ns.client]);
    await ipn(app, 'addr', 'add', `${ADDR.app}/24`, 'dev', IFACES.appToClient);
    await ipn(app, 'addr', 'add', `${ADDR.app6}/64`, 'dev', IFACES.appToClient, 'nodad');
    await ipn(app, 'link', 'set', IFACES.appToClient, 'up');
    await ipn(app, 'route', 'add', 'default', 'via', ADDR.appGateway);
    await ipn(app, '-6', 'route', 'add', 'default', 'via', ADDR.appGateway6);
    await ipn(ns.client, 'addr', 'add', `${ADDR.appGateway}/24`, 'dev', IFACES.clientToApp);
    await ipn(ns.client, 'addr', 'add', `${ADDR.appGateway6}/64`, 'dev', IFACES.clientToApp, 'nodad');
    await ipn(ns.client, 'link', 'set', IFACES.clientToApp, 'up');
    await pinNeighbours([ns.client, IFACES.clientToApp, ADDR.appGateway, ADDR.appGateway6], [app, IFACES.appToClient, ADDR.app, ADDR.app6]);
    // Namespace-local sysctls. rp_filter off: the line re-injects app-sourced packets on imp0, whose reverse
    // path (veth-app) differs; `default` covers imp0, which does not exist yet.
    await mustExec('client', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
      'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    const line = startIn(ns.client, 'impair-line', [process.execPath, '--import', 'tsx', IMPAIR_LINE,
      '--name', IFACES.impair, '--address', ADDR.impairTun,
      '--loss', String(o.loss ?? 0.01), '--reorder', String(o.reorder ?? 0.01),
      '--delay-ms', String(o.delayMs ?? 0), '--jitter-ms', String(o.jitterMs ?? 0), '--seed', String(o.seed ?? 1)]);
    t.procs.push(line);
    await line.waitLine(/"ready":true/, 15_000);
    await mustExec('client', 'sysctl', ['-qw', `net.ipv4.conf.${IFACES.impair}.rp_filter=0`]);
    // Both directions through the line: from the app veth (table 100), and towards the app net from anywhere
    // else, e.g. zksd's TUN (table 101); what the line re-injects (iif imp0) takes the main table.
    for (const [fam, net] of [['-4', ADDR.appNet], ['-6', ADDR.appNet6]] as const) {
      await ipn(ns.client, fam, 'rule', 'add', 'iif', IFACES.impair, 'lookup', 'main', 'pref', '1000');
      await ipn(ns.client, fam, 'rule', 'add', 'iif', IFACES.clientToApp, 'lookup', '100', 'pref', '1010');
      await ipn(ns.client, fam, 'rule', 'add', 'to', net, 'lookup', '101', 'pref', '1020');
      await ipn(ns.client, fam, 'route', 'add', 'default', 'dev', IFACES.impair, 'table', '100');
      await ipn(ns.client, fam, 'route', 'add', 'default', 'dev', IFACES.impair, 'table', '101');
    }
    if (o.routeBackFromWorld) {
      await ipn(ns.world, 'route', 'add', ADDR.appNet, 'via', ADDR.client);
      await ipn(ns.world, '-6', 'route', 'add', ADDR.appNet6, 'via', ADDR.client6);
    }
    return line;
  }

  /**
   * The path of a capture's end marker (topology-capture.ts): always sent from world or app, never from the client,
   * whose zksd routes and kill switch would divert or drop it; it crosses the captured interface.
   */
  function endMarker(n: NsRole | string, ifname: string): CaptureMarker {
    const role = n === ns.world ? 'world' : n === ns.client ? 'client' : n === ns.app ? 'app' : n;
    const worldToClient = { ns: ns.world, from: ADDR.world, to: ADDR.client };
    const appToGateway = ns.app ? { ns: ns.app, from: ADDR.app, to: ADDR.appGateway } : undefined;
    const paths: Record<string, CaptureMarker | undefined> = {
      [`client ${IFACES.clientToWorld}`]: worldToClient, 'client any': worldToClient,
      [`world ${IFACES.worldToClient}`]: worldToClient, 'world any': worldToClient,
      [`client ${IFACES.clientToApp}`]: appToGateway, [`app ${IFACES.appToClient}`]: appToGateway, 'app any': appToGateway,
      [`client ${IFACES.impair}`]: ns.app ? { ns: ns.app, from: ADDR.app, to: ADDR.world } : undefined, // app → world: into the line via imp0
    };
    const path = paths[`${role} ${ifname}`];
    if (!path) throw new Error(`no capture end-marker path for ${ifname} in ${n}: add one to endMarker()`);
    return path;
  }

  const topo: Topology = {
    ns,
    relayUrl,
    key,
    roomSecret,
    dir: t.dir,
    exec,
    ssh(command, input, o = {}) {
      return exec(o.from ?? 'client', 'ssh', [
        '-F', '/dev/null', '-i', join(t.dir, 'ssh/user_key'), '-o', 'StrictHostKeyChecking=no',
        '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
        `root@${o.host ?? ADDR.world}`, command,
      ], { input, timeoutMs: o.timeoutMs ?? 30_000 });
    },
    url(path = '/', h: string = ADDR.world) {
      return `http://${h.includes(':') ? `[${h}]` : h}${path}`;
    },
    dns: {
      set: async (name, addrs) => void (await world!.request({ op: 'dns-set', name, addrs })),
      stats: async () => (await world!.request({ op: 'dns-stats' })).stats as DnsStats,
      reset: async () => void (await world!.request({ op: 'dns-reset' })),
    },
    async capture(n, ifname, o) {
      const c = await startCapture(nsName(n), ifname, t.dir, endMarker(n, ifname), o);
      t.captures.push(c);
      return c;
    },
    async impairCounters() {
      if (!impairLine) throw new Error('no impairment line: create the topology with { impair }');
      const from = impairLine.lines.length;
      impairLine.signal('SIGUSR1');
      return JSON.parse(await impairLine.waitLine(/"seen":/, 5000, from)) as ImpairCounters;
    },
    async restartWorker() {
      if (!worker) throw new Error('no worker: create the topology with the worker');
      await worker.stop();
      await startWorker().waitLine(/zks worker ready on/, 30_000);
    },
    async pids() {
      const all: number[] = [];
      for (const n of t.names) {
        const out = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout ?? '';
        all.push(...out.split('\n').filter(Boolean).map(Number));
      }
      return all;
    },
    destroy,
  };
  return topo;
}

/** Destroys every topology this process still has (afterAll safety net). */
export async function destroyAllTopologies(): Promise<void> {
  killAllSync();
  for (const t of [...live]) {
    live.delete(t);
    cleanupSync(t);
  }
}
