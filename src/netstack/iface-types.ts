// The Interface's public shapes: options, counters, UDP datagrams, and how offloaded packets leave (iface.ts).

import type { Flow } from './flows';
import type { IcmpEcho } from './icmp';
import type { ReassemblyOptions } from './reassembly';
import type { TcpSocketConfig } from './socket/index';

/**
 * How an offload-mode packet from poll must be finished by the kernel (virtio-net header terms, without depending
 * on the TUN code). The TCP checksum field holds only the pseudo-header sum: the kernel sums from csumStart to
 * the end and stores the result at csumStart + csumOffset. A segment longer than `gsoSize` (> 0) is cut into
 * packets of gsoSize payload bytes, each with a copy of the first `hdrLen` bytes (IP + TCP headers).
 */
export interface TxOffload {
  readonly family: 4 | 6;
  readonly csumStart: number;
  readonly csumOffset: number;
  readonly hdrLen: number;
  /** 0: send as one packet. */
  readonly gsoSize: number;
}

/** poll's output: an IP packet (valid until the next poll) and, in offload mode for TCP, how to finish it. */
export type PacketSink = (packet: Uint8Array, offload: TxOffload | null) => void;

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
  /**
   * The TUN does checksum and segmentation offload: sockets emit segments up to ~64 KiB (multiples of the MSS) with
   * partial checksums, described by a TxOffload. Default false. (StackDriver turns it on for an offload device.)
   */
  offload?: boolean;
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
  /** A valid UDP datagram (checksum verified, or vouched for by the kernel); return true when taken, false to drop and count it. */
  onUdp?: (datagram: UdpDatagram) => boolean;
  /** An ICMP/ICMPv6 echo request (checksum verified); answer with sendEchoReply, or not at all. Without it: dropped. */
  onEcho?: (echo: IcmpEcho) => void;
  /** Reassembly bounds (reassembly.ts), IPv4 and IPv6 together. */
  reassembly?: ReassemblyOptions;
  /** ICMP errors the interface originates (RFC 4443 §2.4(f)); default 1000 per second, bursts of 50 (as Linux). */
  icmpErrorRate?: { perSecond: number; burst: number };
}

/** A received UDP datagram; `payload` aliases the packet (copy it to keep it). Addresses are 4 or 16 bytes. */
export interface UdpDatagram {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
  /** The whole IP packet it came in (aliases it too): what an ICMP error about it quotes. */
  readonly packet: Uint8Array;
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
  /** IPv4 and IPv6 fragments received (reassembly.stats says what became of them). */
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
  /** ICMP/ICMPv6 echo requests handed to onEcho, and the replies the daemon sent back. */
  echoRequests: number;
  echoReplies: number;
  /** ICMP port unreachable messages sent, and those RFC 1122 §3.2.2 forbade (multicast, broadcast, ICMP errors). */
  unreachableSent: number;
  unreachableSuppressed: number;
  /** Port unreachable messages not sent because of icmpErrorRate. */
  unreachableRateLimited: number;
  /** Echo replies / ICMP errors not queued because maxQueuedRst packets were already waiting. */
  controlDropped: number;
  /** ICMP Time Exceeded (code 1) sent for datagrams whose reassembly timed out after their first fragment came, and
   *  those not sent (forbidden by RFC 1122 §3.2.2 / RFC 4443 §2.4(e), over icmpErrorRate, or the queue was full). */
  timeExceededSent: number;
  timeExceededDropped: number;
}
