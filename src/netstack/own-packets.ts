// Packets the interface writes itself, rather than a socket: echo replies, ICMP errors (port unreachable,
// reassembly time exceeded), UDP (DNS answers, replies of UDP flows). They wait in one bounded queue until the next
// poll; ICMP errors also spend the error rate (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)). The IPv4 identification
// counter lives here too: every IPv4 packet the interface builds, TCP segments included, takes the next value.

import type { InterfaceStats } from './iface-types';
import { echoReplyPacket, portUnreachablePacket, reassemblyTimeExceededPacket, type IcmpEcho } from './icmp';
import type { TokenBucket } from './token-bucket';
import { IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpProtocol, Ipv4Repr, Ipv6Repr, UDP_HEADER_LEN, UdpRepr } from './wire/index';

const TTL = 64;
const NO_BYTES = new Uint8Array(0);

export class OwnPackets {
  private queue: Uint8Array[] = [];
  private ipId = 0;

  constructor(
    private readonly stats: InterfaceStats,
    private readonly mtu: number,
    /** Packets that may wait at once; beyond, new ones are dropped (counted). */
    private readonly maxQueued: number,
    private readonly icmpErrors: TokenBucket,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  /** Everything queued, oldest first; the queue is empty afterwards. */
  take(): Uint8Array[] {
    const q = this.queue;
    this.queue = [];
    return q;
  }

  echoReply(echo: IcmpEcho): void {
    if (this.queue.length >= this.maxQueued) { this.stats.controlDropped++; return; }
    this.stats.echoReplies++;
    this.queue.push(echoReplyPacket(echo, this.nextIpId()));
  }

  /** See Interface.sendPortUnreachable. */
  portUnreachable(packet: Uint8Array, nowMs: number): boolean {
    if (this.queue.length >= this.maxQueued) { this.stats.controlDropped++; return false; }
    const p = portUnreachablePacket(packet, this.mtu, this.ipId);
    if (p === null) { this.stats.unreachableSuppressed++; return false; }
    if (!this.icmpErrors.take(nowMs)) { this.stats.unreachableRateLimited++; return false; }
    this.nextIpId();
    this.stats.unreachableSent++;
    this.queue.push(p);
    return true;
  }

  /** Time Exceeded (reassembly) for a datagram whose fragments stopped coming; the rules of port unreachable. */
  timeExceeded(firstFragment: Uint8Array, nowMs: number): void {
    const p = this.queue.length < this.maxQueued ? reassemblyTimeExceededPacket(firstFragment, this.mtu, this.ipId) : null;
    if (p === null || !this.icmpErrors.take(nowMs)) { this.stats.timeExceededDropped++; return; }
    this.nextIpId();
    this.stats.timeExceededSent++;
    this.queue.push(p);
  }

  /** A UDP datagram from src:srcPort to dst:dstPort (4- or 16-byte addresses). */
  udp(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, payload: Uint8Array): void {
    const len = UDP_HEADER_LEN + payload.length;
    const hl = src.length === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const buf = new Uint8Array(hl + len);
    this.ipHeader(src, dst, IpProtocol.UDP, len, buf);
    UdpRepr.emit({ srcPort, dstPort, payload }, buf.subarray(hl), { src, dst });
    this.queue.push(buf);
  }

  /** Writes the IPv4 or IPv6 header for `payloadLen` bytes of `protocol` at the start of `buf` (TTL 64, DF). */
  ipHeader(src: Uint8Array, dst: Uint8Array, protocol: number, payloadLen: number, buf: Uint8Array): void {
    if (src.length === 4) {
      Ipv4Repr.emit({
        src, dst, protocol, payloadLen, ttl: TTL, dscp: 0, ecn: 0, ident: this.nextIpId(),
        dontFrag: true, moreFrags: false, fragOffset: 0, options: NO_BYTES,
      }, buf);
      return;
    }
    Ipv6Repr.emit({ src, dst, nextHeader: protocol, payloadLen, hopLimit: TTL, trafficClass: 0, flowLabel: 0 }, buf);
  }

  private nextIpId(): number {
    const id = this.ipId;
    this.ipId = (id + 1) & 0xffff;
    return id;
  }
}
