// The interface layer of the netstack (smoltcp's iface): IP packets from the TUN in, IP packets for the TUN out.
// `receive(packet, nowMs)` validates with the wire views (never throws on packet input: bad packets are counted by
// reason and dropped), demultiplexes TCP by 4-tuple to a TcpSocket, creates a pending socket for a SYN to an unknown
// 4-tuple (reported through onConnect; the daemon later calls accept()/refuse()), and answers other segments for
// unknown or closed 4-tuples with a RST (RFC 9293 §3.10.7.1). UDP datagrams go to `onUdp` (the daemon's DNS
// resolver takes its own; the rest are dropped and counted), ICMP/ICMPv6 and fragments are dropped and counted
// (a later issue handles them); IPv6 is carried or blackholed. `poll(nowMs, emit)` dispatches every socket, wraps
// segments in IPv4/IPv6 headers (addresses swapped, TTL 64, full checksums), removes CLOSED flows and returns the
// next deadline. No I/O, no clock: the daemon owns the TUN fd and timers, and calls poll after receive or any socket
// call (accept, send, recv, close). Each emitted packet is a fresh buffer the caller may keep.

import { TcpSocket, TcpState, type TcpSocketConfig } from './socket/index';
import {
  IpProtocol,
  IPV4_HEADER_LEN,
  IPV6_HEADER_LEN,
  Ipv4Repr,
  Ipv4View,
  Ipv6Repr,
  Ipv6View,
  TcpFlags,
  TcpRepr,
  TcpView,
  UDP_HEADER_LEN,
  UdpRepr,
  UdpView,
  ipv4ToText,
  ipv6ToText,
  isWireError,
  seqAdd,
  type WireError,
} from './wire/index';

export interface Endpoint {
  /** Dotted quad or RFC 5952 IPv6 text. */
  readonly address: string;
  readonly port: number;
}

/** One TCP flow. `local` is the destination the application dialled (we answer as it); `remote` is the application. */
export interface Flow {
  readonly id: number;
  readonly family: 4 | 6;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly socket: TcpSocket;
}

/** A snapshot of one flow for the control socket. Bytes are TCP payload on the wire, retransmissions included. */
export interface FlowInfo {
  readonly id: number;
  readonly family: 4 | 6;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly state: TcpState;
  /** Payload bytes received from the application (TUN → us). */
  readonly bytesIn: number;
  /** Payload bytes sent to the application (us → TUN). */
  readonly bytesOut: number;
}

export interface InterfaceOptions {
  /** TUN MTU; our MSS is mtu − 40 (IPv4) or mtu − 60 (IPv6). Default 1500. */
  mtu?: number;
  /** Per-socket buffers; default 256 KiB each. */
  rxBufferSize?: number;
  txBufferSize?: number;
  /** 'carry' (default) handles IPv6 like IPv4; 'blackhole' drops and counts every IPv6 packet. */
  ipv6?: 'carry' | 'blackhole';
  /** ISN generator (tests inject one); default: 32 random bits from globalThis.crypto. */
  isn?: () => number;
  /** Further socket settings (timers, retries) passed to every TcpSocket. */
  socket?: Partial<Pick<TcpSocketConfig, 'timeWaitMs' | 'minRtoMs' | 'maxRtoMs' | 'initialRtoMs' | 'maxRetries'>>;
  /** SYNs beyond this many live flows are refused with RST; default 65 536. */
  maxFlows?: number;
  /** Interface-generated RSTs queued between two polls beyond this are dropped; default 1024. */
  maxQueuedRst?: number;
  /** A SYN for a new 4-tuple: the socket is SYN_PENDING until the daemon calls accept() or refuse(). */
  onConnect?: (flow: Flow) => void;
  /** The flow reached CLOSED and was removed (called from poll). */
  onClose?: (flow: Flow) => void;
  /** A segment was processed for an existing flow: the daemon services only flows that had activity. */
  onActivity?: (flow: Flow) => void;
  /** A valid UDP datagram (checksum verified); return true when taken, false to drop and count it. */
  onUdp?: (datagram: UdpDatagram) => boolean;
}

/** A received UDP datagram; `payload` aliases the packet (copy it to keep it). Addresses are 4 or 16 bytes. */
export interface UdpDatagram {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
}

export interface InterfaceStats {
  rxPackets: number;
  txPackets: number;
  /** Wire-layer rejections, by WireError reason (IP or TCP header). */
  malformed: number;
  badChecksum: number;
  unsupported: number;
  /** Neither IPv4 nor IPv6 in the version nibble (also counted in malformed). */
  badVersion: number;
  /** Broadcast/multicast/unspecified addresses, or port 0: never given state. */
  badAddress: number;
  fragments: number;
  udpDropped: number;
  icmpDropped: number;
  /** Any other upper-layer protocol. */
  otherDropped: number;
  /** IPv6 packets dropped in 'blackhole' mode. */
  ipv6Dropped: number;
  /** RSTs the interface generated for unknown/closed 4-tuples, refused SYNs and the flow limit. */
  rstSent: number;
  /** RSTs not sent because maxQueuedRst was reached. */
  rstDropped: number;
  /** SYNs refused because maxFlows was reached. */
  flowLimit: number;
  flowsOpened: number;
  flowsClosed: number;
}

const TTL = 64;
const NO_BYTES = new Uint8Array(0);

class FlowEntry implements Flow {
  bytesIn = 0;
  bytesOut = 0;
  constructor(
    readonly id: number,
    readonly family: 4 | 6,
    readonly key: string,
    /** Our address (the packet's destination), a copy. */
    readonly localAddr: Uint8Array,
    readonly remoteAddr: Uint8Array,
    readonly local: Endpoint,
    readonly remote: Endpoint,
    readonly socket: TcpSocket,
  ) {}
}

function defaultIsn(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
}

function addressText(a: Uint8Array): string {
  return a.length === 4 ? ipv4ToText(a) : ipv6ToText(a);
}

/** True for addresses a TCP flow cannot have: IPv4 0/8, 224/4 and up (multicast, reserved, broadcast); IPv6 ::, ff00::/8. */
function unusableAddress(a: Uint8Array): boolean {
  if (a.length === 4) return a[0] === 0 || a[0] >= 224;
  if (a[0] === 0xff) return true;
  for (let i = 0; i < 16; i++) if (a[i] !== 0) return false;
  return true;
}

function hex(a: Uint8Array): string {
  let s = '';
  for (let i = 0; i < a.length; i++) s += (a[i] < 16 ? '0' : '') + a[i].toString(16);
  return s;
}

/** 4-tuple key as seen on incoming packets: application (src) → dialled target (dst). */
function flowKey(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number): string {
  return `${hex(src)}:${srcPort}>${hex(dst)}:${dstPort}`;
}

export class Interface {
  readonly stats: InterfaceStats = {
    rxPackets: 0, txPackets: 0, malformed: 0, badChecksum: 0, unsupported: 0, badVersion: 0, badAddress: 0,
    fragments: 0, udpDropped: 0, icmpDropped: 0, otherDropped: 0, ipv6Dropped: 0, rstSent: 0, rstDropped: 0,
    flowLimit: 0, flowsOpened: 0, flowsClosed: 0,
  };
  private readonly table = new Map<string, FlowEntry>();
  private rstQueue: Uint8Array[] = [];
  private udpQueue: Uint8Array[] = [];
  private nextId = 1;
  private ipId = 0;
  private readonly mtu: number;
  private readonly rxBufferSize: number;
  private readonly txBufferSize: number;
  private readonly ipv6: 'carry' | 'blackhole';
  private readonly isn: () => number;
  private readonly maxFlows: number;
  private readonly maxQueuedRst: number;

  constructor(private readonly opts: InterfaceOptions = {}) {
    this.mtu = opts.mtu ?? 1500;
    if (!(this.mtu >= 68 && this.mtu <= 65535)) throw new RangeError(`MTU ${this.mtu}: must be 68 … 65535 (RFC 791)`);
    this.rxBufferSize = opts.rxBufferSize ?? 256 * 1024;
    this.txBufferSize = opts.txBufferSize ?? 256 * 1024;
    this.ipv6 = opts.ipv6 ?? 'carry';
    this.isn = opts.isn ?? defaultIsn;
    this.maxFlows = opts.maxFlows ?? 65_536;
    this.maxQueuedRst = opts.maxQueuedRst ?? 1024;
  }

  /** Live flows (including pending and TIME_WAIT ones) as snapshots. */
  get flows(): readonly FlowInfo[] {
    const out: FlowInfo[] = [];
    for (const f of this.table.values()) {
      out.push({ id: f.id, family: f.family, local: f.local, remote: f.remote, state: f.socket.state, bytesIn: f.bytesIn, bytesOut: f.bytesOut });
    }
    return out;
  }

  get flowCount(): number {
    return this.table.size;
  }

  // ---------------------------------------------------------------- input

  /** One IP packet from the TUN. Never throws on packet input (callbacks may). */
  receive(packet: Uint8Array, nowMs: number): void {
    this.stats.rxPackets++;
    const version = packet.length > 0 ? packet[0] >> 4 : 0;
    if (version === 4) {
      const ip = Ipv4View.checked(packet);
      if (isWireError(ip)) return this.countError(ip);
      if (ip.isFragment) { this.stats.fragments++; return; }
      this.upper(ip.protocol, ip.src, ip.dst, ip.payload, nowMs);
    } else if (version === 6) {
      if (this.ipv6 === 'blackhole') { this.stats.ipv6Dropped++; return; }
      const ip = Ipv6View.checked(packet);
      if (isWireError(ip)) return this.countError(ip);
      if (ip.isFragment) { this.stats.fragments++; return; }
      this.upper(ip.upperProtocol, ip.src, ip.dst, ip.upperPayload, nowMs);
    } else {
      this.stats.badVersion++;
      this.stats.malformed++;
    }
  }

  private countError(e: WireError): void {
    switch (e.reason) {
      case 'malformed': this.stats.malformed++; return;
      case 'bad-checksum': this.stats.badChecksum++; return;
      case 'unsupported': this.stats.unsupported++; return;
    }
  }

  private upper(protocol: number, src: Uint8Array, dst: Uint8Array, payload: Uint8Array, nowMs: number): void {
    switch (protocol) {
      case IpProtocol.TCP:
        return this.tcp(src, dst, payload, nowMs);
      case IpProtocol.UDP:
        return this.udp(src, dst, payload);
      case IpProtocol.ICMP:
      case IpProtocol.ICMPV6:
        this.stats.icmpDropped++;
        return;
      default:
        this.stats.otherDropped++;
    }
  }

  private udp(src: Uint8Array, dst: Uint8Array, payload: Uint8Array): void {
    const udp = UdpView.checked(payload);
    if (isWireError(udp)) return this.countError(udp);
    if (!udp.verifyChecksum(src, dst)) { this.stats.badChecksum++; return; }
    const taken = this.opts.onUdp?.({ src, dst, srcPort: udp.srcPort, dstPort: udp.dstPort, payload: udp.payload }) ?? false;
    if (!taken) this.stats.udpDropped++; // other UDP comes with a later issue: dropped, never forwarded
  }

  /** Queues a UDP datagram for the TUN (sent at the next poll), e.g. a DNS answer. Addresses are 4 or 16 bytes. */
  sendUdp(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, payload: Uint8Array): void {
    const len = UDP_HEADER_LEN + payload.length;
    const hl = src.length === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const buf = new Uint8Array(hl + len);
    this.ipHeader(src, dst, IpProtocol.UDP, len, buf);
    UdpRepr.emit({ srcPort, dstPort, payload }, buf.subarray(hl), { src, dst });
    this.udpQueue.push(buf);
  }

  private tcp(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, nowMs: number): void {
    const tcp = TcpView.checked(payload);
    if (isWireError(tcp)) return this.countError(tcp);
    if (!tcp.verifyChecksum(src, dst)) { this.stats.badChecksum++; return; }
    // RFC 1122 §4.2.3.10 / RFC 9293 §3.10.7.2: no state (and no RST) for broadcast/multicast; port 0 is invalid.
    if (unusableAddress(src) || unusableAddress(dst) || tcp.srcPort === 0 || tcp.dstPort === 0) {
      this.stats.badAddress++;
      return;
    }
    const seg = TcpRepr.parse(tcp);
    const key = flowKey(src, seg.srcPort, dst, seg.dstPort);
    const flow = this.table.get(key);
    if (flow !== undefined && flow.socket.state !== TcpState.CLOSED) {
      flow.bytesIn += seg.payload.length;
      flow.socket.process(seg, nowMs); // duplicate SYNs for a pending socket land here too
      this.opts.onActivity?.(flow);
      return;
    }
    // A CLOSED flow awaiting removal answers like an unknown 4-tuple (TcpSocket.process leaves that to us).
    const f = seg.flags;
    if (flow === undefined && f & TcpFlags.SYN && !(f & (TcpFlags.ACK | TcpFlags.RST | TcpFlags.FIN))) {
      if (this.table.size >= this.maxFlows) {
        this.stats.flowLimit++;
        return this.queueRst(src, dst, seg);
      }
      this.open(key, src, dst, seg, nowMs);
      return;
    }
    this.queueRst(src, dst, seg);
  }

  private open(key: string, src: Uint8Array, dst: Uint8Array, seg: TcpRepr, nowMs: number): void {
    const family = src.length === 4 ? 4 : 6;
    const s = TcpSocket.fromSyn(seg, nowMs, {
      ...this.opts.socket,
      mss: this.mtu - (family === 4 ? 40 : 60),
      rxBufferSize: this.rxBufferSize,
      txBufferSize: this.txBufferSize,
      initialSeq: this.isn() >>> 0,
    });
    if (s === 'reject') return this.queueRst(src, dst, seg); // unreachable for a plain SYN; kept for safety
    const flow = new FlowEntry(
      this.nextId++, family, key, dst.slice(), src.slice(),
      { address: addressText(dst), port: seg.dstPort }, { address: addressText(src), port: seg.srcPort }, s,
    );
    this.table.set(key, flow);
    this.stats.flowsOpened++;
    this.opts.onConnect?.(flow);
  }

  /**
   * RFC 9293 §3.10.7.1 (CLOSED): a RST is discarded; otherwise with ACK set <SEQ=SEG.ACK><CTL=RST>, without it
   * <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. Serialised now (the segment aliases the input packet), sent at poll.
   */
  private queueRst(src: Uint8Array, dst: Uint8Array, seg: TcpRepr): void {
    if (seg.flags & TcpFlags.RST) return;
    if (this.rstQueue.length >= this.maxQueuedRst) { this.stats.rstDropped++; return; }
    const hasAck = (seg.flags & TcpFlags.ACK) !== 0;
    const rst = TcpRepr.plain({
      srcPort: seg.dstPort,
      dstPort: seg.srcPort,
      seq: hasAck ? seg.ack : 0,
      ack: hasAck ? 0 : seqAdd(seg.seq, TcpRepr.segmentLen(seg)),
      flags: hasAck ? TcpFlags.RST : TcpFlags.RST | TcpFlags.ACK,
      window: 0,
    });
    this.rstQueue.push(this.wrap(dst, src, rst));
  }

  // ---------------------------------------------------------------- output

  /**
   * Sends everything due: queued RSTs, then every socket's dispatch. Removes CLOSED flows (onClose) and returns the
   * earliest deadline among the remaining sockets, or null when none has one (pending sockets wait for accept).
   */
  poll(nowMs: number, emit: (packet: Uint8Array) => void): number | null {
    const rsts = this.rstQueue;
    this.rstQueue = [];
    for (const p of rsts) {
      this.stats.rstSent++;
      this.stats.txPackets++;
      emit(p);
    }
    const udps = this.udpQueue;
    this.udpQueue = [];
    for (const p of udps) {
      this.stats.txPackets++;
      emit(p);
    }
    let next: number | null = null;
    for (const flow of this.table.values()) {
      flow.socket.dispatch(nowMs, (seg) => {
        flow.bytesOut += seg.payload.length;
        this.stats.txPackets++;
        emit(this.wrap(flow.localAddr, flow.remoteAddr, seg));
      });
      if (flow.socket.state === TcpState.CLOSED) {
        this.table.delete(flow.key);
        this.stats.flowsClosed++;
        this.opts.onClose?.(flow);
        continue;
      }
      const at = flow.socket.pollAt();
      if (at !== null && (next === null || at < next)) next = at;
    }
    if (this.rstQueue.length > 0 || this.udpQueue.length > 0) next = nowMs; // a callback queued more
    return next;
  }

  /** A fresh IP packet carrying `seg` from `src` to `dst` (4- or 16-byte addresses), checksums filled in. */
  private wrap(src: Uint8Array, dst: Uint8Array, seg: TcpRepr): Uint8Array {
    const tl = TcpRepr.bufferLen(seg);
    const hl = src.length === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const buf = new Uint8Array(hl + tl);
    this.ipHeader(src, dst, IpProtocol.TCP, tl, buf);
    TcpRepr.emit(seg, buf.subarray(hl), { src, dst });
    return buf;
  }

  /** Writes the IPv4 or IPv6 header for `payloadLen` bytes of `protocol` at the start of `buf`. */
  private ipHeader(src: Uint8Array, dst: Uint8Array, protocol: number, payloadLen: number, buf: Uint8Array): void {
    if (src.length === 4) {
      Ipv4Repr.emit({
        src, dst, protocol, payloadLen, ttl: TTL, dscp: 0, ecn: 0, ident: this.ipId,
        dontFrag: true, moreFrags: false, fragOffset: 0, options: NO_BYTES,
      }, buf);
      this.ipId = (this.ipId + 1) & 0xffff;
      return;
    }
    Ipv6Repr.emit({ src, dst, nextHeader: protocol, payloadLen, hopLimit: TTL, trafficClass: 0, flowLabel: 0 }, buf);
  }
}
