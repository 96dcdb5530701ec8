// The interface layer of the netstack (smoltcp's iface): IP packets from the TUN in, IP packets for the TUN out.
// `receive(packet, nowMs)` validates with the wire views (never throws on packet input: bad packets are counted by
// reason and dropped), demultiplexes TCP by 4-tuple to a TcpSocket, creates a pending socket for a SYN to an unknown
// 4-tuple (onConnect; the daemon later calls accept()/refuse()), and answers other segments for unknown or closed
// 4-tuples with a RST (RFC 9293 §3.10.7.1). UDP goes to `onUdp`, echo requests to `onEcho`; what the interface writes
// itself (echo replies, ICMP errors, UDP) is in own-packets.ts; other ICMP is dropped and counted. Fragments are
// reassembled (reassembly.ts). IPv6 is carried or blackholed. `poll(nowMs, emit)` dispatches the sockets with work
// (flows.ts: a dirty list and a timer heap), wraps segments in IPv4/IPv6 headers (TTL 64), removes CLOSED flows and
// returns the next deadline. No I/O, no clock: the daemon owns the TUN fd and timers, and calls poll after
// receive or any socket call. Offload (virtio-net header): input checksums the kernel vouched for are trusted
// (`csumTrusted`); output TCP carries only the pseudo-header sum, in segments of up to ~64 KiB (TxOffload).

import { unusableAddress } from './address-kinds';
import { FlowEntry, FlowTable, addressText, flowKey, type Endpoint, type Flow, type FlowInfo } from './flows';
import type { InterfaceOptions, InterfaceStats, PacketSink, TxOffload, UdpDatagram } from './iface-types';
import { parseEchoRequest, type IcmpEcho } from './icmp';
import { OwnPackets } from './own-packets';
import { Reassembler } from './reassembly';
import { TokenBucket } from './token-bucket';
import { TcpSocket, TcpState } from './socket/index';
import { PacketArena } from './storage/index';
import {
  IpProtocol,
  IPV4_HEADER_LEN,
  IPV6_HEADER_LEN,
  Ipv4View,
  Ipv6View,
  TcpFlags,
  TcpRepr,
  TCP_HEADER_LEN,
  TcpView,
  UdpView,
  isWireError,
  seqAdd,
  type WireError,
} from './wire/index';

export type { Endpoint, Flow, FlowInfo };
export type { IcmpEcho, InterfaceOptions, InterfaceStats, PacketSink, TxOffload, UdpDatagram };

/** TCP checksum field offset (RFC 9293 §3.1). */
const TCP_CSUM_OFFSET = 16;
/** Largest TCP header (with options): offloaded segments leave room for it under the 16-bit IP length fields. */
const TCP_MAX_HEADER_LEN = 60;

function defaultIsn(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
}

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  return b === null || a <= b ? a : b;
}

export class Interface {
  readonly stats: InterfaceStats = {
    rxPackets: 0, txPackets: 0, malformed: 0, badChecksum: 0, unsupported: 0, badVersion: 0, badAddress: 0,
    fragments: 0, udpDropped: 0, icmpDropped: 0, otherDropped: 0, ipv6Dropped: 0, rstSent: 0, rstDropped: 0,
    flowLimit: 0, flowsOpened: 0, flowsClosed: 0, echoRequests: 0, echoReplies: 0, unreachableSent: 0,
    unreachableSuppressed: 0, unreachableRateLimited: 0, controlDropped: 0, timeExceededSent: 0, timeExceededDropped: 0,
  };
  /** IPv4 and IPv6 fragments being put back together (its own counters: reassembled, overlapDropped, timedOut, …). */
  readonly reassembly: Reassembler;
  private readonly table = new FlowTable();
  private readonly arena = new PacketArena();
  private offloading: boolean;
  /** The flow being dispatched and poll's sink, for segmentOut (one bound function instead of a closure per flow). */
  private current: FlowEntry | null = null;
  private out: PacketSink | null = null;
  private rstQueue: Uint8Array[] = [];
  /** UDP, echo replies and ICMP errors the interface writes itself, sent at the next poll. */
  private readonly own: OwnPackets;
  private nextId = 1;
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
    this.offloading = opts.offload ?? false;
    const icmpErrors = new TokenBucket(opts.icmpErrorRate?.perSecond ?? 1000, opts.icmpErrorRate?.burst ?? 50);
    this.own = new OwnPackets(this.stats, this.mtu, this.maxQueuedRst, icmpErrors);
    this.reassembly = new Reassembler({ ...opts.reassembly, onTimedOut: (first, nowMs) => this.own.timeExceeded(first, nowMs) });
  }

  /** Offload mode (see InterfaceOptions.offload). */
  get offload(): boolean { return this.offloading; }

  /** Switches offload mode; flows opened before keep MSS-sized segments (their checksums follow the mode). */
  setOffload(on: boolean): void {
    this.offloading = on;
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

  /** An id from the TCP flows' sequence, for the daemon's other flows (UDP, ICMP) so ids never collide. */
  newFlowId(): number {
    return this.nextId++;
  }

  // ---------------------------------------------------------------- input

  /**
   * One IP packet from the TUN. Never throws on packet input (callbacks may). `csumTrusted`: the kernel vouched for
   * the TCP/UDP checksum (virtio NEEDS_CSUM — never left the host, the field holds a partial sum — or DATA_VALID),
   * so it is not verified. The IPv4 header checksum is always verified.
   */
  receive(packet: Uint8Array, nowMs: number, csumTrusted = false): void {
    this.stats.rxPackets++;
    const version = packet.length > 0 ? packet[0] >> 4 : 0;
    if (version === 4) {
      const ip = Ipv4View.checked(packet);
      if (isWireError(ip)) return this.countError(ip);
      if (ip.isFragment) return this.reassembled(this.reassembly.pushV4(ip, nowMs), nowMs);
      this.upper(ip.protocol, ip.src, ip.dst, ip.payload, ip.packet, nowMs, csumTrusted);
    } else if (version === 6) {
      if (this.ipv6 === 'blackhole') { this.stats.ipv6Dropped++; return; }
      const ip = Ipv6View.checked(packet);
      if (isWireError(ip)) return this.countError(ip);
      if (ip.isFragment) return this.reassembled(this.reassembly.pushV6(ip, nowMs), nowMs);
      this.upper(ip.upperProtocol, ip.src, ip.dst, ip.upperPayload, ip.packet, nowMs, csumTrusted);
    } else {
      this.stats.badVersion++;
      this.stats.malformed++;
    }
  }

  /** RFC 791 §3.2 / RFC 8200 §4.5: a datagram its last fragment completed is processed as if it came whole. */
  private reassembled(whole: Uint8Array | null, nowMs: number): void {
    this.stats.fragments++;
    if (whole === null) return;
    this.stats.rxPackets--; // its fragments were counted
    this.receive(whole, nowMs);
  }

  private countError(e: WireError): void {
    switch (e.reason) {
      case 'malformed': this.stats.malformed++; return;
      case 'bad-checksum': this.stats.badChecksum++; return;
      case 'unsupported': this.stats.unsupported++; return;
    }
  }

  private upper(
    protocol: number, src: Uint8Array, dst: Uint8Array, payload: Uint8Array, packet: Uint8Array, nowMs: number, trusted: boolean,
  ): void {
    switch (protocol) {
      case IpProtocol.TCP:
        return this.tcp(src, dst, payload, nowMs, trusted);
      case IpProtocol.UDP:
        return this.udp(src, dst, payload, packet, trusted);
      case IpProtocol.ICMP:
        return this.icmp(4, src, dst, payload);
      case IpProtocol.ICMPV6:
        return this.icmp(6, src, dst, payload);
      default:
        this.stats.otherDropped++;
    }
  }

  private udp(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, packet: Uint8Array, trusted: boolean): void {
    const udp = UdpView.checked(payload);
    if (isWireError(udp)) return this.countError(udp);
    if (!trusted && !udp.verifyChecksum(src, dst)) { this.stats.badChecksum++; return; }
    const taken = this.opts.onUdp?.({ src, dst, srcPort: udp.srcPort, dstPort: udp.dstPort, payload: udp.payload, packet }) ?? false;
    if (!taken) this.stats.udpDropped++; // the daemon did not want it: dropped, never forwarded
  }

  /** Echo requests go to onEcho (copied); other ICMP (errors, NDP, MLD) is not for us here: dropped and counted. */
  private icmp(family: 4 | 6, src: Uint8Array, dst: Uint8Array, payload: Uint8Array): void {
    const echo = parseEchoRequest(family, src, dst, payload);
    if (isWireError(echo)) return this.countError(echo);
    if (echo === null || this.opts.onEcho === undefined || unusableAddress(dst)) { this.stats.icmpDropped++; return; }
    this.stats.echoRequests++;
    this.opts.onEcho(echo);
  }

  /** Queues the echo reply to `echo` (its identifier, sequence number and data), sent at the next poll. */
  sendEchoReply(echo: IcmpEcho): void {
    this.own.echoReply(echo);
  }

  /**
   * Queues ICMP port unreachable for `packet` (a whole IP packet from the application, e.g. UdpDatagram.packet,
   * which the caller copies if it answers later). False when RFC 1122 §3.2.2 / RFC 4443 §2.4(e) forbid an error
   * for it (multicast, broadcast, an ICMP error), over the error rate (icmpErrorRate at `nowMs`), or the queue is full.
   */
  sendPortUnreachable(packet: Uint8Array, nowMs: number): boolean {
    return this.own.portUnreachable(packet, nowMs);
  }

  /** Queues a UDP datagram for the TUN (sent at the next poll), e.g. a DNS answer. Addresses are 4 or 16 bytes. */
  sendUdp(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, payload: Uint8Array): void {
    this.own.udp(src, srcPort, dst, dstPort, payload);
  }

  private tcp(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, nowMs: number, trusted: boolean): void {
    const tcp = TcpView.checked(payload);
    if (isWireError(tcp)) return this.countError(tcp);
    if (!trusted && !tcp.verifyChecksum(src, dst)) { this.stats.badChecksum++; return; }
    // RFC 1122 §4.2.3.10 / RFC 9293 §3.10.7.2: no state (and no RST) for broadcast/multicast; port 0 is invalid.
    if (unusableAddress(src) || unusableAddress(dst) || tcp.srcPort === 0 || tcp.dstPort === 0) {
      this.stats.badAddress++;
      return;
    }
    const seg = TcpRepr.parse(tcp);
    const flow = this.table.find(src, seg.srcPort, dst, seg.dstPort);
    if (flow !== undefined && flow.socket.state !== TcpState.CLOSED) {
      flow.bytesIn += seg.payload.length;
      flow.socket.process(seg, nowMs); // duplicate SYNs for a pending socket land here too
      this.table.markDirty(flow);
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
      this.open(src, dst, seg, nowMs);
      return;
    }
    this.queueRst(src, dst, seg);
  }

  private open(src: Uint8Array, dst: Uint8Array, seg: TcpRepr, nowMs: number): void {
    const family = src.length === 4 ? 4 : 6;
    const hl = family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const s = TcpSocket.fromSyn(seg, nowMs, {
      ...this.opts.socket,
      mss: this.mtu - hl - TCP_HEADER_LEN,
      // The IPv4 total length / IPv6 payload length (16 bits) must hold the whole offloaded segment.
      maxSegment: this.offloading ? 0xffff - TCP_MAX_HEADER_LEN - (family === 4 ? IPV4_HEADER_LEN : 0) : 0,
      rxBufferSize: this.rxBufferSize,
      txBufferSize: this.txBufferSize,
      initialSeq: this.isn() >>> 0,
    });
    if (s === 'reject') return this.queueRst(src, dst, seg); // unreachable for a plain SYN; kept for safety
    const flow = new FlowEntry(
      this.nextId++, family, flowKey(src, seg.srcPort, dst, seg.dstPort), dst.slice(), src.slice(),
      { address: addressText(dst), port: seg.dstPort }, { address: addressText(src), port: seg.srcPort }, s,
    );
    s.setWaker(() => this.table.markDirty(flow));
    this.table.add(flow);
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
   * Sends everything due: queued RSTs and UDP, then the dispatch of every flow that had input, an application call
   * or a due timer. Removes CLOSED flows (onClose) and returns the earliest deadline among the remaining sockets,
   * or null when none has one (pending sockets wait for accept). Socket packets live in memory reused by the next
   * poll: write or copy them before calling poll again.
   */
  poll(nowMs: number, emit: PacketSink): number | null {
    this.arena.reset();
    const rsts = this.rstQueue;
    this.rstQueue = [];
    for (const p of rsts) {
      this.stats.rstSent++;
      this.stats.txPackets++;
      emit(p, null);
    }
    this.reassembly.expire(nowMs);
    for (const p of this.own.take()) {
      this.stats.txPackets++;
      emit(p, null);
    }
    const due = this.table.takeDue(nowMs);
    this.out = emit;
    try {
      for (const flow of due) {
        if (!flow.live) continue; // removed by an onClose callback earlier in this pass
        this.current = flow;
        flow.socket.dispatch(nowMs, this.segmentOut);
        if (flow.socket.state === TcpState.CLOSED) {
          this.table.remove(flow);
          this.stats.flowsClosed++;
          this.opts.onClose?.(flow);
          continue;
        }
        const at = flow.socket.pollAt();
        if (at !== null && at <= nowMs) this.table.markDirty(flow);
        else this.table.schedule(flow, at);
      }
    } finally {
      this.current = null;
      this.out = null;
    }
    // A callback queued more, or a socket still has work: the caller polls again now.
    if (this.table.hasDirty || this.rstQueue.length > 0 || this.own.pending > 0) return nowMs;
    return earliest(this.table.nextDeadline(), this.reassembly.nextDeadline());
  }

  /** One socket segment → an IP packet in the arena (payloads alias the send buffer: serialised right here). */
  private readonly segmentOut = (seg: TcpRepr, packetLen: number): void => {
    const flow = this.current as FlowEntry;
    const emit = this.out as PacketSink;
    flow.bytesOut += seg.payload.length;
    this.stats.txPackets++;
    const hl = flow.family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const tl = TcpRepr.bufferLen(seg);
    const buf = this.arena.alloc(hl + tl);
    this.own.ipHeader(flow.localAddr, flow.remoteAddr, IpProtocol.TCP, tl, buf);
    const opts = { src: flow.localAddr, dst: flow.remoteAddr, checksum: this.offloading ? 'pseudo' as const : 'full' as const };
    TcpRepr.emit(seg, buf.subarray(hl), opts);
    if (!this.offloading) return emit(buf, null);
    const hdrLen = hl + tl - seg.payload.length;
    emit(buf, { family: flow.family, csumStart: hl, csumOffset: TCP_CSUM_OFFSET, hdrLen, gsoSize: seg.payload.length > packetLen ? packetLen : 0 });
  };

  /** A fresh IP packet carrying `seg` from `src` to `dst` (4- or 16-byte addresses), checksums filled in. */
  private wrap(src: Uint8Array, dst: Uint8Array, seg: TcpRepr): Uint8Array {
    const tl = TcpRepr.bufferLen(seg);
    const hl = src.length === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const buf = new Uint8Array(hl + tl);
    this.own.ipHeader(src, dst, IpProtocol.TCP, tl, buf);
    TcpRepr.emit(seg, buf.subarray(hl), { src, dst });
    return buf;
  }
}
