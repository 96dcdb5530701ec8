// zksd's lifecycle. Up, in an order that never leaves the host half-configured:
//   1. refuse if another zksd answers; clean up after one that crashed (state file);
//   2. resolve the relay host and pin its addresses (once everything routes into the TUN, a fresh lookup would
//      go through the tunnel it is trying to reach);
//   3. open the first relay connection — a wrong key or URL fails here, before the host network is touched;
//   4. TUN + netstack engine, then routes, kill switch and DNS (HostNetwork), then the control socket.
// Down undoes the host network first (traffic stops entering the TUN), then closes flows, TUN and relay.

import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TunnelPool } from '../client/pool';
import { ExitRouter } from '../client/exit-router';
import type { RoomPath } from '../client/connection';
import type { Target } from '../protocol/address';
import { ZksError } from '../errors/zks-error';
import { roomLabel } from '../crypto/room';
import { configureTun, openTun, type TunDevice } from './tun/index';
import { TunnelEngine } from './engine';
import { connectMarked, relayKey, relaysConnector, type RelayEndpoint } from './relay-connector';
import { peerUid } from './tun/sockets';
import { HostNetwork, parseBypass } from './system/index';
import { DIRECT_PORTS } from './system/killswitch';
import type { DirectConfig } from '../direct/config';
import { ControlClient } from '../control/client';
import { startControlService, type ControlService } from '../control/service';
import type { ControlCommand, DaemonStatus } from '../control/protocol';
import { endpointText, relayDisplayUrl, relayLinkSnapshot } from '../control/status';

const execFileP = promisify(execFile);
/**
 * Packets the kernel holds between the applications and our reads. Linux gives TUN 500: at 500 Mbit/s of UDP
 * that is 12 ms, and a daemon that shares its CPU is sometimes off it longer (0.9-1.6 % of an iperf3 -u stream
 * lost at the device). 2 000 (~46 ms at that rate, 3 MB) is what the link's own datagram backlog holds; TCP
 * never fills it (the netstack's windows bound each connection first).
 */
const TUN_QUEUE_PACKETS = 2000;

export interface DaemonOptions {
  relay: string;
  /** More relays (`--relay` more than once): links spread over those that are up (client/relay-set.ts). */
  moreRelays?: string[];
  key: Uint8Array;
  /** Relay mode: through this room to its exit peer. */
  room?: RoomPath;
  /**
   * With a room: 'worker' sends TCP through the Worker first, and the exit peer takes UDP, ping and what the Worker
   * cannot reach (exit-router.ts); 'exit' (default) sends everything to the exit peer.
   */
  via?: 'worker' | 'exit';
  tunName: string;
  mtu: number;
  /** TUN addresses (CIDR); the resolver address must be inside address4's subnet. */
  address4: string;
  address6: string;
  resolver: string;
  dnsUpstream: Target;
  /** Point the system resolver (resolv.conf / resolved) at `resolver`. */
  configureDns: boolean;
  resolvConfPath?: string;
  killSwitch: boolean;
  ipv6: 'carry' | 'blackhole';
  bypass: string[];
  offload: boolean;
  /** Live UDP flows at most (relay mode); default 512. */
  maxUdpFlows?: number;
  /** Relay mode: how long a lost WebSocket is resumed, applications' connections stalled (default 60 s; 0: off). */
  resumeGraceMs?: number;
  /** Relay mode: also a direct path to the exit peer (PROTOCOL.md §3.6), let out by HostNetwork.allowDirect. */
  direct?: DirectConfig;
  runDir: string;
  /** Called with the new list whenever a bypass route is added or removed live. */
  persistBypass?: (list: readonly string[]) => void;
  log: (line: string) => void;
}

export type { RelayEndpoint } from './relay-connector';

function relayHostPort(relay: string): { host: string; port: number } {
  const url = new URL(relay);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port: url.port ? Number(url.port) : url.protocol === 'wss:' || url.protocol === 'https:' ? 443 : 80 };
}

/**
 * Every relay's host as pinned addresses, by relayKey. A relay whose host does not resolve is left out (and
 * named in `skipped`) as long as another one resolves: the others carry the tunnel, and the kill switch lets out
 * only what was pinned.
 */
export async function resolveRelays(relays: readonly string[]): Promise<{ byRelay: Map<string, RelayEndpoint[]>; usable: string[]; skipped: string[] }> {
  const results = await Promise.all(relays.map((r) => resolveRelay(r).catch((err: ZksError) => err)));
  const byRelay = new Map<string, RelayEndpoint[]>();
  const usable: string[] = [];
  const skipped: string[] = [];
  results.forEach((r, i) => {
    if (r instanceof ZksError) return void skipped.push(r.message);
    const { host, port } = relayHostPort(relays[i]!);
    byRelay.set(relayKey(host, port), r);
    usable.push(relays[i]!);
  });
  if (usable.length === 0) throw results[0] as ZksError;
  return { byRelay, usable, skipped };
}

/** The relay URL's host as pinned addresses + port. */
export async function resolveRelay(relay: string): Promise<RelayEndpoint[]> {
  const { host, port } = relayHostPort(relay);
  if (isIP(host)) return [{ address: host, port }];
  try {
    const all = await dnsLookup(host, { all: true });
    return all.map((a) => ({ address: a.address, port }));
  } catch (err) {
    throw new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `cannot resolve the relay host ${host}: ${(err as Error).message}`);
  }
}

export class Daemon {
  private stopping: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private resolveStopped!: () => void;
  /** Resolves once the daemon has stopped (down request, signal, fatal TUN error). */
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));

  private constructor(
    private readonly opts: DaemonOptions,
    private readonly endpoints: RelayEndpoint[],
    /** The exit peer's (relay mode) or the Worker's (direct mode). */
    private readonly pool: TunnelPool,
    /** Relay mode with --via worker: the Worker's pool beside the exit peer's. */
    private readonly worker: TunnelPool | null,
    private readonly dev: TunDevice,
    private readonly engine: TunnelEngine,
    private readonly host: HostNetwork,
    private control: ControlService | null,
  ) {}

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const socketPath = `${opts.runDir}/zksd.sock`;
    const statePath = `${opts.runDir}/state.json`;
    const other = await ControlClient.connect(socketPath, 1_000).catch(() => null);
    if (other) {
      other.close();
      throw new ZksError('ZKS_ERR_ALREADY_RUNNING', `zksd is already running (control socket ${socketPath}); run \`zksd down\` first`);
    }
    if (await HostNetwork.recover(statePath)) opts.log('undid the host-network changes of a zksd that did not stop cleanly');

    const { byRelay, usable, skipped } = await resolveRelays([opts.relay, ...(opts.moreRelays ?? [])]);
    for (const why of skipped) opts.log(`${why}: going on with the other relays`);
    // One endpoint once, whichever relays share it (two names of one deployment).
    const endpoints = [...new Map([...byRelay.values()].flat().map((e) => [endpointText(e.address, e.port), e])).values()];
    // Relay-link and DNS lines also reach `log` subscribers once the daemon (and its control socket) exists.
    let self: Daemon | null = null;
    const log = (line: string) => (self ? self.log(line) : opts.log(line));
    const undo: Array<() => Promise<void> | void> = [];
    const unwind = async () => {
      for (const u of undo.reverse()) await Promise.resolve().then(u).catch(() => {});
    };
    try {
      // The direct path uses a peer's address only once the host network routes it outside the TUN and the kill
      // switch lets it out (HostNetwork.allowDirect), so nothing it sends can enter the tunnel or leak around it.
      let hostUp: (h: HostNetwork) => void = () => {};
      const hostReady = new Promise<HostNetwork>((resolve) => (hostUp = resolve));
      // Its TCP connection carries the relay link's mark (relay-connector.ts), which the kill switch also requires.
      const room = opts.room && opts.direct
        ? {
            ...opts.room,
            direct: {
              ...opts.direct, portRange: DIRECT_PORTS, allowRemote: async (a: string, p: number) => (await hostReady).allowDirect(a, p),
              connectTcp: (address: string, port: number) => connectMarked({ address, port }),
            },
          }
        : opts.room;
      // The link's sockets carry the kill switch's mark and go to the pinned addresses (relay-connector.ts).
      const openTcp = relaysConnector(byRelay);
      const pool = new TunnelPool({ url: usable[0]!, relayUrls: usable, key: opts.key, room, openTcp, log, resumeGraceMs: opts.resumeGraceMs });
      undo.push(() => pool.stop());
      // The Worker beside the exit peer (--via worker): it carries TCP first; the exit what it cannot reach.
      const worker = room && opts.via === 'worker'
        ? new TunnelPool({ url: usable[0]!, relayUrls: usable, key: opts.key, openTcp, log: (l) => log(`Worker: ${l}`), resumeGraceMs: opts.resumeGraceMs })
        : null;
      if (worker) undo.push(() => worker.stop());
      const router = worker ? new ExitRouter({ worker, exit: pool, defaultVia: 'worker', rules: () => [], log }) : null;
      if (worker) {
        await worker.start();
        // UDP and ping need the exit peer; without it the Worker still carries TCP.
        pool.start().catch((err: Error) => log(`exit peer not reachable yet: ${err.message}`));
      } else {
        await pool.start();
      }

      const dev = openTun({ name: opts.tunName, mtu: opts.mtu, offload: opts.offload });
      undo.push(() => dev.close());
      if (opts.ipv6 === 'blackhole') await sysctl(`net.ipv6.conf.${dev.name}.disable_ipv6`, '1');
      await configureTun(dev.name, { address: opts.address4, mtu: opts.mtu, txQueueLen: TUN_QUEUE_PACKETS });
      if (opts.ipv6 === 'carry') await configureTun(dev.name, { address: opts.address6 });

      let daemon: Daemon | null = null;
      const engine = new TunnelEngine({
        dev,
        dialer: router ?? pool,
        datagrams: pool,
        maxUdpFlows: opts.maxUdpFlows,
        path: opts.room ? 'exit' : 'worker',
        pathOf: (stream) => (router ?? pool).pathOf(stream),
        mtu: opts.mtu,
        ipv6: opts.ipv6,
        dns: { address: opts.resolver, upstream: opts.dnsUpstream },
        log,
        onFatal: (err) => void daemon?.stop(`TUN device failed: ${err.message}`),
      });
      undo.push(() => engine.stop());

      const host = await HostNetwork.up({
        tun: dev.name,
        relayEndpoints: endpoints,
        bypass: opts.bypass,
        killSwitch: opts.killSwitch,
        ipv6: opts.ipv6,
        dns: opts.configureDns ? { resolver: opts.resolver, resolvConfPath: opts.resolvConfPath } : undefined,
        statePath,
      });
      undo.push(() => host.down());
      hostUp(host);

      daemon = new Daemon(opts, endpoints, pool, worker, dev, engine, host, null);
      self = daemon;
      const d = daemon;
      daemon.control = await startControlService({
        path: socketPath,
        access: 'daemon',
        // Who asks, for the root-only commands (group `zks` may only read).
        peerUid,
        flows: engine.flows,
        status: () => d.status(),
        handle: (cmd, args) => d.handle(cmd, args),
        onLog: opts.log,
      });
      return daemon;
    } catch (err) {
      await unwind();
      throw err;
    }
  }

  /** Serves the zksd-only control requests (status, flows and flow.close are the control service's). */
  private async handle(cmd: ControlCommand, args: Record<string, unknown>): Promise<unknown> {
    switch (cmd) {
      case 'routes':
        return { bypass: this.host.bypass };
      case 'route.add':
      case 'route.del': {
        if (typeof args.cidr !== 'string') throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `${cmd} needs args.cidr (e.g. "10.0.0.0/8")`);
        const cidr = parseBypass(args.cidr).text;
        if (cmd === 'route.add') await this.host.addBypass(cidr);
        else await this.host.delBypass(cidr);
        this.opts.persistBypass?.(this.host.bypass);
        this.log(`bypass ${cmd === 'route.add' ? 'added' : 'removed'}: ${cidr}`);
        return { bypass: this.host.bypass };
      }
      case 'killswitch': {
        if (typeof args.on !== 'boolean') throw new ZksError('ZKS_ERR_CONTROL_REQUEST', 'killswitch needs args.on (true or false)');
        await this.host.setKillSwitch(args.on);
        this.log(`kill switch ${args.on ? 'on' : 'off'}`);
        return { killSwitch: this.host.killSwitch };
      }
      case 'down':
        setImmediate(() => void this.stop('down requested over the control socket'));
        return { stopping: true };
      default:
        throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `${cmd} is served by the control service`);
    }
  }

  /** Logs a line and tells `log` subscribers (the TUI's event line). */
  private log(message: string): void {
    if (this.control) this.control.log(message);
    else this.opts.log(message);
  }

  status(): DaemonStatus {
    const conns = this.pool.connections;
    const flows = this.engine.flows;
    const several = this.pool.relays.size > 1;
    const links = [this.pool, ...(this.worker ? [this.worker] : [])]
      .flatMap((p) => [...p.connections, ...(p.datagramConnection ? [p.datagramConnection] : [])]);
    return {
      pid: process.pid,
      mode: this.opts.room ? 'relay' : 'direct',
      // Relay mode: the room (a short prefix of its public id — the secret never leaves) and whether its exit
      // peer answers (a live relay link means the exit completed our handshake).
      room: this.opts.room ? roomLabel(this.opts.room.roomId) : null,
      exitPeer: this.opts.room ? conns.length > 0 : null,
      relay: relayDisplayUrl(this.opts.relay),
      relayEndpoints: this.endpoints.map((e) => endpointText(e.address, e.port)),
      ...(several ? { relays: this.pool.relays.snapshot().map((r) => ({ url: relayDisplayUrl(r.url), up: r.up, error: r.lastError })) } : {}),
      ...(this.worker ? { via: 'worker' as const } : {}),
      connections: links.map((c) => ({ ...relayLinkSnapshot(c), ...(several ? { relay: relayDisplayUrl(c.relayUrl) } : {}) })),
      tun: this.dev.name,
      mtu: this.opts.mtu,
      offload: this.dev.offload,
      addresses: this.opts.ipv6 === 'carry' ? [this.opts.address4, this.opts.address6] : [this.opts.address4],
      ipv6: this.opts.ipv6,
      resolver: this.opts.resolver,
      dnsUpstream: `${this.opts.dnsUpstream.host}:${this.opts.dnsUpstream.port}`,
      killSwitch: this.host.killSwitch,
      bypass: [...this.host.bypass],
      uptimeMs: Date.now() - this.startedAt,
      flows: flows.count,
      ...flows.totals(),
      rateUp: Math.round(flows.totalRate.upRate),
      rateDown: Math.round(flows.totalRate.downRate),
      memory: memoryFigures(),
      netstack: { ...this.engine.iface.stats },
      driver: { ...this.engine.driver.stats },
      dns: this.engine.dns ? { ...this.engine.dns.stats } : null,
      udp: this.engine.datagramStats(),
    };
  }

  /** Undoes everything; safe to call more than once. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log(`stopping: ${reason}`);
      await this.control?.close().catch(() => {});
      try {
        await this.host.down();
      } catch (err) {
        this.opts.log(`restoring the host network failed: ${(err as Error).message} — run \`zksd down\` again`);
      }
      this.engine.stop();
      await new Promise((r) => setTimeout(r, 20)); // the engine's last pass sends RSTs to the applications
      this.dev.close();
      await Promise.all([this.pool.stop(), this.worker?.stop()]);
      this.resolveStopped();
    })();
    return this.stopping;
  }
}

/** Process memory in MB (rss; V8 heap used; Buffers/ArrayBuffers outside the heap). */
function memoryFigures(): { rssMB: number; heapMB: number; externalMB: number } {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 1e5) / 10;
  return { rssMB: mb(m.rss), heapMB: mb(m.heapUsed), externalMB: mb(m.external) };
}

async function sysctl(name: string, value: string): Promise<void> {
  try {
    await execFileP('sysctl', ['-qw', `${name}=${value}`]);
  } catch (err) {
    throw new ZksError('ZKS_ERR_SYSTEM', `sysctl ${name}=${value} failed: ${(err as Error).message}`);
  }
}
