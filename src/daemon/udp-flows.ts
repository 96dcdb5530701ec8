// zksd's UDP NAT toward the tunnel. One DatagramFlow per application socket — keyed by (source address, source
// port), not by the 5-tuple: the mapping is endpoint-independent (RFC 4787 §4.1, REQ-1) like the exit peer's, so a
// socket that talks to several remotes (STUN, WebRTC, games, a DNS stub trying servers in turn) needs one exit
// socket, and replies from any remote come back with their own source address (endpoint-independent filtering,
// §5). Each datagram carries its destination in the frame, so one flow serves every remote.
// Bounds: at most maxFlows flows (further new sockets are dropped and counted), at most maxPending datagrams queued
// per flow while it opens, idle flows closed after idleMs (dnsIdleMs for port 53, as at the exit). Without a UDP
// uplink (direct mode: the Worker cannot send UDP) every datagram is answered at once with ICMP port unreachable,
// so the application fails fast (QUIC falls back to TCP) instead of timing out.

import { ZksError } from '../errors/zks-error';
import type { UdpDatagram } from '../netstack/iface';
import { addressText } from '../netstack/flows';
import { ipv4FromText, ipv6FromText } from '../netstack/wire/index';
import type { Target } from '../protocol/address';
import type { DatagramDialer, DatagramFlow } from '../protocol/datagram-types';

/** What the table needs from the engine: the TUN side and the flow registry. */
export interface UdpFlowHost {
  /** A datagram to the application (iface.sendUdp + a driver kick); the address bytes are only valid during the call. */
  deliver(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, payload: Uint8Array): void;
  /** ICMP port unreachable about `packet` (a whole IP packet from the application). */
  refuse(packet: Uint8Array): void;
  /** A flow id unique among all of zksd's flows (TCP included). */
  newId(): number;
  opened(flow: UdpFlow): void;
  closed(flow: UdpFlow): void;
}

export interface UdpFlowOptions {
  /** null: no UDP uplink, every datagram is refused with ICMP port unreachable. */
  dialer: DatagramDialer | null;
  /** Default 512, the exit peer's own cap per session (more would only be refused there). */
  maxFlows?: number;
  /** Default 120 s (RFC 4787 REQ-5: at least 2 min). */
  idleMs?: number;
  /** Flows whose last destination was port 53; default 30 s. */
  dnsIdleMs?: number;
  /** Datagrams queued per flow while the tunnel opens it; default 8. */
  maxPending?: number;
  log?: (line: string) => void;
}

export interface UdpFlowStats {
  udpFlowsOpened: number;
  udpFlowsClosed: number;
  /** Datagrams answered with ICMP port unreachable (no UDP uplink, or the exit refused the flow). */
  udpRefused: number;
  /** Datagrams of new sockets dropped because maxFlows flows were live. */
  udpFlowLimit: number;
  /** Datagrams dropped while a flow opened (maxPending reached) or when it failed to open. */
  udpPendingDropped: number;
  /** Datagrams the flow did not take (its bounded queue was full, or it was closing). */
  udpSendDropped: number;
  /** Replies not deliverable to the application: a source that is no address of the application's family. */
  udpReplyDropped: number;
}

type State = 'opening' | 'open' | 'refused';

/** Reply sources remembered as bytes per family (cleared when full: a cache, not a table). */
const MAX_CACHED_SOURCES = 256;

interface Pending {
  target: Target;
  payload: Uint8Array;
  packet: Uint8Array;
}

/** One application socket. Thousands may sit idle: only what each one needs is kept per flow. */
export class UdpFlow {
  readonly openedAt = Date.now();
  state: State = 'opening';
  tunnel: DatagramFlow | null = null;
  /** Datagrams waiting while the tunnel opens the flow (null when none). */
  pending: Pending[] | null = null;
  lastTarget: Target;
  lastActiveMs: number;
  bytesUp = 0;
  bytesDown = 0;
  datagramsUp = 0;
  datagramsDown = 0;
  error: string | null = null;
  closed = false;

  /** An IPv6 application's address; null for IPv4, whose address is in `key` (no typed array per flow). */
  private readonly addr6: Uint8Array | null;

  constructor(
    readonly id: number,
    readonly key: number | string,
    appAddr: Uint8Array,
    readonly appPort: number,
    first: Target,
    nowMs: number,
  ) {
    this.addr6 = appAddr.length === 4 ? null : appAddr.slice();
    this.lastTarget = first;
    this.lastActiveMs = nowMs;
  }

  get family(): 4 | 6 { return this.addr6 === null ? 4 : 6; }

  /** The application's address (a new array for IPv4: for display, not the data path). */
  get appAddr(): Uint8Array {
    return this.addr6 ?? ipv4OfKey(this.key as number, new Uint8Array(4));
  }

  /** The application's address, written into `scratch4` for IPv4 (valid until the next call). */
  appAddrInto(scratch4: Uint8Array): Uint8Array {
    return this.addr6 ?? ipv4OfKey(this.key as number, scratch4);
  }
}

export class UdpFlowTable {
  readonly stats: UdpFlowStats = {
    udpFlowsOpened: 0, udpFlowsClosed: 0, udpRefused: 0, udpFlowLimit: 0, udpPendingDropped: 0, udpSendDropped: 0, udpReplyDropped: 0,
  };
  private readonly flows = new Map<number | string, UdpFlow>();
  private readonly maxFlows: number;
  private readonly idleMs: number;
  private readonly dnsIdleMs: number;
  private readonly maxPending: number;
  private limitLogged = false;
  private stopped = false;
  /** Reply sources as bytes of each family, parsed once for all flows (most replies come from a few remotes). */
  private readonly sources4 = new Map<string, Uint8Array | null>();
  private readonly sources6 = new Map<string, Uint8Array | null>();
  /** An IPv4 application address for one reply (host.deliver copies it into the packet). */
  private readonly scratch4 = new Uint8Array(4);

  constructor(private readonly host: UdpFlowHost, private readonly opts: UdpFlowOptions) {
    this.maxFlows = opts.maxFlows ?? 512;
    this.idleMs = opts.idleMs ?? 120_000;
    this.dnsIdleMs = opts.dnsIdleMs ?? 30_000;
    this.maxPending = opts.maxPending ?? 8;
  }

  get size(): number { return this.flows.size; }

  /** One datagram from an application (interface onUdp, not the resolver's). Always taken: sent, queued, refused or counted. */
  handle(d: UdpDatagram, nowMs: number): void {
    if (this.opts.dialer === null || this.stopped) return this.refuse(d.packet);
    const key = socketKey(d.src, d.srcPort);
    const target: Target = { host: addressText(d.dst), port: d.dstPort };
    let flow = this.flows.get(key);
    if (flow === undefined) {
      if (this.flows.size >= this.maxFlows) {
        this.stats.udpFlowLimit++;
        if (!this.limitLogged) this.opts.log?.(`UDP: ${this.maxFlows} flows live; datagrams of new sockets are dropped (counted in udpFlowLimit)`);
        this.limitLogged = true;
        return;
      }
      flow = new UdpFlow(this.host.newId(), key, d.src, d.srcPort, target, nowMs);
      this.flows.set(key, flow);
      this.stats.udpFlowsOpened++;
      this.host.opened(flow);
      this.open(flow, this.opts.dialer);
    }
    flow.lastActiveMs = nowMs;
    flow.lastTarget = target;
    switch (flow.state) {
      case 'refused':
        return this.refuse(d.packet);
      case 'opening':
        flow.pending ??= [];
        if (flow.pending.length >= this.maxPending) { this.stats.udpPendingDropped++; return; }
        flow.pending.push({ target, payload: d.payload.slice(), packet: d.packet.slice() });
        return;
      case 'open':
        return this.send(flow, target, d.payload);
    }
  }

  private open(flow: UdpFlow, dialer: DatagramDialer): void {
    void dialer.openDatagramFlow().then(
      (r) => (r instanceof ZksError ? this.failed(flow, r) : this.attach(flow, r)),
      (err: Error) => this.failed(flow, new ZksError('ZKS_ERR_UDP', err.message)),
    );
  }

  private attach(flow: UdpFlow, tunnel: DatagramFlow): void {
    if (flow.closed) return tunnel.close();
    flow.state = 'open';
    flow.tunnel = tunnel;
    tunnel.onDatagram = (source, payload) => this.reply(flow, source, payload);
    tunnel.onClose = (err) => {
      flow.error = err?.message ?? null;
      // The exit said it will never relay UDP: refuse this socket's datagrams from now on (until idle).
      if (err?.code === 'ZKS_ERR_UNSUPPORTED') { flow.state = 'refused'; flow.tunnel = null; return; }
      this.remove(flow);
    };
    const pending = flow.pending ?? [];
    flow.pending = null;
    for (const p of pending) this.send(flow, p.target, p.payload);
  }

  private failed(flow: UdpFlow, err: ZksError): void {
    if (flow.closed) return;
    flow.error = err.message;
    const pending = flow.pending ?? [];
    flow.pending = null;
    if (err.code === 'ZKS_ERR_UNSUPPORTED') {
      flow.state = 'refused';
      for (const p of pending) this.refuse(p.packet);
      return;
    }
    this.stats.udpPendingDropped += pending.length;
    this.opts.log?.(`UDP flow ${flow.id} to ${flow.lastTarget.host}:${flow.lastTarget.port} failed: ${err.message}`);
    this.remove(flow);
  }

  private send(flow: UdpFlow, target: Target, payload: Uint8Array): void {
    const tunnel = flow.tunnel as DatagramFlow;
    // `payload` aliases the TUN read buffer: fine, send() writes the frame into the record batch before returning.
    if (!tunnel.send(target, payload)) { this.stats.udpSendDropped++; return; }
    flow.bytesUp += payload.length;
    flow.datagramsUp++;
  }

  private reply(flow: UdpFlow, source: Target, payload: Uint8Array): void {
    const from = this.sourceBytes(source.host, flow.family);
    if (from === null) { this.stats.udpReplyDropped++; return; }
    flow.bytesDown += payload.length;
    flow.datagramsDown++;
    flow.lastActiveMs = performance.now();
    this.host.deliver(from, source.port, flow.appAddrInto(this.scratch4), flow.appPort, payload);
  }

  /** sourceAddress(), remembered for the last few hundred remotes (the bytes are only read, never changed). */
  private sourceBytes(host: string, family: 4 | 6): Uint8Array | null {
    const cache = family === 4 ? this.sources4 : this.sources6;
    let bytes = cache.get(host);
    if (bytes === undefined) {
      if (cache.size >= MAX_CACHED_SOURCES) cache.clear();
      bytes = sourceAddress(host, family);
      cache.set(host, bytes);
    }
    return bytes;
  }

  private refuse(packet: Uint8Array): void {
    this.stats.udpRefused++;
    this.host.refuse(packet);
  }

  /** Closes flows idle past their timeout; the engine calls it every few seconds. */
  sweep(nowMs: number): void {
    for (const flow of this.flows.values()) {
      const idle = flow.lastTarget.port === 53 ? this.dnsIdleMs : this.idleMs;
      if (nowMs - flow.lastActiveMs >= idle) this.close(flow);
    }
  }

  /** Ends one flow here and at the exit (idle, `zks flows` close, shutdown). */
  close(flow: UdpFlow): void {
    const t = flow.tunnel;
    this.remove(flow);
    if (t !== null) {
      t.onClose = null;
      t.close();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const flow of [...this.flows.values()]) this.close(flow);
  }

  private remove(flow: UdpFlow): void {
    if (flow.closed) return;
    flow.closed = true;
    if (this.flows.get(flow.key) === flow) this.flows.delete(flow.key);
    this.stats.udpFlowsClosed++;
    this.stats.udpPendingDropped += flow.pending?.length ?? 0;
    flow.pending = null;
    this.host.closed(flow);
  }
}

/** The application socket's key: IPv4 address and port as one number below 2⁴⁸ (no string per datagram), else text. */
function socketKey(addr: Uint8Array, port: number): number | string {
  if (addr.length !== 4) return `${addressText(addr)}|${port}`;
  return (addr[0] * 2 ** 24 + ((addr[1] << 16) | (addr[2] << 8) | addr[3])) * 65536 + port;
}

/** The IPv4 address in a socketKey(), written into `out`. */
function ipv4OfKey(key: number, out: Uint8Array): Uint8Array {
  const addr = Math.floor(key / 65536);
  out[0] = addr >>> 24;
  out[1] = (addr >>> 16) & 0xff;
  out[2] = (addr >>> 8) & 0xff;
  out[3] = addr & 0xff;
  return out;
}

/** The reply's source as bytes of the application's family (an IPv4-mapped IPv6 source counts as IPv4); else null. */
function sourceAddress(host: string, family: 4 | 6): Uint8Array | null {
  const v4 = ipv4FromText(host);
  if (v4 !== null) return family === 4 ? v4 : null;
  const v6 = ipv6FromText(host);
  if (v6 === null) return null;
  if (family === 6) return v6;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : null;
}
