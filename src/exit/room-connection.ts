// One lifetime of the exit peer's WebSocket to its relay room (src/protocol/room-wire.ts): first the proof that
// this peer holds the room secret (challenge → prove → attached), then client sessions keyed by sid, binary
// `sid | payload` routing, the JSON open/close controls, and the keepalive ("ping" every interval, answered
// "pong" by the room; silence for two intervals + 5 s means the path is dead).
// Invariant: sessions never outlive their WebSocket; when it closes, every session's streams are closed.

import { DatagramActivity } from '../protocol/delay-pacer';
import { decodeBase64Url, encodeBase64Url } from '../crypto/bytes';
import { nodeCrypto } from '../crypto/node';
import { proveExit, type RoomKeys } from '../crypto/room';
import type { X25519Keypair } from '../crypto/types';
import { ZksError } from '../errors/zks-error';
import { truncateUtf8 } from '../protocol/utf8';
import { RelaySocket } from '../link/relay-socket';
import { WsState } from '../link/websocket/client';
import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';
import {
  decodeSidMessage,
  describeRoomClose,
  encodeRoomControl,
  encodeSidMessage,
  KEEPALIVE_PING,
  KEEPALIVE_PONG,
  MAX_EXIT_MESSAGE,
  parseRoomControl,
  RoomCloseCode,
  RoomRefusedError,
} from '../protocol/room-wire';
import { ExitSession, type SessionDatagrams, type SessionHost } from './session';
import type { ResumeRegistry } from './resume-registry';
import type { DirectConfig } from '../direct/config';

export interface RoomConnectionOptions {
  /** Full room URL, `{relay}/room/{roomId}`; never logged (the room id lets a key holder take the exit slot). */
  url: string;
  /** What to call the relay in messages (the base URL, without the room path). */
  relayName: string;
  protocols: string[];
  psk: Uint8Array;
  /** The room id and the exit's room key, to answer the room's challenge. */
  keys: Pick<RoomKeys, 'roomId' | 'exitKey'>;
  /** This exit peer process (the room lets the same instance replace its own stale connection). */
  instance: Uint8Array;
  /** The exit's static key for clients that pin it (`zks keygen --exit`), or null. */
  staticKey: X25519Keypair | null;
  pingIntervalMs: number;
  /** Budget for the upgrade, and again for the proof exchange after it. */
  handshakeTimeoutMs: number;
  onStream(stream: MuxStream, target: Target): void;
  /** UDP flows and echoes of a new session (the exit's NAT and pinger); absent: this exit relays neither. */
  openDatagrams?(sid: number): SessionDatagrams | null;
  /** Answer direct path offers with these ICE settings (PROTOCOL.md §3.6); absent: the room only. */
  direct?: DirectConfig;
  /** Sessions kept across lost WebSockets (§11.7), shared by the exit peer's successive room connections. */
  resumes?: ResumeRegistry<ExitSession> | null;
  log(line: string): void;
  /** The WebSocket is gone (after attaching); `code` is its close code (1006 when it dropped without one). */
  onClose(reason: string, code: number): void;
}

/** Longest reason sent in a close control, in UTF-8 bytes (the room accepts 512 characters, so it always fits). */
const MAX_REASON_BYTES = 200;

/** Close codes by which the room refuses an exit before attaching it (anything else is a lost connection). */
const REFUSAL_CODES: ReadonlySet<number> = new Set([
  RoomCloseCode.EXIT_BUSY, RoomCloseCode.EXIT_PROOF_FAILED, RoomCloseCode.MESSAGE_TOO_LARGE, RoomCloseCode.RATE_LIMITED,
]);

interface Pending {
  resolve(): void;
  reject(err: ZksError): void;
}

export class RoomConnection implements SessionHost {
  readonly sessions = new Map<number, ExitSession>();
  readonly psk: Uint8Array;
  readonly staticKey: X25519Keypair | null;
  readonly direct: DirectConfig | null;
  readonly resumes: ResumeRegistry<ExitSession> | null;
  readonly datagramActivity = new DatagramActivity();
  private closed = false;
  /** Set until the room says "attached": the proof exchange is still running. */
  private pending: Pending | null;
  private attached = false;

  private constructor(
    private readonly socket: RelaySocket,
    private readonly opts: RoomConnectionOptions,
    pending: Pending,
  ) {
    this.psk = opts.psk;
    this.staticKey = opts.staticKey;
    this.direct = opts.direct ?? null;
    this.resumes = opts.resumes ?? null;
    this.pending = pending;
  }

  /**
   * Connects and proves the room secret; resolves once the room attached this peer as its exit. Rejects with
   * ZKS_ERR_AUTH (401), RoomRefusedError (EXIT_BUSY: another exit holds the room; EXIT_PROOF_FAILED),
   * ZKS_ERR_TIMEOUT or ZKS_ERR_RELAY_UNREACHABLE.
   */
  static async open(opts: RoomConnectionOptions): Promise<RoomConnection> {
    let room: RoomConnection | null = null;
    let pending!: Pending;
    const attached = new Promise<void>((resolve, reject) => (pending = { resolve, reject }));
    const socket = new RelaySocket({
      url: opts.url,
      protocols: opts.protocols,
      relayName: opts.relayName,
      openTimeoutMs: opts.handshakeTimeoutMs,
      maxPayload: MAX_EXIT_MESSAGE,
      refused: (status) =>
        status === 401
          ? new ZksError('ZKS_ERR_AUTH', 'the relay refused the Worker key: check --key (and that this clock is within 10 minutes of real time)')
          : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `the relay answered HTTP ${status} instead of a WebSocket: check --relay (does this Worker have rooms?)`),
      onMessage: (data, isBinary) => {
        if (isBinary) room?.onBinary(data);
        else room?.onText(data.toString('utf8'));
      },
      onClose: (why, code) => {
        if (!room) return;
        if (room.pending) return room.refused(why, code);
        if (!room.attached) return; // timed out before attaching: open() has rejected, nobody else is told
        room.teardown(why);
        opts.onClose(why, code);
      },
    });
    // Set on this turn, before the socket can report anything (its events come on later turns).
    room = new RoomConnection(socket, opts, pending);
    await socket.opened;
    const timer = setTimeout(() => {
      const p = room.pending;
      room.pending = null;
      room.closed = true;
      p?.reject(new ZksError('ZKS_ERR_TIMEOUT',
        `relay ${opts.relayName} did not attach this exit peer within ${opts.handshakeTimeoutMs} ms (a Worker older than this zks sends no challenge: redeploy it)`));
      socket.terminate('no room challenge');
    }, opts.handshakeTimeoutMs);
    try {
      await attached;
    } finally {
      clearTimeout(timer);
    }
    socket.startKeepalive(opts.pingIntervalMs, () => socket.send(KEEPALIVE_PING));
    return room;
  }

  /** The room closed the socket before attaching this peer: say why, as an error the exit peer can act on. */
  private refused(why: string, code: number): void {
    const pending = this.pending!;
    this.pending = null;
    this.closed = true;
    if (REFUSAL_CODES.has(code)) {
      pending.reject(new RoomRefusedError(code, `the relay room refused this exit peer: ${describeRoomClose(code)}`));
    } else {
      pending.reject(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `${why} before the room attached this exit peer`));
    }
  }

  /** The proof exchange: answer the one challenge, then wait for "attached". */
  private async onChallenge(key: string): Promise<void> {
    const challenge = decodeBase64Url(key);
    if (!challenge || challenge.length !== 32) return this.badMessage('bad challenge key');
    let mac: Uint8Array;
    try {
      mac = await proveExit(nodeCrypto, this.opts.keys, challenge, this.opts.instance);
    } catch (err) {
      return this.badMessage(`cannot answer the challenge: ${(err as Error).message}`);
    }
    this.sendText(encodeRoomControl({
      t: 'prove',
      key: encodeBase64Url(this.opts.keys.exitKey.publicKey),
      instance: encodeBase64Url(this.opts.instance),
      mac: encodeBase64Url(mac),
    }));
  }

  private onBinary(data: Uint8Array): void {
    if (this.pending) return this.badMessage('binary message before the room attached this exit peer');
    const m = decodeSidMessage(data);
    if (m instanceof ZksError) return this.badMessage(m.message);
    // A sid we do not know is a session that just ended on our side while its client was still sending.
    this.sessions.get(m.sid)?.receive(m.payload);
  }

  private onText(text: string): void {
    if (text === KEEPALIVE_PONG) return;
    const c = parseRoomControl(text);
    if (c instanceof ZksError) return this.badMessage(c.message);
    if (this.pending) {
      if (c.t === 'challenge') return void this.onChallenge(c.key);
      if (c.t !== 'attached') return this.badMessage(`"${c.t}" before the room attached this exit peer`);
      const pending = this.pending;
      this.pending = null;
      this.attached = true;
      return pending.resolve();
    }
    switch (c.t) {
      case 'open': {
        const entropy = ExitSession.decodeEntropy(c.entropy);
        if (!entropy) {
          this.sendClose(c.sid, 'bad entropy in open');
          return;
        }
        // The room reuses a sid only after it closed the old session; if we missed that close, end it now.
        this.sessions.get(c.sid)?.remoteClosed('the room reopened this session id');
        this.sessions.set(c.sid, new ExitSession(c.sid, entropy, this));
        return;
      }
      case 'close':
        this.sessions.get(c.sid)?.remoteClosed(`the relay ended the session${c.reason ? `: ${c.reason}` : ''}`);
        return;
      case 'error':
        this.opts.log(`relay: ${c.code}: ${c.message}`);
        return;
      default:
        return this.badMessage(`"${c.t}" after the room attached this exit peer`);
    }
  }

  /** The room broke the wire format: drop this connection (the exit peer reconnects). */
  private badMessage(why: string): void {
    this.socket.close(RoomCloseCode.BAD_MESSAGE, 'bad message', `the relay sent a bad message (${why})`);
  }

  private sendText(text: string): void {
    this.socket.send(text);
  }

  // ---- SessionHost ----

  send(sid: number, payload: Uint8Array, written?: () => void): void {
    this.socket.send(encodeSidMessage(sid, payload), written);
  }

  sendClose(sid: number, reason: string): void {
    this.sendText(encodeRoomControl({ t: 'close', sid, reason: truncateUtf8(reason, MAX_REASON_BYTES) }));
  }

  forget(session: ExitSession): void {
    if (this.sessions.get(session.sid) === session) this.sessions.delete(session.sid);
  }

  adopt(session: ExitSession): void {
    this.sessions.set(session.sid, session);
  }

  onStream(stream: MuxStream, target: Target): void {
    this.opts.onStream(stream, target);
  }

  openDatagrams(sid: number): SessionDatagrams | null {
    return this.opts.openDatagrams?.(sid) ?? null;
  }

  backlog(): number {
    return this.socket.ws.bufferedAmount;
  }

  log(line: string): void {
    this.opts.log(line);
  }

  // ---- lifetime ----

  get isClosed(): boolean {
    return this.closed;
  }

  private teardown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.sessions.values()]) s.remoteClosed(reason);
    this.sessions.clear();
  }

  /** Drops the connection as if the network failed (tests, and the liveness check). */
  terminate(reason = 'terminated'): void {
    this.socket.terminate(reason);
  }

  /** Graceful: GOAWAY to every client, `close` per session, then the WebSocket closes with 1000. */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.sessions.values()].map((s) => s.shutdown(graceMs / 2)));
    const ws = this.socket.ws;
    if (ws.readyState === WsState.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.terminate('exit peer shut down');
        resolve();
      }, graceMs);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close(1000, 'exit peer shutting down', 'exit peer shut down');
    });
  }
}
