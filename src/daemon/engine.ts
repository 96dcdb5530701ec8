// The daemon's data path: TUN → netstack → tunnel streams. Every TCP SYN the interface reports becomes a tunnel
// CONNECT to the address the application dialled; the SYN-ACK goes out only once the relay says the target
// answered, and a refusal becomes a RST, so applications see real failures. UDP to the resolver address becomes
// DNS-over-TCP through the tunnel in every mode; other UDP becomes datagram flows to the exit peer (udp-flows.ts),
// or — without a UDP uplink (direct mode) — ICMP port unreachable at once. ICMP echo requests are carried through
// the tunnel and answered only when the far end answered (echo-relay.ts). Nothing is leaked outside the tunnel.

import { Interface, type Flow, type IcmpEcho, type UdpDatagram } from '../netstack/iface';
import { addressText } from '../netstack/flows';
import { ipv4FromText } from '../netstack/wire/index';
import type { Target } from '../protocol/address';
import type { DatagramDialer } from '../protocol/datagram-types';
import { ResetCode } from '../protocol/constants';
import type { TunDevice } from './tun/index';
import type { Dialer } from './dialer';
import { StackDriver } from './driver';
import { DnsForwarder } from '../client/dns-forwarder';
import { FlowPump } from './flow-pump';
import { UdpFlow, UdpFlowTable, type UdpFlowStats } from './udp-flows';
import { EchoRelay, EchoSession, type EchoStats } from './echo-relay';
import type { FlowSnapshot } from '../control/protocol';
import type { MuxStream } from '../protocol/stream';
import { FlowRegistry, type FlowDescription } from '../control/flow-registry';
import { endpointText } from '../control/status';

export interface EngineOptions {
  dev: TunDevice;
  dialer: Dialer;
  /**
   * UDP flows and echoes through the tunnel (TunnelPool). Direct mode ('worker') never relays UDP — the Worker
   * cannot send it — so UDP is refused with ICMP at once and echoes are timed TCP connects to port 443.
   */
  datagrams?: DatagramDialer | null;
  /** Live UDP flows at most (default 512). */
  maxUdpFlows?: number;
  /** Where CONNECTs end: the Worker itself (direct) or an exit peer (relay mode); shown per flow. */
  path: 'worker' | 'exit';
  /** Relay mode: the path of the relay link carrying a stream now (TunnelPool.pathOf), shown per TCP flow. */
  pathOf?: (stream: MuxStream) => string | null;
  mtu?: number;
  ipv6?: 'carry' | 'blackhole';
  /** The resolver address on the TUN (IPv4 text) and the DNS server reached over TCP through the tunnel. */
  dns?: { address: string; upstream: Target };
  maxFlows?: number;
  /** Closed flows kept for display. */
  recentClosed?: number;
  log?: (line: string) => void;
  /** A fatal TUN error (the device vanished): the daemon shuts down. */
  onFatal?: (err: Error) => void;
}

export type { FlowSnapshot };

/** What the flow registry holds: a TCP flow's pump, a UDP flow, or a ping session. */
export type EngineFlow = FlowPump | UdpFlow | EchoSession;

/** How often idle UDP flows and ping sessions are looked for. */
const SWEEP_MS = 5_000;

export class TunnelEngine {
  readonly iface: Interface;
  readonly driver: StackDriver;
  readonly dns: DnsForwarder | null;
  /** Every live flow's pump by flow id, with rates, closed totals and the recently-closed ring (control/). */
  readonly flows: FlowRegistry<EngineFlow>;
  readonly udp: UdpFlowTable;
  readonly echo: EchoRelay;
  private readonly active = new Set<FlowPump>();
  private readonly resolverAddress: Uint8Array | null;
  private readonly sweeper: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: EngineOptions) {
    this.flows = new FlowRegistry<EngineFlow>({
      describe: (f) => this.describe(f),
      abort: (f) => this.abort(f),
      recentClosed: opts.recentClosed,
    });
    this.resolverAddress = opts.dns ? ipv4FromText(opts.dns.address) : null;
    if (opts.dns && this.resolverAddress === null) throw new RangeError(`resolver address ${opts.dns.address} is not IPv4`);
    this.iface = new Interface({
      mtu: opts.mtu ?? 1500,
      ipv6: opts.ipv6 ?? 'carry',
      maxFlows: opts.maxFlows,
      onConnect: (flow) => this.connect(flow),
      onActivity: (flow) => {
        const pump = this.flows.get(flow.id);
        if (pump instanceof FlowPump) this.active.add(pump);
      },
      onClose: (flow) => this.closed(flow),
      onUdp: (d) => this.datagram(d),
      onEcho: (e) => this.ping(e),
    });
    const uplink = opts.datagrams ?? null;
    const registry = {
      newId: () => this.iface.newFlowId(),
      opened: (f: UdpFlow | EchoSession) => this.flows.add(f.id, f),
      closed: (f: UdpFlow | EchoSession) => this.flows.remove(f.id),
    };
    this.udp = new UdpFlowTable({
      ...registry,
      deliver: (src, srcPort, dst, dstPort, payload) => {
        this.iface.sendUdp(src, srcPort, dst, dstPort, payload);
        this.driver.kick();
      },
      refuse: (packet) => {
        this.iface.sendPortUnreachable(packet, performance.now());
        this.driver.kick();
      },
    }, { dialer: opts.path === 'worker' ? null : uplink, maxFlows: opts.maxUdpFlows, log: opts.log });
    this.echo = new EchoRelay({
      ...registry,
      reply: (echo) => {
        this.iface.sendEchoReply(echo);
        this.driver.kick();
      },
    }, { dialer: uplink, method: opts.path === 'worker' ? 'tcp' : 'icmp', streams: opts.dialer });
    this.sweeper = setInterval(() => {
      const now = performance.now();
      this.udp.sweep(now);
      this.echo.sweep(now);
    }, SWEEP_MS).unref();
    this.dns = opts.dns
      ? new DnsForwarder({
        dialer: opts.dialer,
        upstream: opts.dns.upstream,
        log: opts.log,
        answer: (message, replyTo) => {
          const r = replyTo as { src: Uint8Array; srcPort: number; dst: Uint8Array };
          this.iface.sendUdp(r.dst, 53, r.src, r.srcPort, message);
          this.driver.kick();
        },
      })
      : null;
    this.driver = new StackDriver(opts.dev, this.iface, () => this.service(), (err) => {
      opts.log?.(`TUN ${opts.dev.name}: ${err.message}`);
      opts.onFatal?.(err);
    });
  }

  private connect(flow: Flow): void {
    const dns = this.opts.dns;
    const toResolver = dns !== undefined && flow.local.port === 53 && flow.local.address === dns.address;
    const target: Target = toResolver ? dns.upstream : { host: flow.local.address, port: flow.local.port };
    const pump = new FlowPump(flow, target, toResolver ? 'dns' : this.opts.path, (p) => this.wake(p));
    this.flows.add(flow.id, pump);
    void this.opts.dialer.open(target).then(
      (r) => {
        if (this.stopped) {
          if (r.ok) r.stream.reset(ResetCode.SHUTDOWN, 'zksd is shutting down');
          return;
        }
        // The Worker and an exit peer at once (exit-router.ts): the flow shows the way its stream took.
        if ('via' in r && !toResolver) pump.path = r.via === 'exit' ? 'exit' : 'worker';
        if (r.ok) pump.attach(r.stream, performance.now());
        else pump.refuse(r.message);
      },
      (err: Error) => pump.refuse(err.message),
    );
  }

  private wake(pump: FlowPump): void {
    this.active.add(pump);
    this.driver.kick();
  }

  private service(): void {
    if (this.active.size === 0) return;
    for (const pump of this.active) pump.service();
    this.active.clear();
  }

  private closed(flow: Flow): void {
    const pump = this.flows.get(flow.id);
    if (!(pump instanceof FlowPump)) return;
    this.active.delete(pump);
    pump.closed();
    this.flows.remove(flow.id);
  }

  /** UDP: to the resolver address it is DNS (port 53) or refused; anything else is a flow through the tunnel. */
  private datagram(d: UdpDatagram): boolean {
    if (this.stopped) return false;
    if (this.isResolver(d.dst)) {
      if (this.dns !== null && d.dstPort === 53) return this.dns.query(d.payload, { src: d.src.slice(), srcPort: d.srcPort, dst: d.dst.slice() });
      this.iface.sendPortUnreachable(d.packet, performance.now()); // nothing else listens there
      return true;
    }
    this.udp.handle(d, performance.now());
    return true;
  }

  /** The resolver address is zksd itself: it answers pings there; other echoes go through the tunnel. */
  private ping(e: IcmpEcho): void {
    if (this.stopped) return;
    if (this.isResolver(e.dst)) {
      this.iface.sendEchoReply(e);
      return;
    }
    this.echo.handle(e, performance.now());
  }

  private isResolver(a: Uint8Array): boolean {
    const r = this.resolverAddress;
    return r !== null && a.length === 4 && a[0] === r[0] && a[1] === r[1] && a[2] === r[2] && a[3] === r[3];
  }

  private abort(f: EngineFlow): void {
    if (f instanceof FlowPump) f.abort();
    else if (f instanceof UdpFlow) this.udp.close(f);
    else this.echo.close(f);
  }

  private describe(f: EngineFlow): FlowDescription {
    if (f instanceof FlowPump) {
      const stream = f.tunnelStream;
      return { ...describePump(f), via: f.path === 'exit' && stream ? this.opts.pathOf?.(stream) ?? null : null };
    }
    const path = this.opts.path;
    if (f instanceof UdpFlow) {
      const to = endpointText(f.lastTarget.host, f.lastTarget.port);
      return {
        id: f.id, protocol: 'udp', source: endpointText(addressText(f.appAddr), f.appPort), destination: to, target: to, path, via: null,
        state: f.state, bytesUp: f.bytesUp, bytesDown: f.bytesDown, ageMs: Date.now() - f.openedAt, error: f.error,
      };
    }
    const rtt = f.lastRttMs >= 0 ? ` ${f.lastRttMs.toFixed(1)} ms` : '';
    return {
      id: f.id, protocol: 'icmp', source: f.source, destination: f.destination,
      target: this.echo.method === 'tcp' ? `${f.destination} (tcp:443)` : f.destination, path, via: null,
      state: `${f.replies}/${f.requests}${rtt}`, bytesUp: f.bytesUp, bytesDown: f.bytesDown, ageMs: Date.now() - f.openedAt, error: f.error,
    };
  }

  /** Counters of UDP flows, pings and IP reassembly, for `status`. */
  datagramStats(): UdpFlowStats & EchoStats & Record<string, number> {
    const r = this.iface.reassembly.stats;
    return {
      ...this.udp.stats, ...this.echo.stats, udpFlows: this.udp.size,
      fragReassembled: r.reassembled, fragOverlapDropped: r.overlapDropped, fragTimedOut: r.timedOut, fragEvicted: r.evicted,
      fragInvalid: r.invalid,
    };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sweeper);
    this.dns?.stop();
    this.udp.stop();
    this.echo.stop();
    for (const pump of this.flows.values()) {
      if (!(pump instanceof FlowPump)) continue;
      pump.flow.socket.abort();
      pump.closed();
    }
    // One last pass sends the RSTs, so applications learn at once instead of by timeout.
    this.driver.kick();
    setImmediate(() => this.driver.close());
  }
}

function describePump(pump: FlowPump): Omit<FlowDescription, 'via'> {
  const f = pump.flow;
  return {
    id: f.id,
    protocol: 'tcp',
    source: endpointText(f.remote.address, f.remote.port),
    destination: endpointText(f.local.address, f.local.port),
    target: endpointText(pump.target.host, pump.target.port),
    path: pump.path,
    state: pump.state,
    bytesUp: pump.bytesUp,
    bytesDown: pump.bytesDown,
    ageMs: Date.now() - pump.openedAt,
    error: pump.error,
  };
}
