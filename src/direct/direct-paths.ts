// The direct paths of one relay-mode session and which one carries it (docs/design/paths.md §10): a direct TCP
// connection (tcp-direct.ts) when the client can reach one of the exit peer's addresses — the fastest, a cost per
// segment — else WebRTC DataChannels (direct-path.ts: NAT traversal, TURN), else the room. The client tries TCP
// first when the exit announced Capability.DIRECT_TCP, WebRTC while TCP is not up, and TCP again after a backoff;
// while TCP is up WebRTC rests. Make-before-break throughout: a new path is in use before the old one is ended.

import { Capability } from '../protocol/datagram-types';
import { SignalKind, type SignalKindValue } from '../protocol/signal-codec';
import type { SecureLink } from '../link/secure-link';
import { DEFAULT_DIRECT, type DirectConfig } from './config';
import { DirectPath, type DirectPathOptions, type DirectStatus } from './direct-path';
import { TcpDirect } from './tcp-direct';

/** A TCP path up this long has proved itself: its retry backoff starts again from the first wait. */
const STABLE_AFTER_MS = 60_000;

export interface DirectPathsOptions extends Omit<DirectPathOptions, 'changed'> {
  /** tcp-hello.ts deriveTcpPathKey; without it (or with config.tcp false) there is no TCP path. */
  tcpPathKey?: Uint8Array;
}

/** Whether this side takes part in direct TCP paths: not when told not to, nor with relayed (TURN) candidates only. */
function tcpWanted(config: DirectConfig, tcpPathKey?: Uint8Array): tcpPathKey is Uint8Array {
  return config.tcp !== false && !config.relayOnly && tcpPathKey !== undefined;
}

/** The capability bits a side with this config announces. */
export function directCapabilities(config: DirectConfig | null | undefined, tcpPathKey?: Uint8Array): number {
  if (!config) return 0;
  return Capability.DIRECT_PATH | (tcpWanted(config, tcpPathKey) ? Capability.DIRECT_TCP : 0);
}

export class DirectPaths {
  readonly webrtc: DirectPath;
  readonly tcp: TcpDirect | null;
  private peerTcp = false;
  private tcpRetry: ReturnType<typeof setTimeout> | null = null;
  private tcpRetryMs: number;
  /** When the TCP path last came up (-1: it is not up). */
  private tcpUpAt = -1;
  private closed = false;
  private readonly config: typeof DEFAULT_DIRECT & DirectConfig;

  constructor(private readonly opts: DirectPathsOptions) {
    this.config = { ...DEFAULT_DIRECT, ...opts.config };
    this.tcpRetryMs = this.config.retryMs;
    this.webrtc = new DirectPath({ ...opts, changed: () => this.changed() });
    // --turn-only: the peers must never learn each other's addresses, and a TCP path would show them.
    this.tcp = tcpWanted(this.config, opts.tcpPathKey)
      ? new TcpDirect({ role: opts.role, link: opts.link, config: opts.config, key: opts.tcpPathKey!, log: opts.log, changed: () => this.changed() })
      : null;
  }

  /** Client: the exit peer's capabilities are known; direct attempts begin. */
  start(peerCapabilities: number): void {
    if (this.opts.role !== 'offer' || this.closed || !(peerCapabilities & Capability.DIRECT_PATH)) return;
    this.peerTcp = this.tcp !== null && (peerCapabilities & Capability.DIRECT_TCP) !== 0;
    if (this.peerTcp) this.tcp!.start();
    else this.webrtc.start();
  }

  onSignal(kind: SignalKindValue, text: string): void {
    if (kind >= SignalKind.TCP_OFFER) {
      if (this.tcp) this.tcp.onSignal(kind, text);
      else if (kind === SignalKind.TCP_OFFER) this.opts.link.mux.sendSignal(SignalKind.TCP_CLOSE, 'no direct TCP path here');
      return;
    }
    this.webrtc.onSignal(kind, text);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tcpRetry) clearTimeout(this.tcpRetry);
    this.tcp?.close();
    this.webrtc.close();
  }

  get status(): DirectStatus {
    const w = this.webrtc.status;
    const t = this.tcp;
    const tcp = t?.status;
    const attempts = w.attempts + (t?.attempts ?? 0);
    const failures = w.failures + (t?.failures ?? 0);
    const lastError = [t?.lastError && `tcp: ${t.lastError}`, w.lastError && `webrtc: ${w.lastError}`].filter(Boolean).join('; ') || null;
    if (tcp?.up) return { state: 'direct', rttMs: tcp.rttMs, route: `tcp ${tcp.route}`, attempts, failures, lastError };
    return { ...w, state: w.state === 'off' && t?.connecting ? 'connecting' : w.state, attempts, failures, lastError };
  }

  get datagramsSent(): number {
    return this.webrtc.datagramsSent;
  }

  get datagramsReceived(): number {
    return this.webrtc.datagramsReceived;
  }

  get datagramsRejected(): { replays: number; forged: number } {
    return this.webrtc.datagramsRejected;
  }

  /** A path came up or went away: the best one that is up carries new records. */
  private changed(): void {
    if (this.closed) return;
    const link = this.opts.link;
    const tcpId = this.tcp?.pathId ?? null;
    if (tcpId !== null) {
      if (link.activePath !== tcpId) link.usePath(tcpId);
      if (this.tcpUpAt < 0) this.tcpUpAt = performance.now();
      if (this.opts.role === 'offer') this.webrtc.pause('a direct TCP path is up'); // after the switch: make before break
      return;
    }
    // A path that dies soon after coming up (a black hole for large packets, say) keeps its backoff growing.
    if (this.tcpUpAt >= 0 && performance.now() - this.tcpUpAt >= STABLE_AFTER_MS) this.tcpRetryMs = this.config.retryMs;
    this.tcpUpAt = -1;
    const rtcId = this.webrtc.pathId;
    if (rtcId !== null && link.activePath !== rtcId) link.usePath(rtcId);
    if (this.opts.role !== 'offer' || !this.peerTcp || this.tcp!.connecting) return;
    // TCP is not up (refused, unreachable, lost): WebRTC may be, and TCP is tried again later.
    this.webrtc.resume();
    if (!this.tcpRetry) {
      const wait = this.tcpRetryMs;
      this.tcpRetryMs = Math.min(this.tcpRetryMs * 2, this.config.maxRetryMs);
      this.tcpRetry = setTimeout(() => {
        this.tcpRetry = null;
        if (!this.closed) this.tcp!.start();
      }, wait);
      this.tcpRetry.unref?.();
    }
  }
}
