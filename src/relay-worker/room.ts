// A blind relay room (Durable Object, one per room id): pairs any number of clients with at most one exit peer
// and forwards their sealed records without reading them (wire format: src/protocol/room-wire.ts). The Worker
// has already checked the access token; the role arrives in ROOM_ROLE_HEADER. Invariants: client payloads are
// never parsed, only prefixed with (or stripped of) the session id; every socket's role and sid live in its
// hibernation attachment, so the in-memory tables below can be rebuilt whenever the object wakes up.
//
//   client ──binary──▶ room ──sid|binary──▶ exit        open/close (JSON text) ──▶ exit
//   client ◀──binary── room ◀──sid|binary── exit        close (JSON text) ◀── exit
//
// The Hibernation API (acceptWebSocket + handler methods) lets an idle room leave memory while its sockets
// stay open; "ping" is answered "pong" by the runtime without waking it (setWebSocketAutoResponse).

import { DurableObject } from 'cloudflare:workers';
import { encodeBase64Url } from '../crypto/bytes';
import {
  KEEPALIVE_PING,
  KEEPALIVE_PONG,
  ROOM_SUBPROTOCOL,
  RoomCloseCode,
  decodeSidMessage,
  encodeRoomControl,
  encodeSidMessage,
  parseRoomControl,
  type RoomErrorCode,
} from '../protocol/room-wire';
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from '../protocol/utf8';

/** Set by the Worker (never trusted from the outside: it overwrites any incoming value) after the token check. */
export const ROOM_ROLE_HEADER = 'X-Zks-Room-Role';
export type RoomSocketRole = 'client' | 'exit';

const TAG_EXIT = 'exit';
const TAG_CLIENT = 'client';
const sidTag = (sid: number) => `c:${sid}`;
const ENTROPY_SIZE = 32;
/** Attempts at a fresh sid; with 2^32 ids and a few live sessions the first one all but always succeeds. */
const SID_ATTEMPTS = 16;
/** Room error messages, like every control text, are at most 512 characters (parseRoomControl): 512 bytes fit. */
const MAX_ERROR_BYTES = 512;

/** Stored with each socket through serializeAttachment (survives hibernation, well under 2 KB). */
interface Attachment {
  role: RoomSocketRole;
  sid: number; // 0 for the exit
  /** Set before the room closes a socket itself: a later close event for it is no longer news. */
  retired?: boolean;
}

const ERROR_TEXT: Record<RoomErrorCode, string> = {
  EXIT_OFFLINE: 'exit peer offline',
  EXIT_GONE: 'the exit peer disconnected',
  EXIT_REPLACED: 'a new exit peer took over this room',
  SESSION_CLOSED: 'the exit peer closed this session',
};

/** The room reads no binding (the Worker checked the token and config before forwarding), so it does not
 *  import the Worker's Env: env.ts names this class for its namespace binding, and the import runs one way. */
type RoomBindings = unknown;

export class ZksRoom extends DurableObject<RoomBindings> {
  /** The attached exit peer, or null. */
  private exit: WebSocket | null = null;
  /** Live client sessions by sid. */
  private readonly sessions = new Map<number, WebSocket>();
  /** Attachments read back once per wake-up: deserializing one per message would cost CPU on the data path. */
  private readonly attachments = new WeakMap<WebSocket, Attachment>();

  constructor(ctx: DurableObjectState, env: RoomBindings) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(KEEPALIVE_PING, KEEPALIVE_PONG));
    // Waking from hibernation: the sockets are still open, the tables are rebuilt from their attachments.
    for (const ws of ctx.getWebSockets()) {
      const a = this.attachmentOf(ws);
      if (!a || a.retired) continue;
      if (a.role === 'exit') this.exit = ws;
      else this.sessions.set(a.sid, ws);
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const role = request.headers.get(ROOM_ROLE_HEADER);
    if (role === 'exit') return this.attachExit();
    if (role === 'client') return this.attachClient();
    return new Response('Not Found', { status: 404 });
  }

  private attachExit(): Response {
    // At most one exit: the sessions of the old one cannot continue with the new one (different handshakes).
    if (this.exit) {
      for (const sid of [...this.sessions.keys()]) this.endSession(sid, 'EXIT_REPLACED', RoomCloseCode.EXIT_REPLACED);
      this.retire(this.exit, RoomCloseCode.EXIT_REPLACED, 'replaced by a new exit peer');
      this.exit = null;
    }
    const [peer, server] = pairOf();
    this.ctx.acceptWebSocket(server, [TAG_EXIT]);
    this.attach(server, { role: 'exit', sid: 0 });
    this.exit = server;
    return upgraded(peer);
  }

  private attachClient(): Response {
    const exit = this.exit;
    // Refuse at once rather than accept a WebSocket nobody will ever answer (the client would hang).
    if (!exit) return new Response(ERROR_TEXT.EXIT_OFFLINE, { status: 503 });
    const sid = this.freshSid();
    if (sid === 0) return new Response('room is full', { status: 503 });
    const [peer, server] = pairOf();
    this.ctx.acceptWebSocket(server, [TAG_CLIENT, sidTag(sid)]);
    this.attach(server, { role: 'client', sid });
    this.sessions.set(sid, server);
    // Sent before the 101 goes out, so the exit always learns of a session before its first record.
    const entropy = encodeBase64Url(crypto.getRandomValues(new Uint8Array(ENTROPY_SIZE)));
    if (!send(exit, encodeRoomControl({ t: 'open', sid, entropy }))) {
      this.dropExit(null, '');
      return new Response(ERROR_TEXT.EXIT_OFFLINE, { status: 503 });
    }
    return upgraded(peer);
  }

  /** A random non-zero u32 unused by a live session, or 0 if none was found (practically never). */
  private freshSid(): number {
    const buf = new Uint32Array(1);
    for (let i = 0; i < SID_ATTEMPTS; i++) {
      crypto.getRandomValues(buf);
      if (buf[0] !== 0 && !this.sessions.has(buf[0])) return buf[0];
    }
    return 0;
  }

  private attach(ws: WebSocket, a: Attachment): void {
    ws.serializeAttachment(a);
    this.attachments.set(ws, a);
  }

  private attachmentOf(ws: WebSocket): Attachment | null {
    let a = this.attachments.get(ws);
    if (!a) {
      a = (ws.deserializeAttachment() as Attachment | null) ?? undefined;
      if (a) this.attachments.set(ws, a);
    }
    return a ?? null;
  }

  /** Marks a socket as closed by the room (so its close event is ignored, even after hibernation), then closes it. */
  private retire(ws: WebSocket, code: number, reason: string): void {
    const a = this.attachmentOf(ws);
    try {
      if (a) this.attach(ws, { ...a, retired: true });
      ws.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
    } catch { /* already closed */ }
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const a = this.attachmentOf(ws);
    if (!a || a.retired) return;
    if (a.role === 'exit') {
      if (ws === this.exit) this.fromExit(message);
      return;
    }
    if (this.sessions.get(a.sid) !== ws) return;
    if (typeof message === 'string') {
      // Clients speak only binary (and "ping", answered by the runtime): anything else ends this session only.
      this.sessions.delete(a.sid);
      this.retire(ws, RoomCloseCode.BAD_MESSAGE, 'text message on a binary-only session');
      this.toExit(encodeRoomControl({ t: 'close', sid: a.sid, reason: 'client sent a text message' }));
      return;
    }
    // Blind forwarding: the payload is copied once behind its sid, never looked at.
    this.toExit(encodeSidMessage(a.sid, new Uint8Array(message)));
  }

  /** Sends to the exit; an exit that can no longer be written to is gone (its close event may still follow). */
  private toExit(data: string | Uint8Array): void {
    if (this.exit && !send(this.exit, data)) this.dropExit(null, '');
  }

  private fromExit(message: string | ArrayBuffer): void {
    if (typeof message === 'string') {
      const m = parseRoomControl(message);
      if (m instanceof Error) return this.dropExit(RoomCloseCode.BAD_MESSAGE, m.message);
      if (m.t !== 'close') return this.dropExit(RoomCloseCode.BAD_MESSAGE, `an exit peer may not send "${m.t}"`);
      this.endSession(m.sid, 'SESSION_CLOSED', RoomCloseCode.SESSION_CLOSED, m.reason);
      return;
    }
    const d = decodeSidMessage(new Uint8Array(message));
    if (d instanceof Error) return this.dropExit(RoomCloseCode.BAD_MESSAGE, d.message);
    const client = this.sessions.get(d.sid);
    // Records in flight for a session that just ended are expected; the exit learns the sid is gone.
    if (client) {
      // A client that cannot be written to is closing; its close event tells the exit.
      send(client, d.payload);
    } else {
      this.toExit(encodeRoomControl({ t: 'close', sid: d.sid, reason: 'no such session' }));
    }
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    // The Hibernation API never completes the closing handshake by itself: answer the peer's close frame.
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
    } catch {
      try { ws.close(1000); } catch { /* already closed */ }
    }
    this.socketGone(ws, 'client closed the WebSocket');
  }

  override webSocketError(ws: WebSocket): void {
    this.socketGone(ws, 'client WebSocket failed');
  }

  private socketGone(ws: WebSocket, why: string): void {
    const a = this.attachmentOf(ws);
    if (!a || a.retired) return;
    if (a.role === 'exit') {
      if (ws === this.exit) this.dropExit(null, '');
      return;
    }
    if (this.sessions.get(a.sid) !== ws) return;
    this.sessions.delete(a.sid);
    this.toExit(encodeRoomControl({ t: 'close', sid: a.sid, reason: why }));
  }

  /** The exit is gone (closed, failed, or closed by us with `code`): every session of this room ends with it. */
  private dropExit(code: number | null, reason: string): void {
    const exit = this.exit;
    this.exit = null;
    if (exit && code !== null) this.retire(exit, code, reason);
    for (const sid of [...this.sessions.keys()]) this.endSession(sid, 'EXIT_GONE', RoomCloseCode.EXIT_OFFLINE);
  }

  /** Tells a client why its session ends, then closes it. */
  private endSession(sid: number, error: RoomErrorCode, code: number, detail = ''): void {
    const ws = this.sessions.get(sid);
    if (!ws) return;
    this.sessions.delete(sid);
    const message = truncateUtf8(detail ? `${ERROR_TEXT[error]}: ${detail}` : ERROR_TEXT[error], MAX_ERROR_BYTES);
    send(ws, encodeRoomControl({ t: 'error', code: error, message })); // if it fails, closing is all that is left
    this.retire(ws, code, error);
  }
}

function pairOf(): [WebSocket, WebSocket] {
  const pair = new WebSocketPair();
  return [pair[0], pair[1]];
}

function upgraded(peer: WebSocket): Response {
  return new Response(null, { status: 101, webSocket: peer, headers: { 'Sec-WebSocket-Protocol': ROOM_SUBPROTOCOL } });
}

/** send() throws once a socket is closing; the room treats that as "gone" rather than failing the handler. */
function send(ws: WebSocket, data: string | Uint8Array): boolean {
  try {
    ws.send(data);
    return true;
  } catch {
    return false;
  }
}
