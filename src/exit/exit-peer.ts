// The exit peer: a home PC or VM that attaches to a blind relay room as its EXIT, terminates every client's
// end-to-end handshake (the room only routes sealed bytes) and opens the real TCP connections.
// Keeps one room WebSocket up: exponential backoff 250 ms → 8 s, reset once an attachment has proved stable,
// one log line per event. Never gives up while running: refused (another exit holds the room), displaced or cut
// off, it retries. Secrets (Worker key, room secret, PSK, exit key, room id) are never logged.

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


const STANDING_BY =
  'another exit peer holding this room secret is attached to the room; standing by (it takes over once that one is gone)';

const isExitBusy = (err: unknown): boolean => err instanceof RoomRefusedError && err.closeCode === RoomCloseCode.EXIT_BUSY;

export class ExitPeer {
  private room: RoomConnection | null = null;
  private closing = false;
  private backoffMs = BACKOFF_MIN_MS;
  private attachedAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private attempt: Promise<void> | null = null;
  /** This process, as the room knows it: the same instance reconnecting replaces its own stale connection. */
  private readonly instance = nodeCrypto.randomBytes(EXIT_INSTANCE_SIZE);
  private readonly connectOpts: ExitConnectOptions;
  private readonly log: (line: string) => void;
  /** UDP flows (a NAT per session) and echoes of every client session. */
  readonly datagrams: DatagramService;
  /** Sessions kept across lost WebSockets, ours or the clients'; null when resume is off. */
  readonly resumes: ResumeRegistry<ExitSession> | null;

  private constructor(
    private readonly relay: string,
    private readonly roomUrl: string,
    private readonly keys: RoomKeys,
    private readonly staticKey: X25519Keypair | null,
    private readonly opts: ExitPeerOptions,
  ) {
    this.log = opts.log ?? (() => {});
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
   * Attaches to the room once; resolves when attached, or when the room said another exit peer holds it (this
   * one then stands by and retries). Rejects with ZKS_ERR_AUTH (the relay refused the key), ZKS_ERR_ROOM_REFUSED
   * (the room refused the proof), ZKS_ERR_TIMEOUT, ZKS_ERR_RELAY_UNREACHABLE or ZKS_ERR_CONFIG. Afterwards the
   * peer reconnects by itself until close().
   */
  static async start(opts: ExitPeerOptions): Promise<ExitPeer> {
    const relay = parseRelayUrl(opts.relay);
    if (!(opts.key instanceof Uint8Array) || opts.key.length !== 32) {
      throw new ZksError('ZKS_ERR_CONFIG', 'the Worker key must be 32 bytes (as printed by `zks keygen`)');
    }
    const keys = await deriveRoomKeys(nodeCrypto, opts.roomSecret);
    const staticKey = opts.exitKey ? await exitStaticKey(nodeCrypto, opts.exitKey) : null;
    const peer = new ExitPeer(relay, `${relay}${ROOM_PATH_PREFIX}${encodeBase64Url(keys.roomId)}`, keys, staticKey, opts);
    try {
      peer.room = await peer.connect();
    } catch (err) {
      if (!isExitBusy(err)) throw err;
      peer.backoffMs = BACKOFF_MAX_MS;
      peer.scheduleRetry(STANDING_BY);
      return peer;
    }
    peer.attachedAt = Date.now();
    peer.log(`exit peer attached to the room on ${relay}`);
    return peer;
  }

  /** Live client sessions (including ones still in their handshake). */
  get sessions(): number {
    return this.attached ? this.room!.sessions.size : 0;
  }

  get attached(): boolean {
    return this.room !== null && !this.room.isClosed;
  }

  /** Closes every session (their streams reset, clients get GOAWAY) and the room WebSocket; no more reconnects. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.attempt;
    const room = this.room;
    this.room = null;
    await room?.close();
    this.resumes?.closeAll('the exit peer shut down');
    this.datagrams.close();
    this.keys.psk.fill(0);
    this.keys.exitKey.privateKey.fill(0);
    this.staticKey?.privateKey.fill(0);
  }

  private async connect(): Promise<RoomConnection> {
    const token = await createRoomToken(nodeCrypto, this.opts.key, this.keys.roomId, RoomRole.EXIT);
    return RoomConnection.open({
      url: this.roomUrl,
      relayName: this.relay,
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
      onClose: (reason, code) => this.lost(reason, code),
    });
  }

  private lost(reason: string, code: number): void {
    this.room = null;
    if (this.closing) return;
    if (Date.now() - this.attachedAt >= STABLE_ATTACHMENT_MS) this.backoffMs = BACKOFF_MIN_MS;
    if (code === RoomCloseCode.EXIT_REPLACED) {
      // Only an exit that proved the same room secret can take over, and only from one the room had not heard
      // from for a while: this one comes back, and stands by if the other is still there (EXIT_BUSY).
      this.scheduleRetry(`the room was taken over: ${describeRoomClose(code)}`);
      return;
    }
    this.scheduleRetry(`lost the room connection: ${reason}${code >= 4000 ? ` [${describeRoomClose(code)}]` : ''}`);
  }

  private scheduleRetry(why: string): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.log(`${why}; retrying in ${delay} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.attempt = this.reconnect().finally(() => (this.attempt = null));
    }, delay);
  }

  private async reconnect(): Promise<void> {
    let room: RoomConnection;
    try {
      room = await this.connect();
    } catch (err) {
      if (this.closing) return;
      const e = err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err));
      // A refused key or proof, or a room that has its exit, will not change in 250 ms: wait the longest interval.
      if (e.code === 'ZKS_ERR_AUTH' || e.code === 'ZKS_ERR_ROOM_REFUSED') this.backoffMs = BACKOFF_MAX_MS;
      this.scheduleRetry(isExitBusy(e) ? STANDING_BY : `cannot attach to the room: ${e.message}`);
      return;
    }
    if (this.closing) {
      await room.close();
      return;
    }
    this.room = room;
    this.attachedAt = Date.now();
    this.log(`exit peer attached to the room on ${this.relay}`);
  }
}
