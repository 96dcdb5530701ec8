// Wire format between the relay room (a Durable Object) and its peers (docs/PROTOCOL.md "Relay rooms").
// The room is blind: client WebSockets carry opaque end-to-end records; towards the exit peer the room adds
// one routing header, the session id (sid) of the client, and speaks a few JSON control messages as text.
//   exit <-> room binary:  sid u32 (big endian) | opaque payload
//   room -> exit text:     {"t":"challenge","key":"<base64url 32>"} first; {"t":"attached"} once the proof checks
//   exit -> room text:     {"t":"prove","key":"<base64url 32>","instance":"<base64url 16>","mac":"<base64url 32>"}
//   room -> exit text:     {"t":"open","sid":N,"entropy":"<base64url 32 bytes>"} | {"t":"close","sid":N,"reason":"..."}
//   exit -> room text:     {"t":"close","sid":N,"reason":"..."}
//   room -> client text:   {"t":"error","code":<RoomErrorCode>,"message":"..."} right before the room closes it
//   either -> room text:   "ping"  (answered "pong" by the room without waking it: hibernation auto-response)
import { MAX_RECORD_SIZE } from './constants';
import { ZksError } from '../errors/zks-error';
import { ProtocolError } from './errors';

export const ROOM_SUBPROTOCOL = 'zks1r';
export const ROOM_TOKEN_PREFIX = 'zks1r.';
export const ROOM_PATH_PREFIX = '/room/';
export const SID_HEADER_SIZE = 4;
export const KEEPALIVE_PING = 'ping';
export const KEEPALIVE_PONG = 'pong';
/** Largest control message accepted (JSON text). */
export const MAX_CONTROL_MESSAGE = 1024;
/** Largest client message: one record (MAX_RECORD_SIZE) plus slack for its header and tag, as the peers accept. */
export const MAX_ROOM_MESSAGE = MAX_RECORD_SIZE + 4096;
/** Largest exit message: a client message behind its sid. */
export const MAX_EXIT_MESSAGE = MAX_ROOM_MESSAGE + SID_HEADER_SIZE;

export const RoomCloseCode = {
  EXIT_OFFLINE: 4010,
  SESSION_CLOSED: 4011,
  EXIT_REPLACED: 4012,
  BAD_MESSAGE: 4013,
  EXIT_BUSY: 4014,
  EXIT_PROOF_FAILED: 4015,
  MESSAGE_TOO_LARGE: 4016,
  RATE_LIMITED: 4017,
  ROOM_FULL: 4018,
} as const;

/** What each room close code means, for logs and error messages (the close reason is only a hint). */
export const ROOM_CLOSE_TEXT: Readonly<Record<number, string>> = {
  [RoomCloseCode.EXIT_OFFLINE]: 'the exit peer is offline',
  [RoomCloseCode.SESSION_CLOSED]: 'the exit peer closed this session',
  [RoomCloseCode.EXIT_REPLACED]: 'another exit peer holding the room secret took over this room',
  [RoomCloseCode.BAD_MESSAGE]: 'the room received a malformed message',
  [RoomCloseCode.EXIT_BUSY]: 'another exit peer holding the room secret is attached to this room',
  [RoomCloseCode.EXIT_PROOF_FAILED]: 'the room refused the exit proof (not the room secret, or none within 10 s)',
  [RoomCloseCode.MESSAGE_TOO_LARGE]: `a message was larger than the room accepts (${MAX_ROOM_MESSAGE} bytes)`,
  [RoomCloseCode.RATE_LIMITED]: 'more messages per second than the room accepts',
  [RoomCloseCode.ROOM_FULL]: 'the room has as many sessions as it accepts',
};

/** "4016 (a message was larger than ...)", or just the number for a code the room does not define. */
export function describeRoomClose(code: number): string {
  const text = ROOM_CLOSE_TEXT[code];
  return text ? `${code} (${text})` : String(code);
}

/** The room refused or closed a peer for one of its rules (busy, proof, size, rate, full): `closeCode` says which. */
export class RoomRefusedError extends ZksError {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super('ZKS_ERR_ROOM_REFUSED', message);
    this.name = 'RoomRefusedError';
  }
}

/** The close code a room error notice announces (the client reads the notice before the close frame). */
export const ROOM_ERROR_CLOSE_CODE: Readonly<Record<RoomErrorCode, number>> = {
  EXIT_OFFLINE: RoomCloseCode.EXIT_OFFLINE,
  EXIT_GONE: RoomCloseCode.EXIT_OFFLINE,
  EXIT_REPLACED: RoomCloseCode.EXIT_REPLACED,
  SESSION_CLOSED: RoomCloseCode.SESSION_CLOSED,
  MESSAGE_TOO_LARGE: RoomCloseCode.MESSAGE_TOO_LARGE,
  RATE_LIMITED: RoomCloseCode.RATE_LIMITED,
  ROOM_FULL: RoomCloseCode.ROOM_FULL,
};

export type RoomErrorCode =
  | 'EXIT_OFFLINE'
  | 'EXIT_GONE'
  | 'EXIT_REPLACED'
  | 'SESSION_CLOSED'
  | 'MESSAGE_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'ROOM_FULL';

export type RoomControl =
  | { t: 'challenge'; key: string }
  | { t: 'prove'; key: string; instance: string; mac: string }
  | { t: 'attached' }
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
const ERROR_CODES: ReadonlySet<string> = new Set<RoomErrorCode>([
  'EXIT_OFFLINE', 'EXIT_GONE', 'EXIT_REPLACED', 'SESSION_CLOSED', 'MESSAGE_TOO_LARGE', 'RATE_LIMITED', 'ROOM_FULL',
]);
/** base64url of 16 or 32 bytes: 22 or 43 characters (decoded and length-checked by the crypto layer). */
const isKeyText = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9_-]{22}$|^[A-Za-z0-9_-]{43}$/.test(v);

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
    case 'challenge':
      return isKeyText(m.key) ? { t: 'challenge', key: m.key } : bad('challenge needs a key');
    case 'prove':
      return isKeyText(m.key) && isKeyText(m.instance) && isKeyText(m.mac)
        ? { t: 'prove', key: m.key, instance: m.instance, mac: m.mac }
        : bad('prove needs key, instance and mac');
    case 'attached':
      return { t: 'attached' };
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
