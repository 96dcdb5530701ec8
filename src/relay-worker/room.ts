// A blind relay room (Durable Object, one per room id): pairs any number of clients with at most one exit peer
// and forwards their sealed records without reading them (wire format: src/protocol/room-wire.ts). The Worker
// has already checked the access token; the role arrives in ROOM_ROLE_HEADER. An exit must then prove it holds
// the room secret (X25519 with a fresh challenge key, src/crypto/room.ts) before it is the exit; the Worker key
// alone is not enough. Invariants: client payloads are never parsed, only prefixed with (or stripped of) the
// session id; every message is size- and rate-checked and only its sender is closed for it; every socket's
// state lives in its hibernation attachment, so the tables below can be rebuilt whenever the object wakes up.
//
//   exit ──upgrade──▶ room ──challenge──▶ exit ──prove──▶ room ──attached──▶ exit     (then, per client:)
//   client ──binary──▶ room ──sid|binary──▶ exit        open/close (JSON text) ──▶ exit
//   client ◀──binary── room ◀──sid|binary── exit        close (JSON text) ◀── exit
//
// The Hibernation API (acceptWebSocket + handler methods) lets an idle room leave memory while its sockets
// stay open; "ping" is answered "pong" by the runtime without waking it (setWebSocketAutoResponse).

import { DurableObject } from 'cloudflare:workers';
import { decodeBase64Url, encodeBase64Url } from '../crypto/bytes';
import { verifyExitProof } from '../crypto/room';
import { webCrypto } from '../crypto/webcrypto';
import {
  KEEPALIVE_PING,
  KEEPALIVE_PONG,
  MAX_EXIT_MESSAGE,
  MAX_ROOM_MESSAGE,
  ROOM_CLOSE_TEXT,
  ROOM_PATH_PREFIX,
  ROOM_SUBPROTOCOL,
  RoomCloseCode,
  decodeSidMessage,
  encodeRoomControl,
  encodeSidMessage,
  parseRoomControl,
  type RoomErrorCode,
} from '../protocol/room-wire';
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from '../protocol/utf8';
import {
  clientRateFrom,
  EXIT_PROOF_TIMEOUT_MS,
  EXIT_RATE,
  EXIT_STALE_MS,
  MAX_PENDING_EXITS,
  MAX_SESSIONS_PER_ROOM,
  RateBucket,
  ROOM_CLIENT_RATE_HEADER,
} from './room-limits';

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
  /** Exit only: when it attached (pending) or proved (attached). */
  sinceMs?: number;
  /** Exit only, until it proves: the room id and the room's one-time challenge key pair (base64url). */
  challenge?: { roomId: string; privateKey: string; publicKey: string };
  /** Exit only, once proved: the exit peer process it belongs to (base64url). */
  instance?: string;
  /** Client only: messages per second it may send (the Worker's ZKS_ROOM_CLIENT_RATE, or the default). */
  rate?: number;
}

const ERROR_TEXT: Record<RoomErrorCode, string> = {
  EXIT_OFFLINE: 'exit peer offline',
  EXIT_GONE: 'the exit peer disconnected',
  EXIT_REPLACED: 'a new exit peer took over this room',
  SESSION_CLOSED: 'the exit peer closed this session',
  MESSAGE_TOO_LARGE: ROOM_CLOSE_TEXT[RoomCloseCode.MESSAGE_TOO_LARGE],
  RATE_LIMITED: ROOM_CLOSE_TEXT[RoomCloseCode.RATE_LIMITED],
  ROOM_FULL: `${ROOM_CLOSE_TEXT[RoomCloseCode.ROOM_FULL]} (${MAX_SESSIONS_PER_ROOM})`,
};

/** The room reads no binding (the Worker checked the token and config before forwarding), so it does not
 *  import the Worker's Env: env.ts names this class for its namespace binding, and the import runs one way. */
type RoomBindings = unknown;

export class ZksRoom extends DurableObject<RoomBindings> {
  /** The attached (proven) exit peer, or null. */
  private exit: WebSocket | null = null;
  /** Live client sessions by sid. */
  private readonly sessions = new Map<number, WebSocket>();
  /** Attachments read back once per wake-up: deserializing one per message would cost CPU on the data path. */
  private readonly attachments = new WeakMap<WebSocket, Attachment>();
  /** Rate buckets (in memory: after a wake-up every socket starts with a full bucket). */
  private readonly buckets = new WeakMap<WebSocket, RateBucket>();
  /** When the exit last sent a message (auto-answered pings are in the runtime's own timestamp). */
  private exitHeardMs = 0;

  constructor(ctx: DurableObjectState, env: RoomBindings) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(KEEPALIVE_PING, KEEPALIVE_PONG));
    // Waking from hibernation: the sockets are still open, the tables are rebuilt from their attachments.
    for (const ws of ctx.getWebSockets()) {
      const a = this.attachmentOf(ws);
      if (!a || a.retired) continue;
      if (a.role === 'exit') {
        if (a.instance) this.exit = ws;
      } else this.sessions.set(a.sid, ws);
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const role = request.headers.get(ROOM_ROLE_HEADER);
    if (role === 'exit') return this.attachExit(request);
    if (role === 'client') return this.attachClient(clientRateFrom(request.headers.get(ROOM_CLIENT_RATE_HEADER)));
    return new Response('Not Found', { status: 404 });
  }

  /** A would-be exit: accepted, challenged, and the exit only once its proof checks (webSocketMessage). */
  private async attachExit(request: Request): Promise<Response> {
    // The Worker routed this request here by the room id in its path (after checking the token for that id).
    const roomId = new URL(request.url).pathname.slice(ROOM_PATH_PREFIX.length);
    const pending = this.pendingExits();
    if (pending.length >= MAX_PENDING_EXITS) this.retire(pending[0], RoomCloseCode.EXIT_PROOF_FAILED, 'too many exit peers attaching');
    const challenge = await webCrypto.x25519Keypair();
    const [peer, server] = pairOf();
    this.ctx.acceptWebSocket(server, [TAG_EXIT]);
    this.attach(server, {
      role: 'exit',
      sid: 0,
      sinceMs: Date.now(),
      challenge: { roomId, privateKey: encodeBase64Url(challenge.privateKey), publicKey: encodeBase64Url(challenge.publicKey) },
    });
    challenge.privateKey.fill(0);
    send(server, encodeRoomControl({ t: 'challenge', key: encodeBase64Url(challenge.publicKey) }));
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + EXIT_PROOF_TIMEOUT_MS);
    return upgraded(peer);
  }

  /** Exits still to prove the secret, oldest first. */
  private pendingExits(): WebSocket[] {
    return this.ctx.getWebSockets(TAG_EXIT)
      .filter((ws) => {
        const a = this.attachmentOf(ws);
        return a !== null && !a.retired && a.challenge !== undefined;
      })
      .sort((x, y) => (this.attachmentOf(x)!.sinceMs ?? 0) - (this.attachmentOf(y)!.sinceMs ?? 0));
  }

  /** Closes exits that did not prove the secret in time; runs again while some are still pending. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    let next = Infinity;
    for (const ws of this.pendingExits()) {
      const deadline = (this.attachmentOf(ws)!.sinceMs ?? 0) + EXIT_PROOF_TIMEOUT_MS;
      if (deadline <= now) this.retire(ws, RoomCloseCode.EXIT_PROOF_FAILED, `no exit proof within ${EXIT_PROOF_TIMEOUT_MS} ms`);
      else next = Math.min(next, deadline);
    }
    if (next !== Infinity) await this.ctx.storage.setAlarm(next);
  }

  private async checkExitProof(ws: WebSocket, a: Attachment, message: string | ArrayBuffer): Promise<void> {
    const m = typeof message === 'string' ? parseRoomControl(message) : null;
    if (!m || m instanceof Error || m.t !== 'prove') {
      return this.retire(ws, RoomCloseCode.BAD_MESSAGE, 'an exit peer must first answer the challenge with "prove"');
    }
    const [exitPublic, instance, mac] = [decodeBase64Url(m.key), decodeBase64Url(m.instance), decodeBase64Url(m.mac)];
    const c = a.challenge!;
    const [roomId, challengePrivate, challengePublic] = [decodeBase64Url(c.roomId), decodeBase64Url(c.privateKey), decodeBase64Url(c.publicKey)];
    // One challenge, one answer: whatever the outcome, this socket never gets another try.
    this.attach(ws, { ...a, challenge: undefined });
    const ok = exitPublic && instance && mac && roomId && challengePrivate && challengePublic
      ? await verifyExitProof(webCrypto, roomId, { privateKey: challengePrivate, publicKey: challengePublic }, { exitPublic, instance, mac })
      : false;
    challengePrivate?.fill(0);
    if (this.attachmentOf(ws)?.retired) return; // closed while the proof was being checked
    if (ok !== true) return this.retire(ws, RoomCloseCode.EXIT_PROOF_FAILED, 'exit proof refused');

    const current = this.exit;
    if (current && current !== ws) {
      const sameInstance = this.attachmentOf(current)?.instance === m.instance;
      // Two exit peers with the secret: the attached one keeps the room while it is alive (no tug of war that
      // resets every client); the same process reconnecting, or any exit after a silent one, takes over.
      if (!sameInstance && Date.now() - this.exitLastHeard(current) < EXIT_STALE_MS) {
        return this.retire(ws, RoomCloseCode.EXIT_BUSY, 'another exit peer is attached to this room');
      }
      for (const sid of [...this.sessions.keys()]) this.endSession(sid, 'EXIT_REPLACED', RoomCloseCode.EXIT_REPLACED);
      this.retire(current, RoomCloseCode.EXIT_REPLACED, 'replaced by a new exit peer');
    }
    this.attach(ws, { role: 'exit', sid: 0, sinceMs: Date.now(), instance: m.instance });
    this.exit = ws;
    this.exitHeardMs = Date.now();
    send(ws, encodeRoomControl({ t: 'attached' }));
  }

  private exitLastHeard(ws: WebSocket): number {
    const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
    return Math.max(this.attachmentOf(ws)?.sinceMs ?? 0, pinged, this.exitHeardMs);
  }

  private attachClient(rate: number): Response {
    const exit = this.exit;
    // Refuse at once rather than accept a WebSocket nobody will ever answer (the client would hang).
    if (!exit) return new Response(ERROR_TEXT.EXIT_OFFLINE, { status: 503 });
    const [peer, server] = pairOf();
    const sid = this.sessions.size < MAX_SESSIONS_PER_ROOM ? this.freshSid() : 0;
    if (sid === 0) {
      // A WebSocket that says why and closes, so the client can tell a full room from an offline exit.
      this.ctx.acceptWebSocket(server, [TAG_CLIENT]);
      this.attach(server, { role: 'client', sid: 0, retired: true });
      send(server, encodeRoomControl({ t: 'error', code: 'ROOM_FULL', message: ERROR_TEXT.ROOM_FULL }));
      server.close(RoomCloseCode.ROOM_FULL, 'room is full');
      return upgraded(peer);
    }
    this.ctx.acceptWebSocket(server, [TAG_CLIENT, sidTag(sid)]);
    this.attach(server, { role: 'client', sid, rate });
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

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const a = this.attachmentOf(ws);
    if (!a || a.retired) return;
    const limit = a.role === 'exit' && a.instance ? MAX_EXIT_MESSAGE : MAX_ROOM_MESSAGE;
    const size = typeof message === 'string' ? message.length : message.byteLength;
    if (size > limit) return this.closeSender(ws, a, 'MESSAGE_TOO_LARGE', RoomCloseCode.MESSAGE_TOO_LARGE, `message of ${size} bytes`);
    if (!this.bucketOf(ws, a).take(Date.now())) return this.closeSender(ws, a, 'RATE_LIMITED', RoomCloseCode.RATE_LIMITED, '');
    if (a.role === 'exit') {
      if (a.challenge) return this.checkExitProof(ws, a, message);
      if (ws !== this.exit) return;
      this.exitHeardMs = Date.now();
      return this.fromExit(message);
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

  private bucketOf(ws: WebSocket, a: Attachment): RateBucket {
    let b = this.buckets.get(ws);
    if (!b) {
      const rate = a.role === 'exit' ? EXIT_RATE : clientRateFrom(String(a.rate));
      b = new RateBucket(rate, 2 * rate, Date.now());
      this.buckets.set(ws, b);
    }
    return b;
  }

  /** A socket broke a room limit: only it is closed (a client's session ends; an exit takes its own sessions). */
  private closeSender(ws: WebSocket, a: Attachment, error: RoomErrorCode, code: number, detail: string): void {
    const reason = detail ? `${ERROR_TEXT[error]}: ${detail}` : ERROR_TEXT[error];
    if (a.role === 'exit') {
      if (ws === this.exit) this.dropExit(code, reason);
      else this.retire(ws, code, reason);
      return;
    }
    if (this.sessions.get(a.sid) === ws) {
      this.endSession(a.sid, error, code, detail);
      this.toExit(encodeRoomControl({ t: 'close', sid: a.sid, reason: truncateUtf8(`client closed by the room: ${reason}`, MAX_ERROR_BYTES) }));
    } else {
      this.retire(ws, code, reason);
    }
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
