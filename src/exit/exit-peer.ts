// The exit peer: a home PC or VM that attaches to a blind relay room as its EXIT, terminates every client's
// end-to-end handshake (the room only routes sealed bytes) and opens the real TCP connections.
// Keeps one room WebSocket up per relay (`--relay` may be given more than once: the clients' links spread over the
// relays, and a session resumes on any of them, since the sessions and the resume registry are this peer's, not a
// room connection's): exponential backoff 250 ms → 8 s, reset once an attachment has proved stable, one log line
// per event. Never gives up while running: refused (another exit holds the room), displaced or cut off, it
// retries. Secrets (Worker key, room secret, PSK, exit key, room id) are never logged.

import type { Target } from '../protocol/address';
import { encodeBase64Url } from '../crypto/handshake';
import { nodeCrypto } from '../crypto/node';
import { createRoomToken, deriveRoomKeys, EXIT_INSTANCE_SIZE, exitStaticKey, RoomRole, type RoomKeys } from '../crypto/room';
import type { X25519Keypair } from '../crypto/types';
import { ConnectResult } from '../protocol/constants';
import { parseRelayUrl } from '../link/relay-url';
import { ZksError } from '../errors/zks-error';
import { describeRoomClose, ROOM_PATH_PREFIX, ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX, RoomCloseCode, RoomRefusedError } from '../protocol/room-wire';
import { defaultLookup, DEFAULT_CONNECT_TIMEOUT_MS, startExitStream, type ExitConnectOptions, type LookupFn } from './connect';
import { RoomConnection } from './room-connection';
import { DatagramService } from './datagram-service';
import { DEFAULT_RESUME_GRACE_MS, ResumeRegistry } from './resume-registry';
import type { ExitSession } from './session';
import type { DirectConfig } from '../direct/config';
import type { MuxStream } from '../protocol/stream';

export interface ExitPeerOptions {
  /** ws(s)://host[:port] base URL of the relay Worker. */
  relay: string;
  /** More relays (other Worker deployments or hostnames): the exit attaches to the room on each of them too. */
  moreRelays?: string[];
  /** The Worker key (32 bytes). */
  key: Uint8Array;
  /** The room secret shared with the clients (as printed by `zks keygen`). */
  roomSecret: string;
  /**
   * The exit's static private key (`zks keygen --exit`, 32 bytes): clients that pin its public half (--exit-id)
   * accept only this exit, even from someone else who holds the room secret. Optional.
   */
  exitKey?: Uint8Array;
  /** Allow loopback/private/link-local/multicast targets (default false). */
  allowLan?: boolean;
  /** Budget for resolving and connecting one target (default 10 s). */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
  /** Keepalive ping interval on the room WebSocket (default 25 s). */
  pingIntervalMs?: number;
  /** Name resolution (default dns.promises.lookup); tests inject a fixed map so no query leaves the machine. */
  lookup?: LookupFn;
  /** Relay clients' UDP flows (default true; `--no-udp`). Echoes (ping) are answered either way. */
  udp?: boolean;
  /** UDP flows per client session (default 512; `--udp-max-flows`). */
  udpMaxFlows?: number;
  /** Answer clients' direct path offers (PROTOCOL.md §3.6) with these ICE settings; absent: the room only. */
  direct?: DirectConfig;
  /**
   * A TCP tunnel (`zks expose tcp://…`): every stream goes to this one target, whatever the client asked for, and
   * nothing else is relayed (no UDP, no echoes) — the tunnel is a door to one service, never a proxy.
   */
  fixedTarget?: Target;
  /** Told of every client stream before it is served (a TCP tunnel's agent counts them for `zks status`). */
  onClientStream?: (stream: MuxStream) => void;
  /**
   * How long a client session whose WebSocket was lost is kept for its client to resume it (PROTOCOL.md §11.7;
   * `--resume-grace`, default 60 s); 0: sessions end with their WebSocket.
   */
  resumeGraceMs?: number;
}

export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 8_000;
const DEFAULT_PING_INTERVAL_MS = 25_000;
const ROOM_HANDSHAKE_TIMEOUT_MS = 10_000;
/** An attachment that lasted this long resets the backoff; shorter ones keep doubling it (flapping). */
const STABLE_ATTACHMENT_MS = 5_000;
/** Retry interval at most, while the sessions of a lost room connection wait to be resumed. */
const URGENT_RETRY_MS = 1_000;


const STANDING_BY =
  'another exit peer holding this room secret is attached to the room; standing by (it takes over once that one is gone)';

const isExitBusy = (err: unknown): boolean => err instanceof RoomRefusedError && err.closeCode === RoomCloseCode.EXIT_BUSY;

/** The room on one relay: its WebSocket when attached, and the retry state of that relay. */
interface Attachment {
  relay: string;
  roomUrl: string;
  room: RoomConnection | null;
  backoffMs: number;
  attachedAt: number;
  retryTimer: NodeJS.Timeout | null;
  attempt: Promise<void> | null;
  /** Replaced by our own attachment through another relay URL: the same room (one deployment, two names). */
  parked: boolean;
  /** When a working room connection was lost (0: none is): its sessions wait for their clients meanwhile. */
  lostAt: number;
}

export class ExitPeer {
  private readonly attachments: Attachment[];
  private closing = false;
  /** This process, as the room knows it: the same instance reconnecting replaces its own stale connection. */
  private readonly instance = nodeCrypto.randomBytes(EXIT_INSTANCE_SIZE);
  private readonly connectOpts: ExitConnectOptions;
  private readonly log: (line: string) => void;
  /** UDP flows (a NAT per session) and echoes of every client session. */
  readonly datagrams: DatagramService;
  /** Sessions kept across lost WebSockets, ours or the clients'; null when resume is off. */
  readonly resumes: ResumeRegistry<ExitSession> | null;

  private constructor(
    relays: string[],
    private readonly keys: RoomKeys,
    private readonly staticKey: X25519Keypair | null,
    private readonly opts: ExitPeerOptions,
  ) {
    this.log = opts.log ?? (() => {});
    const roomPath = `${ROOM_PATH_PREFIX}${encodeBase64Url(keys.roomId)}`;
    this.attachments = relays.map((relay) => ({
      relay, roomUrl: `${relay}${roomPath}`, room: null, backoffMs: BACKOFF_MIN_MS, attachedAt: 0, retryTimer: null, attempt: null, parked: false, lostAt: 0,
    }));
    this.connectOpts = {
      // A tunnel's one target is the operator's choice (usually a local service): the LAN rule is for clients' targets.
      allowLan: opts.allowLan ?? opts.fixedTarget !== undefined,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      lookup: opts.lookup ?? defaultLookup,
    };
    this.datagrams = new DatagramService({
      allowLan: this.connectOpts.allowLan,
      lookup: this.connectOpts.lookup,
      maxFlowsPerSession: opts.udpMaxFlows,
      udp: opts.udp,
      log: this.log,
    });
    const grace = opts.resumeGraceMs ?? DEFAULT_RESUME_GRACE_MS;
    this.resumes = grace > 0 ? new ResumeRegistry<ExitSession>(grace) : null;
  }

  /**
   * Attaches to the room on each relay; resolves once one is attached, or when every room said another exit peer
   * holds it (this one then stands by and retries). Rejects when no relay could be attached to, with the first
   * relay's error: ZKS_ERR_AUTH (the relay refused the key), ZKS_ERR_ROOM_REFUSED (the room refused the proof),
   * ZKS_ERR_TIMEOUT, ZKS_ERR_RELAY_UNREACHABLE or ZKS_ERR_CONFIG. Afterwards each attachment reconnects by itself
   * until close().
   */
  static async start(opts: ExitPeerOptions): Promise<ExitPeer> {
    const relays = [...new Set([opts.relay, ...(opts.moreRelays ?? [])].map((r) => parseRelayUrl(r)))];
    if (!(opts.key instanceof Uint8Array) || opts.key.length !== 32) {
      throw new ZksError('ZKS_ERR_CONFIG', 'the Worker key must be 32 bytes (as printed by `zks keygen`)');
    }
    const keys = await deriveRoomKeys(nodeCrypto, opts.roomSecret);
    const staticKey = opts.exitKey ? await exitStaticKey(nodeCrypto, opts.exitKey) : null;
    const peer = new ExitPeer(relays, keys, staticKey, opts);
    // Ready as soon as one relay is attached (or standing by); a slow or dead one keeps trying behind.
    const firsts = peer.attachments.map((a) => (a.attempt = peer.firstAttach(a).finally(() => (a.attempt = null))));
    try {
      await Promise.any(firsts);
    } catch {
      await peer.close();
      throw (await Promise.allSettled(firsts)).map((o) => (o as PromiseRejectedResult).reason)[0];
    }
    for (const f of firsts) f.catch(() => {}); // the others' failures are logged and retried by themselves
    return peer;
  }

  /** Live client sessions (including ones still in their handshake), over every relay. */
  get sessions(): number {
    return this.attachments.reduce((n, a) => n + (a.room && !a.room.isClosed ? a.room.sessions.size : 0), 0);
  }

  /** Attached to the room on at least one relay. */
  get attached(): boolean {
    return this.attachments.some((a) => a.room !== null && !a.room.isClosed);
  }

  /** The relays whose room this exit is attached to now. */
  get attachedRelays(): string[] {
    return this.attachments.filter((a) => a.room !== null && !a.room.isClosed).map((a) => a.relay);
  }

  /** Closes every session (their streams reset, clients get GOAWAY) and the room WebSockets; no more reconnects. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const a of this.attachments) {
      if (a.retryTimer) clearTimeout(a.retryTimer);
      a.retryTimer = null;
    }
    await Promise.all(this.attachments.map((a) => a.attempt?.catch(() => {})));
    await Promise.all(this.attachments.map((a) => {
      const room = a.room;
      a.room = null;
      return room?.close();
    }));
    this.resumes?.closeAll('the exit peer shut down');
    this.datagrams.close();
    this.keys.psk.fill(0);
    this.keys.exitKey.privateKey.fill(0);
    this.staticKey?.privateKey.fill(0);
  }

  /** The first attempt on one relay: attached, standing by (resolves), or its error (the attachment retries anyway). */
  private async firstAttach(a: Attachment): Promise<void> {
    try {
      a.room = await this.connect(a);
    } catch (err) {
      if (this.closing) throw err;
      if (isExitBusy(err)) {
        a.backoffMs = BACKOFF_MAX_MS;
        this.scheduleRetry(a, STANDING_BY);
        return;
      }
      // With several relays the others may serve: this one keeps trying. Alone, start() fails and closes.
      const e = err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err));
      if (e.code === 'ZKS_ERR_AUTH' || e.code === 'ZKS_ERR_ROOM_REFUSED') a.backoffMs = BACKOFF_MAX_MS;
      if (this.attachments.length > 1) this.scheduleRetry(a, `cannot attach to the room on ${a.relay}: ${e.message}`);
      throw err;
    }
    a.attachedAt = Date.now();
    this.log(`exit peer attached to the room on ${a.relay}`);
  }

  private async connect(a: Attachment): Promise<RoomConnection> {
    const token = await createRoomToken(nodeCrypto, this.opts.key, this.keys.roomId, RoomRole.EXIT);
    return RoomConnection.open({
      url: a.roomUrl,
      relayName: a.relay,
      protocols: [ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX + encodeBase64Url(token)],
      psk: this.keys.psk,
      keys: this.keys,
      instance: this.instance,
      staticKey: this.staticKey,
      pingIntervalMs: this.opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      handshakeTimeoutMs: ROOM_HANDSHAKE_TIMEOUT_MS,
      onStream: (stream, target) => {
        this.opts.onClientStream?.(stream);
        startExitStream(stream, this.opts.fixedTarget ?? target, this.connectOpts).catch((err: unknown) => {
          // startExitStream answers every outcome itself; this only guards against a throw from the platform.
          stream.reject(ConnectResult.GENERAL_FAILURE, `exit peer error: ${(err as Error)?.message ?? String(err)}`);
        });
      },
      openDatagrams: this.opts.fixedTarget ? undefined : () => this.datagrams.open(),
      direct: this.opts.direct,
      resumes: this.resumes,
      log: this.log,
      onClose: (reason, code) => this.lost(a, reason, code),
    });
  }

  private lost(a: Attachment, reason: string, code: number): void {
    a.room = null;
    if (this.closing) return;
    if (Date.now() - a.attachedAt >= STABLE_ATTACHMENT_MS) a.backoffMs = BACKOFF_MIN_MS;
    const where = this.attachments.length > 1 ? ` on ${a.relay}` : '';
    const other = this.attachments.find((o) => o !== a && o.room !== null && !o.room.isClosed && o.attachedAt >= a.attachedAt);
    if (code === RoomCloseCode.EXIT_REPLACED && other) {
      // Replaced just as another of our attachments came up: two names of one deployment lead to one room, where
      // our instance replaces itself. Attaching back would take it from the other, for ever: this one waits.
      a.parked = true;
      this.log(`${a.relay} leads to the same room as ${other.relay} (one deployment, two names): attached once, through ${other.relay}`);
      return;
    }
    // Another attachment lost: one parked in its favour may be the way to the room now.
    for (const p of this.attachments) {
      if (p !== a && p.parked && !this.attachments.some((o) => o.room !== null && !o.room.isClosed)) {
        p.parked = false;
        this.scheduleRetry(p, `trying ${p.relay} again`);
      }
    }
    if (code !== RoomCloseCode.EXIT_REPLACED) a.lostAt = Date.now();
    if (code === RoomCloseCode.EXIT_REPLACED) {
      // Only an exit that proved the same room secret can take over, and only from one the room had not heard
      // from for a while: this one comes back, and stands by if the other is still there (EXIT_BUSY).
      this.scheduleRetry(a, `the room${where} was taken over: ${describeRoomClose(code)}`);
      return;
    }
    this.scheduleRetry(a, `lost the room connection${where}: ${reason}${code >= 4000 ? ` [${describeRoomClose(code)}]` : ''}`);
  }

  private scheduleRetry(a: Attachment, why: string): void {
    if (a.retryTimer || this.closing) return;
    // Sessions detached by the loss wait for their clients, who cannot resume before we are back: within the
    // grace period retry at least every second (a restart or deploy takes seconds), not at the backoff's 8 s.
    const urgent = this.resumes !== null && a.lostAt > 0 && Date.now() - a.lostAt < this.resumes.graceMs;
    const delay = urgent ? Math.min(a.backoffMs, URGENT_RETRY_MS) : a.backoffMs;
    a.backoffMs = Math.min(BACKOFF_MAX_MS, a.backoffMs * 2);
    this.log(`${why}; retrying in ${delay} ms`);
    a.retryTimer = setTimeout(() => {
      a.retryTimer = null;
      a.attempt = this.reconnect(a).finally(() => (a.attempt = null));
    }, delay);
  }

  private async reconnect(a: Attachment): Promise<void> {
    let room: RoomConnection;
    try {
      room = await this.connect(a);
    } catch (err) {
      if (this.closing) return;
      const e = err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err));
      // A refused key or proof, or a room that has its exit, will not change in 250 ms: wait the longest interval,
      // even while sessions wait (retrying every second would only hammer a relay that says no).
      if (e.code === 'ZKS_ERR_AUTH' || e.code === 'ZKS_ERR_ROOM_REFUSED') a.backoffMs = BACKOFF_MAX_MS;
      if (e.code === 'ZKS_ERR_AUTH' || e.code === 'ZKS_ERR_ROOM_REFUSED' || isExitBusy(e)) a.lostAt = 0;
      const where = this.attachments.length > 1 ? ` on ${a.relay}` : '';
      this.scheduleRetry(a, isExitBusy(e) ? STANDING_BY : `cannot attach to the room${where}: ${e.message}`);
      return;
    }
    if (this.closing) {
      await room.close();
      return;
    }
    a.room = room;
    a.attachedAt = Date.now();
    a.lostAt = 0;
    this.log(`exit peer attached to the room on ${a.relay}`);
  }
}
