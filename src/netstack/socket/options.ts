// The socket's configuration and what it agrees with the peer from the SYN alone (we are the passive side, so the
// SYN's options decide): MSS (RFC 9293 §3.7.1), window scale (RFC 7323 §2), SACK-permitted (RFC 2018 §2). An option
// is used only if the SYN offered it; the SYN-ACK echoes exactly those (built in tcp.ts).

import { TCP_MAX_WINDOW_SCALE, type TcpRepr } from '../wire/index';

export interface TcpSocketConfig {
  /** Our MSS (TUN MTU − 40 for IPv4); segments we send are also capped by it. */
  mss: number;
  /**
   * Segmentation offload: the largest payload of one emitted segment, which the kernel cuts into send-MSS packets
   * (rounded down to a multiple of the send MSS; never beyond the peer's window or cwnd). Default: one MSS.
   */
  maxSegment?: number;
  rxBufferSize: number;
  txBufferSize: number;
  /** Our ISS, injected (tests pick values near 2^32). */
  initialSeq: number;
  /** TIME_WAIT length; default 2000 ms (bounded: our peer is a local application, not the Internet). */
  timeWaitMs?: number;
  /** RFC 6298 §2.4 says 1 s; default 200 ms for a local TUN peer (Linux uses the same floor). */
  minRtoMs?: number;
  /** Default 60 000 ms (RFC 6298 §2.5). */
  maxRtoMs?: number;
  /** Initial RTO before any sample (RFC 6298 §2.1); default 1000 ms. */
  initialRtoMs?: number;
  /** Consecutive timeouts without any acceptable ACK before the connection is reset; default 10. */
  maxRetries?: number;
}

const DEFAULT_MSS = 536; // RFC 9293 §3.7.1: assumed when the SYN carries no MSS option

export function withDefaults(cfg: TcpSocketConfig): Required<TcpSocketConfig> {
  return {
    timeWaitMs: 2000,
    minRtoMs: 200,
    maxRtoMs: 60_000,
    initialRtoMs: 1000,
    maxRetries: 10,
    maxSegment: 0,
    ...cfg,
  };
}

export interface Negotiated {
  /** Both sides scale windows (our shift is chosen by the receive space). */
  wsOk: boolean;
  /** The peer's window scale shift. */
  sndShift: number;
  sackOk: boolean;
  /** MSS of the segments we send: the peer's, capped by ours. */
  sndMss: number;
}

export function negotiate(syn: TcpRepr, cfg: TcpSocketConfig): Negotiated {
  // RFC 7323 §2.2: window scaling only if the SYN offered it; §2.3: a shift above 14 is used as 14.
  const wsOk = syn.windowScale !== null;
  const sndShift = wsOk ? Math.min(syn.windowScale as number, TCP_MAX_WINDOW_SCALE) : 0;
  const sndMss = Math.max(1, Math.min(syn.mss ?? DEFAULT_MSS, cfg.mss));
  return { wsOk, sndShift, sackOk: syn.sackPermitted, sndMss };
}
