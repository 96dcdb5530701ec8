// One lifetime of the exit peer's WebSocket to its relay room (src/protocol/room-wire.ts): client sessions
// keyed by sid, binary `sid | payload` routing, the JSON open/close controls, and the keepalive ("ping" every
// interval, answered "pong" by the room; silence for two intervals + 5 s means the path is dead).
// Invariant: sessions never outlive their WebSocket; when it closes, every session's streams are closed.

import { MAX_RECORD_SIZE } from '../protocol/constants';
import { ZksError } from '../errors/zks-error';
import { truncateUtf8 } from '../protocol/utf8';
import { RelaySocket } from '../link/relay-socket';
import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';
import {
  decodeSidMessage,
  encodeRoomControl,
  encodeSidMessage,
  KEEPALIVE_PING,
  KEEPALIVE_PONG,
  parseRoomControl,
  RoomCloseCode,
  SID_HEADER_SIZE,
} from '../protocol/room-wire';
import { ExitSession, type SessionHost } from './session';

export interface RoomConnectionOptions {
  /** Full room URL, `{relay}/room/{roomId}`; never logged (the room id lets a key holder take the exit slot). */
  url: string;
  /** What to call the relay in messages (the base URL, without the room path). */
  relayName: string;
  protocols: string[];
  psk: Uint8Array;
  pingIntervalMs: number;
  handshakeTimeoutMs: number;
  onStream(stream: MuxStream, target: Target): void;
  log(line: string): void;
  /** The WebSocket is gone (after open); `code` is its close code (1006 when it dropped without one). */
  onClose(reason: string, code: number): void;
}

/** Longest reason sent in a close control, in UTF-8 bytes (the room accepts 512 characters, so it always fits). */
const MAX_REASON_BYTES = 200;

export class RoomConnection implements SessionHost {
  readonly sessions = new Map<number, ExitSession>();
  readonly psk: Uint8Array;
  private closed = false;

  private constructor(
    private readonly socket: RelaySocket,
    private readonly opts: RoomConnectionOptions,
  ) {
    this.psk = opts.psk;
  }

  /**
   * Connects; resolves once the room accepted the upgrade, rejects with ZKS_ERR_AUTH (401), ZKS_ERR_TIMEOUT or
   * ZKS_ERR_RELAY_UNREACHABLE.
   */
  static async open(opts: RoomConnectionOptions): Promise<RoomConnection> {
    let room: RoomConnection | null = null;
    const socket = new RelaySocket({
      url: opts.url,
      protocols: opts.protocols,
      relayName: opts.relayName,
      openTimeoutMs: opts.handshakeTimeoutMs,
      maxPayload: MAX_RECORD_SIZE + 4096 + SID_HEADER_SIZE,
      refused: (status) =>
        status === 401
          ? new ZksError('ZKS_ERR_AUTH', 'the relay refused the Worker key: check --key (and that this clock is within 10 minutes of real time)')
          : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `the relay answered HTTP ${status} instead of a WebSocket: check --relay (does this Worker have rooms?)`),
      onMessage: (data, isBinary) => {
        if (isBinary) room?.onBinary(data);
        else room?.onText(data.toString('utf8'));
      },
      onClose: (why, code) => {
        room?.teardown(why);
        opts.onClose(why, code);
      },
    });
    // Set on this turn, before the socket can report anything (its events come on later turns).
    room = new RoomConnection(socket, opts);
    await socket.opened;
    socket.startKeepalive(opts.pingIntervalMs, () => socket.send(KEEPALIVE_PING));
    return room;
  }

  private onBinary(data: Uint8Array): void {
    const m = decodeSidMessage(data);
    if (m instanceof ZksError) return this.badMessage(m.message);
    // A sid we do not know is a session that just ended on our side while its client was still sending.
    this.sessions.get(m.sid)?.receive(m.payload);
  }

  private onText(text: string): void {
    if (text === KEEPALIVE_PONG) return;
    const c = parseRoomControl(text);
    if (c instanceof ZksError) return this.badMessage(c.message);
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

  send(sid: number, payload: Uint8Array): void {
    this.socket.send(encodeSidMessage(sid, payload));
  }

  sendClose(sid: number, reason: string): void {
    this.sendText(encodeRoomControl({ t: 'close', sid, reason: truncateUtf8(reason, MAX_REASON_BYTES) }));
  }

  forget(session: ExitSession): void {
    if (this.sessions.get(session.sid) === session) this.sessions.delete(session.sid);
  }

  onStream(stream: MuxStream, target: Target): void {
    this.opts.onStream(stream, target);
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
    if (ws.readyState === ws.CLOSED) return;
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
