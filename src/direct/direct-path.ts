// The direct path of one relay-mode session (PROTOCOL.md §3.6, docs/design/paths.md): a WebRTC peer connection
// between client and exit peer, signalled through the session itself (SIGNAL frames: the room sees sizes only),
// whose DataChannels become path 1 of the SecureLink once both are open and the DTLS fingerprint matches the one
// signalled. The client offers (again after a failure, with backoff); the exit peer answers. Whatever goes wrong —
// an SDP or candidate the stack refuses, a forged fingerprint, no connection within 10 s, a path gone silent —
// ends the attempt; the session goes on over the room, which resends what the direct path may have lost.

import { MAX_DIRECT_MESSAGE, MAX_REMOTE_CANDIDATES, MIN_OFFER_INTERVAL_MS, type DirectStatus } from './direct-limits';
import { MAX_SIGNAL_TEXT, SignalKind, type SignalKindValue } from '../protocol/signal-codec';
import { HoldReason } from '../link/paths';
import type { SecureLink } from '../link/secure-link';
import { ChannelPath, HEARTBEAT_CHANNEL, RECORD_CHANNEL } from './channel-path';
import { allowIceServers, DEFAULT_DIRECT, iceServersOf, type DirectConfig } from './config';
import { loadWebRtc, type RtcPeer, type WebRtc } from './webrtc';
import { endpoint, selectedPair, type Attempt } from './rtc-attempt';
import { datagramRoute, DatagramOpener, DatagramSealer, type DatagramKeys } from './datagram-records';
import { candidateAddress, fingerprintOf, relayedCandidateAddress, unusableCandidateAddress } from './sdp-lines';

export type { DirectState, DirectStatus } from './direct-limits';

export interface DirectPathOptions {
  role: 'offer' | 'answer';
  link: SecureLink;
  config: DirectConfig;
  log(line: string): void;
  /** Tests: changes each local SDP before it is signalled (a forged fingerprint must make the path fail). */
  rewriteLocalSdp?: (sdp: string) => string;
  /**
   * The session's datagram keys (datagram-records.ts): UDP and echoes then go unreliably on `zks-d` while the path
   * is up. Without them they stay in sequenced records.
   */
  datagramKeys?: DatagramKeys;
  /** The path came up or went away (the owner, direct-paths.ts, picks the path in use). */
  changed?(): void;
}

const utf8 = new TextEncoder();

function errorText(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

export class DirectPath {
  private attempt: Attempt | null = null;
  private closed = false;
  private loading = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryMs: number;
  private readonly config: typeof DEFAULT_DIRECT & DirectConfig;
  private attempts = 0;
  private failures = 0;
  private lastError: string | null = null;
  private kind: 'direct' | 'turn' = 'direct';
  private route: string | null = null;
  /** One per session, across attempts: a datagram key never seals two records under one number. */
  private readonly datagramSealer: DatagramSealer | null;
  private readonly datagramOpener: DatagramOpener | null;
  datagramsSent = 0;
  datagramsReceived = 0;
  private lastOfferAt = -Infinity;
  /** Client: no attempts while a better path (direct TCP) is up. */
  private paused = false;
  /** CANDIDATEs that came while the answer's peer connection was still being made (with the offer, typically). */
  private early: string[] = [];

  constructor(private readonly opts: DirectPathOptions) {
    this.config = { ...DEFAULT_DIRECT, ...opts.config };
    this.retryMs = this.config.retryMs;
    this.datagramSealer = opts.datagramKeys ? new DatagramSealer(opts.datagramKeys.send) : null;
    this.datagramOpener = opts.datagramKeys ? new DatagramOpener(opts.datagramKeys.recv) : null;
  }

  /** Datagram records refused on arrival: replays (or too old) and forgeries. */
  get datagramsRejected(): { replays: number; forged: number } {
    return { replays: this.datagramOpener?.replays ?? 0, forged: this.datagramOpener?.forged ?? 0 };
  }

  get status(): DirectStatus {
    const a = this.attempt;
    return {
      state: !a ? 'off' : a.up ? this.kind : 'connecting',
      rttMs: a?.up ? a.path!.rttMs : -1,
      route: a?.up ? this.route : null,
      attempts: this.attempts,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  /** The link's path id while up, else null. */
  get pathId(): number | null {
    return this.attempt?.up ? this.attempt.pathId : null;
  }

  /** Client: ends the attempt or path (telling the peer) and makes none until resume(). */
  pause(reason: string): void {
    this.paused = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.attempt) this.end(this.attempt, reason);
  }

  /** Client: attempts (again, after pause()) unless one runs or a retry is due later. */
  resume(): void {
    this.paused = false;
    this.start();
  }

  /** Client: offer a direct path (now, and again after failures) unless one is up or being set up. */
  start(): void {
    if (this.opts.role !== 'offer' || this.closed || this.paused || this.attempt || this.loading || this.retryTimer) return;
    this.withWebRtc((rtc) => {
      const pc = this.newAttempt(rtc);
      if (pc) this.openChannels(); // the first channel starts the offer (libdatachannel negotiates by itself)
    });
  }

  /** A SIGNAL frame from the peer. */
  onSignal(kind: SignalKindValue, text: string): void {
    if (this.closed) return;
    switch (kind) {
      case SignalKind.OFFER: {
        if (this.opts.role !== 'answer') return this.refuse('an offer from the exit peer (only clients offer)');
        const now = performance.now();
        if (now - this.lastOfferAt < MIN_OFFER_INTERVAL_MS) {
          this.refuse(`an offer ${Math.round(now - this.lastOfferAt)} ms after the last one`);
          return this.signal(SignalKind.CLOSE, 'offers too frequent');
        }
        this.lastOfferAt = now;
        if (this.attempt) this.end(this.attempt, 'replaced by a new offer', false);
        this.early = [];
        this.withWebRtc((rtc) => {
          const early = this.early;
          this.early = [];
          if (!this.newAttempt(rtc)) return;
          if (!this.applyRemote(text, 'offer')) return;
          this.openChannels(); // after the offer: no competing offer of our own
          for (const candidate of early) this.onSignal(SignalKind.CANDIDATE, candidate);
        });
        return;
      }
      case SignalKind.ANSWER:
        if (this.opts.role !== 'offer' || !this.attempt || this.attempt.remoteFingerprint) return this.refuse('an answer nobody asked for');
        if (this.applyRemote(text, 'answer')) {
          const held = this.attempt.heldLocal ?? [];
          this.attempt.heldLocal = null;
          for (const candidate of held) this.signal(SignalKind.CANDIDATE, candidate);
        }
        return;
      case SignalKind.CANDIDATE: {
        const a = this.attempt;
        if (!a) {
          // Before the answer's peer connection exists (it is made asynchronously): kept for it. Otherwise a late
          // candidate of an attempt that has ended.
          if (this.loading && this.opts.role === 'answer' && this.early.length < MAX_REMOTE_CANDIDATES) this.early.push(text);
          return;
        }
        if (++a.remoteCandidates > MAX_REMOTE_CANDIDATES) return; // a real peer sends a handful
        const nl = text.indexOf('\n');
        if (nl <= 0) return this.end(a, 'a malformed ICE candidate (no media id)');
        const candidate = text.slice(nl + 1);
        const mid = text.slice(0, nl);
        const add = () => {
          if (this.attempt !== a) return;
          try {
            a.pc.addRemoteCandidate(candidate, mid);
          } catch (err) {
            this.end(a, `the peer's ICE candidate was refused: ${errorText(err)}`);
          }
        };
        const where = candidateAddress(candidate);
        const relayed = relayedCandidateAddress(candidate);
        if (relayed) this.notePeerRelayed(a, endpoint(relayed));
        if (where && unusableCandidateAddress(where.address) && !unusableCandidateAddress(this.config.bindAddress ?? '0.0.0.0')) {
          return this.opts.log(`direct path: ignored a candidate on ${where.address} (loopback, unspecified or multicast)`);
        }
        const allow = this.config.allowRemote;
        if (!allow) return add();
        // In order, each once its address may be used (zksd: routed outside the TUN, let through the kill switch).
        if (!where) return this.opts.log(`direct path: skipped a candidate without an IP address and UDP port: ${candidate}`);
        a.candidates = a.candidates.then(() => allow(where.address, where.port)).then(add, (err: unknown) => {
          this.opts.log(`direct path: candidate ${where.address}:${where.port} not allowed: ${errorText(err)}`);
        });
        return;
      }
      case SignalKind.CLOSE:
        if (this.attempt) this.end(this.attempt, `the peer ended the direct path${text ? `: ${text}` : ''}`, false);
        return;
    }
  }

  /** The session is over: the peer connection closes, no retry. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.attempt) this.end(this.attempt, 'the session ended', false);
  }

  private withWebRtc(run: (rtc: WebRtc) => void): void {
    this.loading = true;
    Promise.all([loadWebRtc(), allowIceServers(this.config)]).then(
      ([rtc]) => {
        this.loading = false;
        if (!this.closed && !this.paused) run(rtc); // paused while loading: a TCP path came up meanwhile
      },
      (err: unknown) => {
        this.loading = false;
        this.lastError = errorText(err);
        this.opts.log(`direct path unavailable: ${this.lastError}; traffic stays on the room`);
        if (this.opts.role === 'answer') this.signal(SignalKind.CLOSE, 'no WebRTC stack at the exit peer');
        else this.scheduleRetry(); // a transient failure (zksd could not open a route) must not end the direct path for good
      },
    );
  }

  private newAttempt(rtc: WebRtc): RtcPeer | null {
    if (this.attempt) this.end(this.attempt, 'replaced by a new attempt', false);
    const c = this.config;
    let pc: RtcPeer;
    try {
      pc = rtc.newPeer(`zks-${this.opts.role}-${this.opts.link.id}`, {
        iceServers: iceServersOf(c),
        bindAddress: c.bindAddress,
        iceTransportPolicy: c.relayOnly ? 'relay' : 'all',
        maxMessageSize: MAX_DIRECT_MESSAGE,
        enableIceUdpMux: false,
        portRangeBegin: c.portRange?.min,
        portRangeEnd: c.portRange?.max,
      });
    } catch (err) {
      this.lastError = errorText(err);
      this.opts.log(`direct path: cannot create a peer connection: ${this.lastError}`);
      if (this.opts.role === 'offer') this.scheduleRetry();
      return null;
    }
    this.attempts++;
    const a: Attempt = {
      pc, started: performance.now(), channels: null, path: null, pathId: -1, opened: 0, up: false, remoteFingerprint: null,
      candidates: Promise.resolve(), remoteCandidates: 0,
      heldLocal: this.opts.role === 'offer' ? [] : null, peerRelayed: new Set(), remoteEnd: null,
      timer: setTimeout(() => this.end(a, `no direct connection within ${c.connectTimeoutMs} ms`), c.connectTimeoutMs),
    };
    a.timer.unref?.();
    this.attempt = a;
    pc.onLocalDescription((sdp, type) => {
      if (this.attempt !== a) return;
      const text = this.opts.rewriteLocalSdp ? this.opts.rewriteLocalSdp(sdp) : sdp;
      if (utf8.encode(text).length > MAX_SIGNAL_TEXT) return this.end(a, `our ${type} is larger than a SIGNAL frame (${MAX_SIGNAL_TEXT} bytes)`);
      this.signal(type === 'offer' ? SignalKind.OFFER : SignalKind.ANSWER, text);
    });
    pc.onLocalCandidate((candidate, mid) => {
      const text = `${mid}\n${candidate.replace(/^a=/, '')}`;
      if (this.attempt !== a || text.length > MAX_SIGNAL_TEXT / 4) return; // one line: always small
      if (a.heldLocal) a.heldLocal.push(text);
      else this.signal(SignalKind.CANDIDATE, text);
    });
    pc.onStateChange((state) => {
      if (state === 'failed' || state === 'closed') this.end(a, `the peer connection ${state}`);
    });
    return pc;
  }

  /** Sets the peer's offer or answer; false (the attempt ended) when the stack refuses it. */
  private applyRemote(sdp: string, type: 'offer' | 'answer'): boolean {
    const a = this.attempt!;
    const fingerprint = fingerprintOf(sdp);
    if (!fingerprint) {
      this.end(a, `the peer's ${type} has no DTLS fingerprint`);
      return false;
    }
    try {
      a.pc.setRemoteDescription(sdp, type);
    } catch (err) {
      this.end(a, `the peer's ${type} was refused: ${errorText(err)}`);
      return false;
    }
    a.remoteFingerprint = fingerprint;
    return true;
  }

  private openChannels(): void {
    const a = this.attempt!;
    const records = a.pc.createDataChannel(RECORD_CHANNEL.label, { negotiated: true, id: RECORD_CHANNEL.id });
    const heartbeats = a.pc.createDataChannel(HEARTBEAT_CHANNEL.label, { negotiated: true, id: HEARTBEAT_CHANNEL.id, unordered: true, maxRetransmits: 0 });
    a.channels = [records, heartbeats]; // kept: a collected channel stops reading (README, Direct path)
    const link = this.opts.link;
    a.path = new ChannelPath(records, heartbeats, {
      record: (m) => link.receive(m),
      dead: (why) => this.end(a, why),
      backlogged: (held) => {
        if (this.attempt === a && a.up && link.activePath === a.pathId) link.mux.holdSending(held, HoldReason.PATH);
      },
      datagram: (m) => {
        const frames = this.datagramOpener?.open(m);
        if (!(frames instanceof Uint8Array)) return; // replayed, forged, or no keys: counted, dropped like bad UDP
        this.datagramsReceived++;
        link.mux.receiveDatagramRecord(frames);
      },
    });
    // Added now, used once open: from here on records may overtake each other, and the link waits for gaps.
    a.pathId = link.addPath(a.path);
    for (const ch of a.channels) ch.onOpen(() => ++a.opened === 2 && this.up(a));
  }

  private up(a: Attempt): void {
    if (this.attempt !== a) return;
    const seen = a.pc.remoteFingerprint();
    const got = seen ? `${seen.algorithm.toLowerCase()} ${seen.value.toUpperCase()}` : null;
    if (!a.remoteFingerprint || got !== a.remoteFingerprint) {
      return this.end(a, `the peer's DTLS certificate (${got ?? 'none'}) is not the one signalled (${a.remoteFingerprint ?? 'none'})`);
    }
    clearTimeout(a.timer);
    a.up = true;
    const pair = selectedPair(a);
    a.remoteEnd = pair?.remoteEnd ?? null;
    this.kind = pair?.relayed ? 'turn' : 'direct';
    this.route = pair?.route ?? null;
    this.retryMs = this.config.retryMs;
    a.path!.start();
    this.opts.link.usePath(a.pathId);
    const sealer = this.datagramSealer;
    const path = a.path!;
    if (sealer) {
      this.opts.link.mux.datagrams.explicitAddresses = true; // before the route: no datagram relies on a lost one
      this.opts.link.datagramRoute = datagramRoute(sealer, (m) => {
        path.sendDatagram(m);
        this.datagramsSent++;
      });
    }
    this.opts.log(`direct path up (${this.kind}${this.route ? `, ${this.route}` : ''}) after ${Math.round(performance.now() - a.started)} ms`);
    this.opts.changed?.();
  }

  /** The peer signalled a relayed candidate: when the path is up through it, the path is a TURN one. */
  private notePeerRelayed(a: Attempt, end: string): void {
    a.peerRelayed.add(end);
    if (!a.up || this.kind === 'turn' || a.remoteEnd !== end) return;
    this.kind = 'turn';
    this.opts.log(`direct path is relayed by TURN (${this.route}): the peer's end is its TURN allocation`);
    this.opts.changed?.();
  }

  /** Ends attempt `a` (when it is the current one); `tell`: send CLOSE to the peer. */
  private end(a: Attempt, reason: string, tell = true): void {
    if (this.attempt !== a) return;
    this.attempt = null;
    clearTimeout(a.timer);
    const link = this.opts.link;
    if (a.path) {
      if (a.up) {
        link.datagramRoute = null;
        link.mux.datagrams.explicitAddresses = false;
      }
      a.path.stop();
      link.pathLost(a.pathId); // records it may have lost go again on the path in use (and its hold goes with it)
    }
    try {
      a.pc.close();
    } catch {
      // already closed
    }
    if (this.closed) return;
    if (tell) this.signal(SignalKind.CLOSE, reason);
    if (this.paused) return this.opts.changed?.();
    this.failures++;
    this.lastError = reason;
    this.opts.log(`direct path ${a.up ? 'lost' : 'not established'}: ${reason}; traffic ${a.up ? 'back' : 'stays'} on the room`);
    if (this.opts.role === 'offer') this.scheduleRetry();
    this.opts.changed?.();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed || this.paused) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.config.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.start();
    }, wait);
    this.retryTimer.unref?.();
  }

  private refuse(why: string): void {
    this.opts.log(`direct path: ignored ${why}`);
  }

  private signal(kind: SignalKindValue, text: string): void {
    this.opts.link.mux.sendSignal(kind, text);
  }
}
