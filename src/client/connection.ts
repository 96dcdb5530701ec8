// One encrypted WebSocket to the relay, on either path:
//   direct: HELLO (keyed by the Worker key) rides in the upgrade's Sec-WebSocket-Protocol; the Worker answers.
//   room:   a room token (Worker key) rides in the upgrade; HELLO (keyed by the room PSK) is the first message
//           and the exit peer answers through the blind room.
// Either way the REPLY is the first binary message, then a SecureLink + Mux carries client streams. Keepalive
// pings every `pingIntervalMs` (Cloudflare drops idle WebSockets after ~100 s) double as RTT probe and liveness check.
// The socket itself (open deadline, liveness, the relay's close reason) is link/relay-socket.ts, shared with the exit.

import type { LookupFunction } from 'node:net';
import type { WsClient } from '../link/websocket/client';
import { createClientHello, encodeBase64Url, finishClientHandshake } from '../crypto/handshake';
import { createChannel, type RecordOptions } from '../crypto/record';
import { nodeCrypto } from '../crypto/node';
import { createRoomToken, RoomRole } from '../crypto/room';
import type { CipherSuite } from '../crypto/types';
import { CloseCode, MAX_RECORD_SIZE } from '../protocol/constants';
import type { DatagramActivity } from '../protocol/delay-pacer';
import { ZksError } from '../errors/zks-error';
import { parseRoomControl, ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX, SID_HEADER_SIZE } from '../protocol/room-wire';
import { SecureLink } from '../link/secure-link';
import { RelaySocket, type RelaySocketOptions } from '../link/relay-socket';
import { Capability } from '../protocol/datagram-types';
import { DirectPaths, directCapabilities } from '../direct/direct-paths';
import { deriveTcpPathKey } from '../direct/tcp-hello';
import { deriveDatagramKeys } from '../direct/datagram-records';
import type { DirectConfig } from '../direct/config';
import type { MuxOptions } from '../protocol/mux';
import { TUNNEL_AGENT_PREFIX } from '../protocol/tunnel-http';
import { ResumableSocket } from '../link/resumable-socket';
import { SESSION_PATH_PREFIX } from '../protocol/resume-wire';
import { deriveResumeKeys, sessionName, type ResumeKeys } from '../crypto/resume';
import { dialResume } from './resume-dial';
import { httpRefusal, pathUrl, roomNoticeError, roomUrl } from './relay-answers';
import type { RelaySet } from './relay-set';

export interface RoomPath {
  roomId: Uint8Array;
  psk: Uint8Array;
  /** The exit's pinned static public key (`--exit-id`, from `zks keygen --exit`): only that exit is accepted. */
  exitId?: Uint8Array;
  /** Offer the exit a direct path (PROTOCOL.md §3.6) with these ICE settings; absent: the room only. */
  direct?: DirectConfig;
}

export interface ConnectionOptions {
  url: string;
  /** Several relays (the pool's): a resume goes to one of them, preferring another than the one just lost. */
  relays?: RelaySet;
  /** The Worker key (direct mode: also the handshake PSK). */
  key: Uint8Array;
  /** Set for relay mode: streams go through this room to its exit peer, end-to-end encrypted. */
  room?: RoomPath;
  suites?: CipherSuite[];
  window?: number;
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
  /** Resolves the relay host (zksd pins the addresses it resolved before routing everything into the TUN). */
  lookup?: LookupFunction;
  /** Opens the TCP connection to the relay (zksd: sockets marked for its kill switch); see RelaySocketOptions. */
  openTcp?: RelaySocketOptions['openTcp'];
  /** Record-layer options; both ends must agree (tests use a small rekeyRecords to cross key epochs). */
  record?: RecordOptions;
  onClose?: (conn: TunnelConnection, err: ZksError | null) => void;
  /** The session was resumed on a new WebSocket: the relay and the exit peer are back (the pool ends its back-off). */
  onResumed?: (conn: TunnelConnection) => void;
  /** Shared with the pool's other connections: datagrams on one pace the bulk of all (delay-pacer.ts). */
  datagramActivity?: DatagramActivity;
  /**
   * HTTP tunnel agent (`zks expose http://…`): the WebSocket goes to `/tunnel-agent/<id>` (direct mode's key proof)
   * and the relay's streams and signals go to these handlers (src/expose/http-agent.ts).
   */
  tunnelAgent?: { id: string; onStream: NonNullable<MuxOptions['onStream']>; onSignal: NonNullable<MuxOptions['onSignal']> };
  /** What happens to the connection's direct path (relay mode), for the user. */
  log?: (line: string) => void;
  /**
   * Relay mode: how long to try resuming the session on a new WebSocket when this one is lost (PROTOCOL.md §11.7),
   * if the exit peer keeps sessions (Capability.RESUME); default 60 s, 0: the session ends with its WebSocket.
   */
  resumeGraceMs?: number;
}

/** How long a lost session is tried again by default (the exit peer keeps it as long: resume-registry.ts). */
export const DEFAULT_RESUME_GRACE_MS = 60_000;
/** Waits between resume attempts: from the first, doubling, at most the last. */
const RESUME_RETRY_MS = [250, 2_000] as const;

let nextConnectionId = 1;


export class TunnelConnection {
  readonly id = nextConnectionId++;
  private closedFlag = false;
  /** Relay mode with Capability.RESUME: the session's resume keys, and path 0 whose WebSocket a resume replaces. */
  private resume: { keys: ResumeKeys; primary: ResumableSocket; opts: ConnectionOptions; sessionPath: string | null } | null = null;
  /** The WebSocket was lost and a resume is under way (streams stall meanwhile). */
  resuming = false;
  /** Why the last WebSocket was lost, and how the last resume attempt failed, if one did (for errors meanwhile). */
  lostWhy = '';
  /** Sessions resumed on a new WebSocket so far. */
  resumes = 0;
  /** close() was called: no resume any more. */
  private closing = false;
  /** The relay (its --relay URL) the current WebSocket goes to; a resume may move it to another. */
  relayUrl = '';
  /** The direct path to the exit peer (relay mode with room.direct), once the exit announced it can answer. */
  direct: DirectPaths | null = null;
  /** Relay mode: the far end is an exit peer behind a room (not the Worker). */
  viaRoom = false;
  /** The far end agreed to a session that can be resumed (an exit peer, or a Worker keeping direct-mode sessions). */
  sessionKept = false;

  private constructor(
    /** The WebSocket the session uses now (a resume replaces it). */
    private readonly via: { socket: RelaySocket },
    readonly link: SecureLink,
    readonly suite: CipherSuite,
    private readonly pingIntervalMs: number,
  ) {}

  get ws(): WsClient {
    return this.via.socket.ws;
  }

  get mux() {
    return this.link.mux;
  }
  get closed(): boolean {
    return this.closedFlag || this.link.mux.isClosed;
  }

  /** Where this link's records go now: the Worker (direct mode), the room, or a direct path to the exit peer. */
  get path(): 'worker' | 'room' | 'direct' | 'turn' {
    const state = this.direct?.status.state;
    if (state === 'direct' || state === 'turn') return state;
    return this.viaRoom ? 'room' : 'worker';
  }

  static async open(opts: ConnectionOptions): Promise<TunnelConnection> {
    const psk = opts.room ? opts.room.psk : opts.key;
    const graceMs = opts.resumeGraceMs ?? DEFAULT_RESUME_GRACE_MS;
    // Direct mode asks the Worker to keep the session (§11.8) under a name of its own; a Worker that does not
    // answers without sequenced records, and the session is then as it always was (reset with its WebSocket).
    const askToKeep = !opts.room && !opts.tunnelAgent && graceMs > 0;
    const { hello, state } = await createClientHello(nodeCrypto, psk, {
      suites: opts.suites, responderStatic: opts.room?.exitId, capabilities: true,
      // The exit peer's choice (§2.5a), or a Worker's that keeps direct-mode sessions.
      sequencedRecords: opts.room !== undefined || askToKeep,
    });
    // The name is bound to this HELLO (§11.8); a resume goes to the same name with a HELLO of its own.
    const sessionPath = askToKeep ? `${SESSION_PATH_PREFIX}${encodeBase64Url(await sessionName(nodeCrypto, opts.key, hello))}` : null;
    const url = opts.room ? roomUrl(opts.url, opts.room.roomId)
      : opts.tunnelAgent ? pathUrl(opts.url, `${TUNNEL_AGENT_PREFIX}${opts.tunnelAgent.id}`)
      : sessionPath ? pathUrl(opts.url, sessionPath) : opts.url;
    const protocols = opts.room
      ? [ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX + encodeBase64Url(await createRoomToken(nodeCrypto, opts.key, opts.room.roomId, RoomRole.CLIENT))]
      : ['zks1', `zks1.${encodeBase64Url(hello)}`];
    const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;

    return new Promise<TunnelConnection>((resolve, reject) => {
      let conn: TunnelConnection | null = null;
      let settled = false;
      /**
       * Null until the REPLY arrives. While it is being processed (async crypto), later binary messages are
       * records: they wait here, in order, for the link — they must neither run the handshake again nor be lost.
       */
      let early: Buffer[] | null = null;
      const fail = (err: ZksError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.terminate(err.message);
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new ZksError('ZKS_ERR_TIMEOUT', `relay ${opts.url} did not complete the handshake within ${timeoutMs} ms`)),
        timeoutMs,
      );

      const finishHandshake = async (reply: Buffer): Promise<void> => {
        const keys = await finishClientHandshake(nodeCrypto, state, reply);
        if (keys instanceof ZksError) return fail(keys);
        const { sealer, opener } = await createChannel(nodeCrypto, keys, opts.record);
        // Only sessions with sequenced records can move between paths (§3.6).
        const directConfig = opts.room?.direct && keys.sequencedRecords ? opts.room.direct : null;
        const datagramKeys = directConfig ? await deriveDatagramKeys(nodeCrypto, keys) : undefined;
        const tcpPathKey = directConfig ? await deriveTcpPathKey(nodeCrypto, keys.sendKey) : undefined;
        const resumable = (opts.room || sessionPath) && keys.sequencedRecords && keys.capabilities && graceMs > 0;
        const resumeKeys = resumable ? await deriveResumeKeys(nodeCrypto, keys.sendKey) : null;
        if (settled) {
          resumeKeys?.secret.fill(0);
          return;
        }
        let direct: DirectPaths | null = null;
        // Path 0 writes to whichever WebSocket the connection has now (a resume replaces it).
        const via = { socket };
        const primary = new ResumableSocket({
          send: (d) => via.socket.send(d),
          sendOwned: (d, written) => via.socket.send(d, written),
          ownsReceived: true, // ws hands each message over once, in a buffer of its own
          close: (code, reason) => via.socket.close(code, reason),
          backlog: () => via.socket.ws.bufferedAmount,
        });
        const link = new SecureLink(
          primary,
          sealer,
          opener,
          {
            role: 'client',
            peerAnnouncesCapabilities: keys.capabilities ?? false,
            sequencedRecords: keys.sequencedRecords ?? false,
            window: opts.window,
            paceByDelay: true, // uploads must not queue megabytes ahead of datagrams (delay-pacer.ts)
            datagramActivity: opts.datagramActivity,
            scheduleFlush: (fn) => void setImmediate(fn),
            // RESUME: we resume a lost session, so the exit may keep it (only then does it).
            capabilities: directCapabilities(directConfig, tcpPathKey) | (resumeKeys ? Capability.RESUME : 0),
            onSignal: directConfig ? (kind, text) => direct?.onSignal(kind, text) : opts.tunnelAgent?.onSignal,
            onStream: opts.tunnelAgent?.onStream,
            onClose: (err) => (direct?.close(), conn?.finish(err, opts)),
          },
        );
        conn = new TunnelConnection(via, link, keys.suite, opts.pingIntervalMs ?? 25_000);
        conn.viaRoom = opts.room !== undefined;
        conn.relayUrl = opts.url;
        if (resumeKeys) conn.resume = { keys: resumeKeys, primary, opts, sessionPath };
        conn.sessionKept = resumeKeys !== null;
        if (directConfig) {
          const id = conn.id;
          direct = conn.direct = new DirectPaths({
            role: 'offer', link, config: directConfig, datagramKeys, tcpPathKey, log: (line) => opts.log?.(`relay connection #${id}: ${line}`),
          });
          const offer = direct;
          void link.mux.datagrams.peerCapabilities().then((caps) => offer.start(caps));
        }
        settled = true;
        clearTimeout(timer);
        for (const record of early ?? []) link.receive(record);
        early = null;
        conn.startKeepalive();
        resolve(conn);
      };

      const socket = new RelaySocket({
        url,
        protocols,
        relayName: opts.url,
        openTimeoutMs: timeoutMs,
        maxPayload: MAX_RECORD_SIZE + 4096 + SID_HEADER_SIZE,
        lookup: opts.lookup,
        openTcp: opts.openTcp,
        refused: (status) => httpRefusal(status, !!opts.room),
        onMessage: (data, isBinary) => {
          if (!isBinary) {
            // Only the room speaks text: an error notice right before it closes this WebSocket.
            const control = parseRoomControl(data.toString());
            const err = control instanceof ZksError ? control : roomNoticeError(control);
            if (!conn) return fail(err);
            if (conn.canResume) return socket.terminate(err.message); // the exit may be back within the grace period
            conn.link.socketClosed(err.message);
            socket.close(1000, 'room error'); // the room closes it too; its close frame, if first, keeps its code
            return;
          }
          if (conn) return conn.link.receive(data);
          if (settled) return;
          if (early) return void early.push(data);
          early = []; // this first binary message is the REPLY
          finishHandshake(data).catch((err: unknown) =>
            fail(err instanceof ZksError ? err : new ZksError('ZKS_ERR_HANDSHAKE', `cannot set up the record layer: ${(err as Error)?.message ?? String(err)}`)),
          );
        },
        onClose: (why, code) => {
          if (conn) conn.lost(why);
          // 4002: the relay checked our HELLO and says why it cannot go on (no common cipher suite).
          else fail(new ZksError(code === CloseCode.HANDSHAKE_FAILED ? 'ZKS_ERR_HANDSHAKE' : 'ZKS_ERR_RELAY_UNREACHABLE', `${why} during the handshake`));
        },
      });
      // Room mode: the relay cannot check the room PSK, so HELLO goes in-band to the exit peer.
      socket.opened.then(() => (opts.room ? socket.send(hello) : undefined), fail);
    });
  }

  /** Only a far end that keeps sessions (it said so in CAPABILITIES) can be asked to resume one. */
  private get canResume(): boolean {
    return this.resume !== null && ((this.link.mux.datagrams.knownPeerCapabilities ?? 0) & Capability.RESUME) !== 0;
  }

  /** The WebSocket is gone: resume the session on a new one when the exit keeps it, else it ends. */
  private lost(why: string): void {
    if (!this.canResume || this.resuming || this.closing || this.closedFlag || this.link.mux.isClosed) return this.link.socketClosed(why);
    void this.resumeSession(why, this.resume!);
  }

  private async resumeSession(why: string, r: NonNullable<TunnelConnection['resume']>): Promise<void> {
    const { opts, primary } = r;
    const room = opts.room;
    const log = (line: string) => opts.log?.(`relay connection #${this.id}: ${line}`);
    this.resuming = true;
    primary.detach();
    const started = performance.now();
    const deadline = started + (opts.resumeGraceMs ?? DEFAULT_RESUME_GRACE_MS);
    log(`WebSocket lost (${why}); resuming the session`);
    this.lostWhy = `WebSocket lost: ${why}`;
    const over = () => this.closing || this.closedFlag || this.link.mux.isClosed || this.link.isDead;
    opts.relays?.down(this.relayUrl, `WebSocket lost (${why})`);
    for (let wait: number = RESUME_RETRY_MS[0]; ; wait = Math.min(wait * 2, RESUME_RETRY_MS[1])) {
      if (over()) return log('stopped resuming: the connection was closed');
      // A room is reached through any relay; a direct-mode session lives in its own relay's deployment.
      const relay = room ? opts.relays?.pick(this.relayUrl) ?? opts.url : this.relayUrl;
      try {
        const resumed = await dialResume({
          url: room ? roomUrl(relay, room.roomId) : pathUrl(relay, r.sessionPath!), relayName: relay, key: opts.key,
          roomId: room?.roomId, psk: room?.psk ?? opts.key, suites: opts.suites, exitId: room?.exitId,
          lookup: opts.lookup, openTcp: opts.openTcp, resume: r.keys, receivedNext: () => this.link.receivedNext,
          timeoutMs: Math.max(1_000, Math.min(opts.handshakeTimeoutMs ?? 10_000, deadline - performance.now())),
        });
        if (over() || !primary.attach(primary.first)) {
          resumed.socket.terminate('the session ended while it was resumed');
          return;
        }
        this.via.socket = resumed.socket;
        this.resuming = false;
        this.resumes++;
        opts.relays?.up(relay);
        const moved = relay !== this.relayUrl ? ` on ${relay}` : '';
        this.relayUrl = relay;
        // Our resent records first: what already came (the exit's resent WINDOW_UPDATEs, PATH_ACKs) wakes writers,
        // whose new records must not overtake the old ones on this one path.
        if (!this.link.resumed(resumed.peerNext)) {
          // The exit's `next` was impossible (the link failed fatally on it, with its own reason): no resume.
          resumed.socket.terminate('the session could not continue after the resume');
          return log('the resumed session failed at once (see the connection\'s close reason)');
        }
        log(`session resumed${moved} after ${Math.round(performance.now() - started)} ms`);
        opts.onResumed?.(this);
        if (resumed.socket.isOpen) this.startKeepalive();
        // A close meanwhile: resumed again (a close of a socket that is no longer ours is not news).
        resumed.attach((data) => this.link.receive(data), (w) => this.via.socket === resumed.socket && this.lost(w));
        return;
      } catch (err) {
        const e = err instanceof ZksError ? err : new ZksError('ZKS_ERR_CONNECTION_LOST', String(err));
        if (over()) return log('stopped resuming: the connection was closed');
        if (e.code !== 'ZKS_ERR_RESUME_REFUSED') opts.relays?.down(relay, e.message);
        this.lostWhy = `WebSocket lost: ${why}; resume: ${e.message}`;
        if (e.code === 'ZKS_ERR_RESUME_REFUSED' || e.code === 'ZKS_ERR_AUTH' || performance.now() + wait >= deadline) {
          this.resuming = false;
          log(`could not resume the session: ${e.message}`);
          return this.link.socketClosed(`the WebSocket was lost (${why}) and the session could not be resumed: ${e.message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
  }

  private startKeepalive(): void {
    this.mux.ping(); // an RTT for status views right away, not 25 s later
    this.via.socket.startKeepalive(this.pingIntervalMs, () => this.mux.ping());
  }

  private finish(err: ZksError | null, opts: ConnectionOptions): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.resume?.keys.secret.fill(0);
    this.resume = null;
    // No terminate here: the link has already asked for a closing handshake (GOAWAY, a fatal error) or the socket
    // is gone. Cutting it now would lose the relay's own close frame and code, which may be on its way.
    opts.onClose?.(this, err);
  }

  /** Graceful close: GOAWAY, then the WebSocket closes after queued records. A resume under way stops. */
  close(): void {
    this.closing = true;
    this.link.close();
  }

  /** Abrupt close, as if the network died. */
  terminate(): void {
    this.via.socket.terminate('the connection was terminated');
  }
}
