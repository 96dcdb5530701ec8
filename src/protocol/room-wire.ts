// Wire format between the relay room (a Durable Object) and its peers (docs/PROTOCOL.md "Relay rooms").
// The room is blind: client WebSockets carry opaque end-to-end records; towards the exit peer the room adds
// one routing header, the session id (sid) of the client, and speaks a few JSON control messages as text.
//   exit <-> room binary:  sid u32 (big endian) | opaque payload
//   room -> exit text:     {"t":"open","sid":N,"entropy":"<base64url 32 bytes>"} | {"t":"close","sid":N,"reason":"..."}
//   exit -> room text:     {"t":"close","sid":N,"reason":"..."}
//   room -> client text:   {"t":"error","code":"EXIT_OFFLINE"|"EXIT_GONE"|"EXIT_REPLACED"|"SESSION_CLOSED","message":"..."}
//   either -> room text:   "ping"  (answered "pong" by the room without waking it: hibernation auto-response)
import { ProtocolError } from './errors';

export const ROOM_SUBPROTOCOL = 'zks1r';
export const ROOM_TOKEN_PREFIX = 'zks1r.';
export const ROOM_PATH_PREFIX = '/room/';
export const SID_HEADER_SIZE = 4;
export const KEEPALIVE_PING = 'ping';
export const KEEPALIVE_PONG = 'pong';
/** Largest control message accepted (JSON text). */
export const MAX_CONTROL_MESSAGE = 1024;

export const RoomCloseCode = {
  EXIT_OFFLINE: 4010,
  SESSION_CLOSED: 4011,
  EXIT_REPLACED: 4012,
  BAD_MESSAGE: 4013,
} as const;

export type RoomErrorCode = 'EXIT_OFFLINE' | 'EXIT_GONE' | 'EXIT_REPLACED' | 'SESSION_CLOSED';

export type RoomControl =
  | { t: 'open'; sid: number; entropy: string }
  | { t: 'close'; sid: number; reason: string }
  | { t: 'error'; code: RoomErrorCode; message: string };

/** Payloads whose buffer has SID_HEADER_SIZE bytes free just before them (made by sidHeadroomPayload). */
const withHeadroom = new WeakSet<Uint8Array>();

/**
 * `buf` = SID_HEADER_SIZE free bytes || payload (a record sealed with headroom): returns the payload, which
 * encodeSidMessage then frames in place. A payload is framed in place once; any other payload is copied.
 */
export function sidHeadroomPayload(buf: Uint8Array): Uint8Array {
  const payload = buf.subarray(SID_HEADER_SIZE);
  withHeadroom.add(payload);
  return payload;
}

/** Prefixes `payload` with its session id: in place when it has headroom, else in one copy (one message). */
export function encodeSidMessage(sid: number, payload: Uint8Array): Uint8Array {
  let out: Uint8Array;
  if (withHeadroom.delete(payload)) {
    out = new Uint8Array(payload.buffer, payload.byteOffset - SID_HEADER_SIZE, SID_HEADER_SIZE + payload.length);
  } else {
    out = new Uint8Array(SID_HEADER_SIZE + payload.length);
    out.set(payload, SID_HEADER_SIZE);
  }
  out[0] = sid >>> 24;
  out[1] = sid >>> 16;
  out[2] = sid >>> 8;
  out[3] = sid;
  return out;
}

export function decodeSidMessage(message: Uint8Array): { sid: number; payload: Uint8Array } | ProtocolError {
  if (message.length < SID_HEADER_SIZE) {
    return new ProtocolError('ZKS_ERR_MALFORMED_FRAME', `room message of ${message.length} bytes has no session id`);
  }
  const sid = new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(0);
  return { sid, payload: message.subarray(SID_HEADER_SIZE) };
}

const isSid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff;
const isText = (v: unknown, max = 512): v is string => typeof v === 'string' && v.length <= max;
const ERROR_CODES: ReadonlySet<string> = new Set(['EXIT_OFFLINE', 'EXIT_GONE', 'EXIT_REPLACED', 'SESSION_CLOSED']);

/** Parses a control message; anything unexpected is a ProtocolError value (the caller closes that socket). */
export function parseRoomControl(text: string): RoomControl | ProtocolError {
  const bad = (why: string) => new ProtocolError('ZKS_ERR_MALFORMED_FRAME', `bad room control message: ${why}`);
  if (text.length > MAX_CONTROL_MESSAGE) return bad(`longer than ${MAX_CONTROL_MESSAGE} characters`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return bad('not JSON');
  }
  if (typeof v !== 'object' || v === null) return bad('not an object');
  const m = v as Record<string, unknown>;
  switch (m.t) {
    case 'open':
      return isSid(m.sid) && isText(m.entropy, 64) ? { t: 'open', sid: m.sid, entropy: m.entropy } : bad('open needs sid and entropy');
    case 'close':
      return isSid(m.sid) && (m.reason === undefined || isText(m.reason))
        ? { t: 'close', sid: m.sid, reason: (m.reason as string | undefined) ?? '' }
        : bad('close needs sid');
    case 'error':
      return isText(m.code) && ERROR_CODES.has(m.code) && isText(m.message)
        ? { t: 'error', code: m.code as RoomErrorCode, message: m.message }
        : bad('error needs a known code and a message');
    default:
      return bad(`unknown type ${JSON.stringify(m.t)?.slice(0, 20)}`);
  }
}

export function encodeRoomControl(m: RoomControl): string {
  return JSON.stringify(m);
}
