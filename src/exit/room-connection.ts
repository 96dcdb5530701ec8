// One lifetime of the exit peer's WebSocket to its relay room (src/protocol/room-wire.ts): client sessions
// keyed by sid, binary `sid | payload` routing, the JSON open/close controls, and the keepalive ("ping" every
// interval, answered "pong" by the room; silence for two intervals + 5 s means the path is dead).
// Invariant: sessions never outlive their WebSocket; when it closes, every session's streams are closed.

import WebSocket from 'ws';
import { MAX_RECORD_SIZE } from '../protocol/constants';
import { ZksError } from '../protocol/errors';
import { truncateUtf8 } from '../protocol/utf8';
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

/** Silence allowed on top of two ping intervals before the room connection is declared dead. */
const LIVENESS_GRACE_MS = 5_000;
/** Longest reason sent in a close control, in UTF-8 bytes (the room accepts 512 characters, so it always fits). */
const MAX_REASON_BYTES = 200;

export class RoomConnection implements SessionHost {
  readonly sessions = new Map<number, ExitSession>();
  readonly psk: Uint8Array;
  private lastReceiveAt = Date.now();
  private pingTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private lostReason = '';

  private constructor(
    private readonly ws: WebSocket,
    private readonly opts: RoomConnectionOptions,
  ) {
    this.psk = opts.psk;
  }

  /** Connects; resolves once the room accepted the upgrade, rejects with ZKS_ERR_AUTH (401) or ZKS_ERR_RELAY_UNREACHABLE. */
  static open(opts: RoomConnectionOptions): Promise<RoomConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(opts.url, opts.protocols, {
        perMessageDeflate: false,
        maxPayload: MAX_RECORD_SIZE + 4096 + SID_HEADER_SIZE,
        handshakeTimeout: opts.handshakeTimeoutMs,
      });
      let settled = false;
      const fail = (err: ZksError) => {
        if (settled) return;
        settled = true;
        ws.terminate();
        reject(err);
      };
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        fail(
          res.statusCode === 401
            ? new ZksError('ZKS_ERR_AUTH', 'the relay refused the Worker key: check --key (and that this clock is within 10 minutes of real time)')
            : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `the relay answered HTTP ${res.statusCode} instead of a WebSocket: check --relay (does this Worker have rooms?)`),
        );
      });
      ws.on('error', (err) => {
        if (!settled) fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `cannot reach relay ${opts.relayName}: ${err.message}`));
      });
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        const room = new RoomConnection(ws, opts);
        room.attach();
        resolve(room);
      });
    });
  }

  private attach(): void {
    const ws = this.ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastReceiveAt = Date.now();
      if (isBinary) this.onBinary(data);
      else this.onText(data.toString('utf8'));
    });
    ws.on('close', (code: number, reason: Buffer) => {
      const why = this.lostReason || `the relay closed the room connection (${code}${reason.length ? ` ${reason.toString('utf8')}` : ''})`;
      this.teardown(why);
      this.opts.onClose(why, code);
    });
    this.pingTimer = setInterval(() => this.keepalive(), this.opts.pingIntervalMs);
    this.pingTimer.unref();
  }

  private keepalive(): void {
    const silentMs = Date.now() - this.lastReceiveAt;
    if (silentMs > this.opts.pingIntervalMs * 2 + LIVENESS_GRACE_MS) {
      // The room answers every ping: this much silence means the path is dead even if TCP has not noticed.
      this.lostReason = `nothing received from the relay for ${silentMs} ms`;
      this.ws.terminate();
      return;
    }
    this.sendText(KEEPALIVE_PING);
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
    this.lostReason = `the relay sent a bad message (${why})`;
    this.ws.close(RoomCloseCode.BAD_MESSAGE, 'bad message');
  }

  private sendText(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  // ---- SessionHost ----

  send(sid: number, payload: Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeSidMessage(sid, payload));
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
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    for (const s of [...this.sessions.values()]) s.remoteClosed(reason);
    this.sessions.clear();
  }

  /** Drops the connection as if the network failed (tests, and the liveness check). */
  terminate(reason = 'terminated'): void {
    this.lostReason ||= reason;
    this.ws.terminate();
  }

  /** Graceful: GOAWAY to every client, `close` per session, then the WebSocket closes with 1000. */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return;
    this.lostReason ||= 'exit peer shut down';
    await Promise.all([...this.sessions.values()].map((s) => s.shutdown(graceMs / 2)));
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, graceMs);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close(1000, 'exit peer shutting down');
    });
  }
}
