// One client session inside a room, as the exit peer sees it: the first payload is the client's HELLO
// (keyed by the room PSK, docs/PROTOCOL.md §2), our REPLY is the first payload back, and from then on every
// payload is one sealed record for a SecureLink + Mux (role 'server') whose streams the exit connects.
// States: HELLO (waiting) → HANDSHAKING (async crypto; later payloads queue, bounded) → OPEN → CLOSED. A session
// that can be resumed (§11.7) goes from OPEN to DETACHED when its WebSocket is lost and back to OPEN, on another sid,
// when its client resumes it; a handshake that resumes one waits in RESUMING for the RESUME record, then hands its
// sid over (session-resume.ts). The room never sees plaintext: it routes by sid and forwards opaque bytes.

import { debuglog } from 'node:util';
import { decodeBase64Url, respondToHello, verifyClientHello, RELAY_ENTROPY_SIZE } from '../crypto/handshake';
import { nodeCrypto } from '../crypto/node';
import { createChannel } from '../crypto/record';
import type { X25519Keypair } from '../crypto/types';
import { ZksError } from '../errors/zks-error';
import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';
import type { MuxDatagramFlow } from '../protocol/datagrams';
import type { DatagramActivity } from '../protocol/delay-pacer';
import type { EchoOutcome, EchoRequest } from '../protocol/datagram-types';
import { SecureLink } from '../link/secure-link';
import { installLinkDiagnostics } from '../link/diagnostics';
import { SID_HEADER_SIZE, sidHeadroomPayload } from '../protocol/room-wire';
import { Capability } from '../protocol/datagram-types';
import type { SignalKindValue } from '../protocol/signal-codec';
import { DirectPaths, directCapabilities } from '../direct/direct-paths';
import { ResumableSocket } from '../link/resumable-socket';
import { deriveResumeKeys } from '../crypto/resume';
import type { ResumeRegistry } from './resume-registry';
import { answerResume, type ResumeHandshake } from './session-resume';
import { deriveTcpPathKey } from '../direct/tcp-hello';
import { deriveDatagramKeys, type DatagramKeys } from '../direct/datagram-records';
import type { DirectConfig } from '../direct/config';

const debug = debuglog('zks:exit');
installLinkDiagnostics();

/** What a session needs from its room connection. */
export interface SessionHost {
  readonly psk: Uint8Array;
  /** The exit's static key (`zks keygen --exit`), for clients that pin it; null when the exit has none. */
  readonly staticKey: X25519Keypair | null;
  /**
   * Sends one end-to-end payload to this session's client (the host adds the sid header); `written` as in
   * MessageSocket.sendOwned (the payload's buffer is the host's until then).
   */
  send(sid: number, payload: Uint8Array, written?: () => void): void;
  /** Tells the room to end this session (exit → room `close`). */
  sendClose(sid: number, reason: string): void;
  /** The session is over: drop it from the sid map. */
  forget(session: ExitSession): void;
  /** A resumed session takes over `session.sid` (the handshake that resumed it had it). */
  adopt?(session: ExitSession): void;
  /** Sessions kept across a lost WebSocket (§11.7); absent or null: sessions end with their WebSocket. */
  readonly resumes?: ResumeRegistry<ExitSession> | null;
  onStream(stream: MuxStream, target: Target): void;
  /** UDP flows and echo requests of one session (the exit's NAT and pinger); null: this exit relays neither. */
  openDatagrams?(sid: number): SessionDatagrams | null;
  /** Datagrams on any session of this room connection: all their bulk is paced meanwhile (delay-pacer.ts). */
  readonly datagramActivity?: DatagramActivity;
  /** Bytes the room WebSocket holds unsent (datagrams are dropped above a limit instead of queueing). */
  backlog?(): number;
  /** Answer direct path offers (PROTOCOL.md §3.6) with these ICE settings; null: the room only. */
  readonly direct?: DirectConfig | null;
  log(line: string): void;
}

/** What one session's UDP flows and echoes go to; closed with the session. */
export interface SessionDatagrams {
  /** Capability bits announced to the client (Capability.UDP | Capability.ICMP_ECHO). */
  readonly capabilities: number;
  onFlow(flow: MuxDatagramFlow): void;
  onEcho(req: EchoRequest, respond: (outcome: EchoOutcome) => void): void;
  close(): void;
}

const State = { HELLO: 0, HANDSHAKING: 1, OPEN: 2, CLOSED: 3, RESUMING: 4, DETACHED: 5 } as const;
type StateValue = (typeof State)[keyof typeof State];

/** A client that opens a session and never sends its HELLO is dropped after this long. */
export const HELLO_TIMEOUT_MS = 10_000;
/** Payloads accepted while the handshake is still being computed (a correct client sends none). */
const MAX_EARLY_PAYLOADS = 8;

export class ExitSession {
  private state: StateValue = State.HELLO;
  private link: SecureLink | null = null;
  private early: Uint8Array[] = [];
  private helloTimer: NodeJS.Timeout | null;
  private closedBySocket: (() => void) | null = null;
  private datagrams: SessionDatagrams | null = null;
  /** The direct path to this session's client, once it offered one. */
  direct: DirectPaths | null = null;
  private datagramKeys: DatagramKeys | undefined;
  private tcpPathKey: Uint8Array | undefined;
  /** Path 0: the room, through whichever sid the session has now. */
  private socket: ResumableSocket | null = null;
  /** Resumable sessions: what names the session and what proves it (crypto/resume.ts). */
  ticket: Uint8Array = new Uint8Array(0);
  resumeSecret: Uint8Array | null = null;
  /** A resuming handshake, between its REPLY and the RESUME record. */
  private resuming: ResumeHandshake | null = null;

  /**
   * `entropy` is the room's contribution to the key schedule (REPLY.relayEntropy, §2.4): 32 random bytes the
   * Durable Object drew for this session. It adds freshness next to both ephemeral X25519 keys; it is public
   * (it travels in the REPLY) and gives the room no power over the keys, which also depend on the PSK and DH.
   */
  constructor(
    public sid: number,
    private readonly entropy: Uint8Array,
    private host: SessionHost,
  ) {
    this.helloTimer = setTimeout(() => this.fail(`no handshake within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    this.helloTimer.unref();
  }

  /** Validates the `open` control's entropy; null when it is not 32 bytes of canonical base64url. */
  static decodeEntropy(text: string): Uint8Array | null {
    const bytes = decodeBase64Url(text);
    return bytes && bytes.length === RELAY_ENTROPY_SIZE ? bytes : null;
  }

  /** A method, not a property read, so TypeScript does not narrow it across awaits. */
  private ended(): boolean {
    return this.state === State.CLOSED;
  }

  get isOpen(): boolean {
    return this.state === State.OPEN;
  }

  get isClosed(): boolean {
    return this.state === State.CLOSED;
  }

  /** The number of the next record expected from the client (resume: everything below it arrived). */
  get receivedNext(): number {
    return this.link?.receivedNext ?? 0;
  }

  get mux() {
    return this.link?.mux ?? null;
  }

  /** One payload from the client (sid header already removed). */
  receive(payload: Uint8Array): void {
    switch (this.state) {
      case State.HELLO:
        this.state = State.HANDSHAKING;
        if (this.helloTimer) clearTimeout(this.helloTimer);
        this.helloTimer = null;
        void this.handshake(payload).catch((err: unknown) => this.fail(`handshake failed: ${(err as Error).message}`));
        return;
      case State.HANDSHAKING:
        if (this.early.length >= MAX_EARLY_PAYLOADS) return this.fail('client sent records before the handshake finished');
        this.early.push(payload);
        return;
      case State.OPEN:
        this.link!.receive(payload);
        return;
      case State.RESUMING: {
        const h = this.resuming!;
        this.resuming = null;
        this.state = State.HANDSHAKING; // anything more before RESUMED is early, and fails the session
        void answerResume(this, this.host, h, payload).catch((err: unknown) => this.fail(`resume failed: ${(err as Error).message}`));
        return;
      }
      case State.CLOSED:
      case State.DETACHED:
        return;
    }
  }

  private async handshake(hello: Uint8Array): Promise<void> {
    const verified = await verifyClientHello(nodeCrypto, this.host.psk, hello);
    if (this.ended()) return;
    if (verified instanceof ZksError) {
      // Most often a client with another room secret: say so to the room (and so to that client) only.
      this.fail(verified.message);
      return;
    }
    const { reply, keys } = await respondToHello(nodeCrypto, this.host.psk, verified, {
      relayEntropy: this.entropy,
      staticKey: this.host.staticKey ?? undefined,
      capabilities: true,
      sequencedRecords: true,
    });
    const { sealer, opener } = await createChannel(nodeCrypto, keys);
    if (verified.resumesSession) {
      // Not a session of its own: its first record names the one to resume (session-resume.ts).
      keys.sendKey.fill(0);
      keys.recvKey.fill(0);
      if (this.ended()) return;
      this.host.send(this.sid, reply);
      this.resuming = { sealer, opener, sessionId: keys.sessionId };
      this.state = State.RESUMING;
      const early = this.early;
      this.early = [];
      for (const p of early) this.receive(p);
      return;
    }
    const resumes = keys.sequencedRecords && keys.capabilities ? this.host.resumes ?? null : null;
    if (resumes) {
      const r = await deriveResumeKeys(nodeCrypto, keys.recvKey);
      this.ticket = r.ticket;
      this.resumeSecret = r.secret;
    }
    // Only sessions with sequenced records can move between paths (§3.6).
    const directConfig = keys.sequencedRecords ? this.host.direct ?? null : null;
    if (directConfig) this.datagramKeys = await deriveDatagramKeys(nodeCrypto, keys);
    if (directConfig) this.tcpPathKey = await deriveTcpPathKey(nodeCrypto, keys.recvKey);
    keys.sendKey.fill(0);
    keys.recvKey.fill(0);
    if (this.ended()) {
      this.resumeSecret?.fill(0); // the room or the client gave up while we computed
      return;
    }
    this.host.send(this.sid, reply);
    const datagrams = this.host.openDatagrams?.(this.sid) ?? null;
    this.datagrams = datagrams;
    this.socket = new ResumableSocket({
        // Records come with room for the session id in front: the room connection frames them without a copy.
        headroom: SID_HEADER_SIZE,
        send: (record) => {
          if (this.state === State.OPEN) this.host.send(this.sid, sidHeadroomPayload(record));
        },
        sendOwned: (record, written) => {
          if (this.state === State.OPEN) this.host.send(this.sid, sidHeadroomPayload(record), written);
        },
        ownsReceived: true, // payloads are views into the room message ws handed over once
        // Called after GOAWAY has left, or on a fatal record error: end this session at the room.
        close: (_code, reason) => this.end(reason),
        backlog: () => this.host.backlog?.() ?? 0,
      });
    this.link = new SecureLink(
      this.socket,
      sealer,
      opener,
      {
        role: 'server',
        paceByDelay: true, // bulk downloads must not queue megabytes ahead of datagrams (delay-pacer.ts)
        datagramActivity: this.host.datagramActivity, // every session shares the room connection's queues
        scheduleFlush: (fn) => void setImmediate(fn),
        peerAnnouncesCapabilities: keys.capabilities ?? false,
        sequencedRecords: keys.sequencedRecords ?? false,
        capabilities: (datagrams?.capabilities ?? 0) | directCapabilities(directConfig, this.tcpPathKey) | (resumes ? Capability.RESUME : 0),
        onSignal: directConfig ? (kind, text) => this.onSignal(directConfig, kind, text) : undefined,
        onDatagramFlow: datagrams ? (flow) => datagrams.onFlow(flow) : undefined,
        onEcho: datagrams ? (req, respond) => datagrams.onEcho(req, respond) : undefined,
        onStream: (stream, target) => this.host.onStream(stream, target),
        onClose: (err) => {
          if (err) debug('session %d ended: %s', this.sid, err.message);
          // GOAWAY received or transport lost: the link closes its socket (→ end) itself where needed.
        },
      },
    );
    this.state = State.OPEN;
    resumes?.add(this);
    debug('session %d open (%s)', this.sid, keys.suite);
    const early = this.early;
    this.early = [];
    for (const p of early) this.link.receive(p);
  }

  /** SIGNAL from the client: its direct path offer, candidates, or the end of an attempt. */
  private onSignal(config: DirectConfig, kind: SignalKindValue, text: string): void {
    if (!this.direct) {
      const sid = this.sid;
      this.direct = new DirectPaths({
        role: 'answer', link: this.link!, config, datagramKeys: this.datagramKeys, tcpPathKey: this.tcpPathKey, log: (line) => this.host.log(`session ${sid}: ${line}`),
      });
    }
    this.direct.onSignal(kind, text);
  }

  /**
   * The room ended this session, or the room WebSocket is gone: a resumable session waits for its client (its
   * streams stall); any other ends, every stream closed, nothing sent.
   */
  remoteClosed(reason: string): void {
    if (this.state === State.CLOSED || this.state === State.DETACHED) return;
    const resumes = this.host.resumes;
    // Only a client that announced it resumes (Capability.RESUME) is waited for.
    const peerResumes = ((this.link?.mux.datagrams.knownPeerCapabilities ?? 0) & Capability.RESUME) !== 0;
    if (this.state === State.OPEN && peerResumes && this.resumable && resumes) {
      this.state = State.DETACHED;
      this.socket!.detach();
      this.host.forget(this);
      resumes.detach(this);
      this.host.log(`session ${this.sid}: lost its WebSocket (${reason}); kept ${Math.round(resumes.graceMs / 1000)} s for its client to resume it`);
      return;
    }
    this.markClosed();
    this.link?.socketClosed(reason);
  }

  /** Still there to be resumed (open, or detached within its grace period). */
  get resumable(): boolean {
    return (this.state === State.OPEN || this.state === State.DETACHED) && this.resumeSecret !== null && this.link !== null && !this.link.isDead;
  }

  /**
   * Its client resumed it on `sid` of `host` (session-resume.ts checked the proof): records flow again there, the
   * client has every record below `peerNext`, the rest goes again.
   */
  resumeOn(sid: number, host: SessionHost, peerNext: number): void {
    if (this.state === State.OPEN) {
      // Resumed while the room still routed the old WebSocket (it had not noticed it was gone): that sid is done.
      this.host.sendClose(this.sid, 'the session was resumed on another WebSocket');
      this.host.forget(this);
    }
    const from = this.sid;
    this.sid = sid;
    this.host = host;
    this.state = State.OPEN;
    host.adopt?.(this);
    host.resumes?.attach(this);
    if (!this.socket!.attach(this.socket!.first) || !this.link!.resumed(peerNext)) return this.end('the session ended while it was resumed');
    host.log(`session ${from}: resumed as session ${sid}`);
  }

  /** The handshake that resumed another session is done; its sid now belongs to that one. */
  handOver(): void {
    this.state = State.CLOSED;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.host.forget(this);
  }

  /** Not resumed within the grace period (or the exit peer is closing): over, its streams closed. */
  expire(reason: string): void {
    if (this.state === State.CLOSED) return;
    this.host.log(`session ${this.sid}: ended: ${reason}`);
    this.markClosed();
    this.link?.socketClosed(reason);
  }

  /** A refused or failed resume: said to the room (and so to that client), then forgotten. */
  failResume(reason: string): void {
    this.fail(reason);
  }

  /**
   * Local shutdown: GOAWAY to the client, streams closed (their target sockets reset), then `close` to the
   * room once the GOAWAY record has left. Resolves when that happened or after `graceMs`.
   */
  shutdown(graceMs = 1000): Promise<void> {
    if (this.state === State.CLOSED) return Promise.resolve();
    if (this.state !== State.OPEN) {
      this.end('exit peer shutting down');
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.end('exit peer shutting down');
        resolve();
      }, graceMs);
      timer.unref();
      this.closedBySocket = () => {
        clearTimeout(timer);
        resolve();
      };
      this.link!.close();
    });
  }

  /** A session-level error before or during the handshake (bad HELLO, timeout): tell the room, forget. */
  private fail(reason: string): void {
    if (this.state === State.CLOSED) return;
    if (this.state !== State.OPEN) this.host.log(`session ${this.sid}: ${reason}`);
    this.end(reason);
  }

  /** Ends the session at the room with `reason` (once). */
  private end(reason: string): void {
    if (this.state !== State.CLOSED) {
      // Detached, the sid is no longer ours (the room may have given it to another client): nothing to tell.
      const tell = this.state !== State.DETACHED;
      this.markClosed();
      this.link?.socketClosed(reason);
      if (tell) this.host.sendClose(this.sid, reason);
    }
  }

  private markClosed(): void {
    this.state = State.CLOSED;
    this.host.resumes?.remove(this);
    this.resumeSecret?.fill(0);
    this.resumeSecret = null;
    this.direct?.close();
    this.datagrams?.close();
    this.datagrams = null;
    this.early = [];
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.host.forget(this);
    const done = this.closedBySocket; // a pending shutdown() is over, whoever ended the session
    this.closedBySocket = null;
    done?.();
  }
}
