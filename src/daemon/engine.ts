// The daemon's data path: TUN → netstack → tunnel streams. Every TCP SYN the interface reports becomes a tunnel
// CONNECT to the address the application dialled; the SYN-ACK goes out only once the relay says the target
// answered, and a refusal becomes a RST, so applications see real failures. UDP to the resolver address becomes
// DNS-over-TCP through the tunnel; any other UDP and ICMP is dropped (counted), never leaked.

import { Interface, type Flow, type UdpDatagram } from '../netstack/iface';
import { ipv4FromText } from '../netstack/wire/index';
import type { Target } from '../protocol/address';
import { ResetCode } from '../protocol/constants';
import type { TunDevice } from './tun/index';
import type { Dialer } from './dialer';
import { StackDriver } from './driver';
import { DnsForwarder } from '../client/dns-forwarder';
import { FlowPump } from './flow-pump';
import type { FlowSnapshot } from '../control/protocol';
import { FlowRegistry, type FlowDescription } from '../control/flow-registry';
import { endpointText } from '../control/status';

export interface EngineOptions {
  dev: TunDevice;
  dialer: Dialer;
  /** Where CONNECTs end: the Worker itself (direct) or an exit peer (relay mode); shown per flow. */
  path: 'worker' | 'exit';
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

export class TunnelEngine {
  readonly iface: Interface;
  readonly driver: StackDriver;
  readonly dns: DnsForwarder | null;
  /** Every live flow's pump by flow id, with rates, closed totals and the recently-closed ring (control/). */
  readonly flows: FlowRegistry<FlowPump>;
  private readonly active = new Set<FlowPump>();
  private readonly resolverAddress: Uint8Array | null;
  private stopped = false;

  constructor(private readonly opts: EngineOptions) {
    this.flows = new FlowRegistry<FlowPump>({ describe, abort: (pump) => pump.abort(), recentClosed: opts.recentClosed });
    this.resolverAddress = opts.dns ? ipv4FromText(opts.dns.address) : null;
    if (opts.dns && this.resolverAddress === null) throw new RangeError(`resolver address ${opts.dns.address} is not IPv4`);
    this.iface = new Interface({
      mtu: opts.mtu ?? 1500,
      ipv6: opts.ipv6 ?? 'carry',
      maxFlows: opts.maxFlows,
      onConnect: (flow) => this.connect(flow),
      onActivity: (flow) => {
        const pump = this.flows.get(flow.id);
        if (pump !== undefined) this.active.add(pump);
      },
      onClose: (flow) => this.closed(flow),
      onUdp: (d) => this.udp(d),
    });
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
    if (pump === undefined) return;
    this.active.delete(pump);
    pump.closed();
    this.flows.remove(flow.id);
  }

  private udp(d: UdpDatagram): boolean {
    const r = this.resolverAddress;
    if (this.dns === null || r === null || d.dstPort !== 53 || d.dst.length !== 4) return false;
    if (d.dst[0] !== r[0] || d.dst[1] !== r[1] || d.dst[2] !== r[2] || d.dst[3] !== r[3]) return false;
    return this.dns.query(d.payload, { src: d.src.slice(), srcPort: d.srcPort, dst: d.dst.slice() });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.dns?.stop();
    for (const pump of this.flows.values()) {
      pump.flow.socket.abort();
      pump.closed();
    }
    // One last pass sends the RSTs, so applications learn at once instead of by timeout.
    this.driver.kick();
    setImmediate(() => this.driver.close());
  }
}

function describe(pump: FlowPump): FlowDescription {
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
