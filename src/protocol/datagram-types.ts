// The shapes shared by everything that carries UDP datagrams and ICMP echoes through a link (docs/PROTOCOL.md
// §3.3–3.5): the capability bits a peer announces, a datagram flow as its users see it, and an echo request and
// its outcome. Runtime-free (the Worker bundles protocol/); the mux implements them (src/protocol/datagrams.ts).

import type { Target } from './address';
import type { ZksError } from '../errors/zks-error';

/** Optional frame types a peer handles, announced once in its CAPABILITIES frame (a u32 bit set). */
export const Capability = {
  /** UDP_DATAGRAM (0x10): the peer relays UDP flows (an exit peer). */
  UDP: 0x1,
  /** ICMP_ECHO (0x12): the peer answers echo requests (real ICMP, or a timed TCP connect). */
  ICMP_ECHO: 0x2,
  /** SIGNAL (0x0c): the peer sets up a WebRTC direct path (docs/PROTOCOL.md §3.6): a client offers, an exit answers. */
  DIRECT_PATH: 0x4,
  /** SIGNAL kinds TCP_* (0x0c): the peer sets up a direct TCP path (docs/PROTOCOL.md §3.7); only with DIRECT_PATH. */
  DIRECT_TCP: 0x8,
  /** The peer keeps the session for a grace period after its WebSocket is lost and accepts a resume (§11.7). */
  RESUME: 0x10,
} as const;

/** Why a datagram flow ended (UDP_DATAGRAM with the CLOSE flag). */
export const DatagramClose = {
  /** Closed by its owner, or idle past the NAT timeout. */
  NORMAL: 0,
  /** The target is loopback/private/link-local/multicast and the exit runs without --allow-lan. */
  FORBIDDEN: 1,
  /** The name did not resolve or the network said no (ENETUNREACH, EHOSTUNREACH...). */
  UNREACHABLE: 2,
  /** The exit's cap on flows per session was reached. */
  LIMIT: 3,
  /** The peer does not relay UDP (it announced no Capability.UDP). */
  UNSUPPORTED: 4,
  /** A malformed datagram frame for this flow. */
  PROTOCOL: 5,
} as const;
export type DatagramCloseCode = (typeof DatagramClose)[keyof typeof DatagramClose];

/** Largest UDP payload a datagram frame carries (an IPv6 jumbogram-free maximum: 65 535 − 8). */
export const MAX_DATAGRAM_PAYLOAD = 65_527;

/** Largest ICMP echo payload carried (1 500 − 20 − 8: an unfragmented IPv4 echo on Ethernet). */
export const MAX_ECHO_PAYLOAD = 1_472;

/**
 * One UDP flow through the link, as a SOCKS5 UDP association or a zksd 5-tuple sees it. Datagrams are never
 * flow-controlled: send() drops (and counts) rather than queueing without bound.
 */
export interface DatagramFlow {
  readonly id: number;
  /**
   * Sends one datagram to `target`; false when it was dropped (queue full, flow closed, payload too large).
   * The payload is copied (or sent) before this returns: the caller may reuse its memory at once.
   */
  send(target: Target, payload: Uint8Array): boolean;
  /** A datagram from `source` (the address that sent it at the exit). `payload` is only valid during the call. */
  onDatagram: ((source: Target, payload: Uint8Array) => void) | null;
  /** The flow ended: by close() (err null), by the peer (idle, refused: err says why) or with its link. */
  onClose: ((err: ZksError | null) => void) | null;
  /** Ends the flow here and tells the peer to free its socket. Idempotent. */
  close(): void;
  readonly closed: boolean;
  readonly datagramsSent: number;
  readonly datagramsReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** An ICMP echo request carried to the exit (ICMP_ECHO kind REQUEST). */
export interface EchoRequest {
  /** Host to ping (IPv4, IPv6 or a name the exit resolves); its port is ignored unless `tcpOnly`. */
  host: string;
  seq: number;
  /** Bytes echoed back (ICMP payload); at most 1 472. */
  payload?: Uint8Array;
  /** How long the exit waits for the answer. */
  timeoutMs: number;
  /** Skip ICMP and time a TCP connect to `tcpPort` (what the Worker can do; `zks ping --tcp PORT`). */
  tcpOnly?: boolean;
  /** Port for the TCP fallback / tcpOnly; default 443. */
  tcpPort?: number;
}

export const EchoFailure = {
  TIMEOUT: 1,
  UNREACHABLE: 2,
  FORBIDDEN: 3,
  UNSUPPORTED: 4,
  /** The peer has too many echoes in flight. */
  BUSY: 5,
} as const;
export type EchoFailureCode = (typeof EchoFailure)[keyof typeof EchoFailure];

export type EchoResult =
  | {
      ok: true;
      /** 'icmp': a real echo reply; 'tcp': the time of a TCP connect to `tcpPort` (or its refusal). */
      method: 'icmp' | 'tcp';
      tcpPort: number;
      /** The address that answered (after resolution). */
      address: string;
      /** TTL/hop limit of the reply as the exit saw it; 0 when unknown (TCP). */
      ttl: number;
      /** Round trip measured by the requester (tunnel included). */
      rttMs: number;
      payload: Uint8Array;
    }
  | { ok: false; code: EchoFailureCode; message: string };

/** What the responder (exit peer) reports for one echo request; the requester adds its own rttMs. */
export type EchoOutcome =
  | { ok: true; method: 'icmp' | 'tcp'; tcpPort: number; address: string; ttl: number; payload: Uint8Array }
  | { ok: false; code: EchoFailureCode; message: string };

/** What a UDP/ICMP user needs from the tunnel: TunnelPool implements it (relay mode: through a room). */
export interface DatagramDialer {
  /** A new flow on a link whose peer announced Capability.UDP; a ZksError (ZKS_ERR_UNSUPPORTED) otherwise. */
  openDatagramFlow(): Promise<DatagramFlow | ZksError>;
  /** One echo through a link whose peer announced Capability.ICMP_ECHO (ZKS_ERR_UNSUPPORTED otherwise). */
  echo(req: EchoRequest): Promise<EchoResult>;
}
