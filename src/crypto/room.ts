// Relay-mode keys and the room access token (docs/PROTOCOL.md "Relay rooms").
// A room secret never reaches the relay: the relay sees only roomId, a one-way HKDF output; the end-to-end
// handshake between client and exit peer uses the other HKDF output as its PSK. Access to any room still
// needs the Worker key: the upgrade carries a TOKEN MAC'd with a key derived from it (no open relay).
//   TOKEN (74 bytes): version u8 | role u8 | timestampMs u64 | nonce[16] | roomId[16] | mac[32]
import { ZksError } from '../errors/zks-error';
import { concatBytes, encodeBase64Url, equalBytes, readU64BE, utf8Bytes, writeU64BE } from './bytes';
import { hkdf } from './hkdf';
import type { CryptoBackend } from './types';

export const ROOM_ID_SIZE = 16;
export const ROOM_TOKEN_SIZE = 74;
export const MIN_ROOM_SECRET_LENGTH = 16;
export const ROOM_TOKEN_MAX_SKEW_MS = 10 * 60_000;
export const RoomRole = { CLIENT: 1, EXIT: 2 } as const;
export type RoomRoleValue = (typeof RoomRole)[keyof typeof RoomRole];

const T = { VERSION: 0, ROLE: 1, TIME: 2, NONCE: 10, ROOM: 26, MAC: 42 } as const;
const SALT_ROOM = utf8Bytes('zks1 room');
const INFO_PSK = utf8Bytes('zks1 room psk');
const INFO_ID = utf8Bytes('zks1 room id');
const INFO_TOKEN_KEY = utf8Bytes('zks1 room auth');

export interface RoomKeys {
  roomId: Uint8Array; // what the relay sees
  psk: Uint8Array; // end-to-end handshake key; never leaves client and exit peer
}

/** Derives the relay-visible room id and the end-to-end PSK from a room secret (any text ≥ 16 chars). */
export async function deriveRoomKeys(b: CryptoBackend, secret: string): Promise<RoomKeys> {
  if (secret.length < MIN_ROOM_SECRET_LENGTH) {
    throw new ZksError('ZKS_ERR_CONFIG', `the room secret must be at least ${MIN_ROOM_SECRET_LENGTH} characters (use \`zks keygen\`)`);
  }
  const ikm = utf8Bytes(secret);
  const [psk, roomId] = await Promise.all([hkdf(b, ikm, SALT_ROOM, INFO_PSK, 32), hkdf(b, ikm, SALT_ROOM, INFO_ID, ROOM_ID_SIZE)]);
  ikm.fill(0);
  return { roomId, psk };
}

function tokenKey(b: CryptoBackend, workerKey: Uint8Array): Promise<Uint8Array> {
  return hkdf(b, workerKey, SALT_ROOM, INFO_TOKEN_KEY, 32);
}

/** A fresh access token for `roomId` in `role`, proving possession of the Worker key. */
export async function createRoomToken(
  b: CryptoBackend, workerKey: Uint8Array, roomId: Uint8Array, role: RoomRoleValue, nowMs = Date.now(),
): Promise<Uint8Array> {
  const token = new Uint8Array(ROOM_TOKEN_SIZE);
  token[T.VERSION] = 1;
  token[T.ROLE] = role;
  writeU64BE(token, T.TIME, nowMs);
  token.set(b.randomBytes(16), T.NONCE);
  token.set(roomId, T.ROOM);
  const key = await tokenKey(b, workerKey);
  token.set(await b.hmacSha256(key, concatBytes(INFO_TOKEN_KEY, token.subarray(0, T.MAC))), T.MAC);
  key.fill(0);
  return token;
}

/** Checks a token; returns the role and room id it grants, or a ZksError value (never throws for bad input). */
export async function verifyRoomToken(
  b: CryptoBackend, workerKey: Uint8Array, token: Uint8Array, nowMs = Date.now(),
): Promise<{ role: RoomRoleValue; roomId: Uint8Array } | ZksError> {
  if (token.length !== ROOM_TOKEN_SIZE) return new ZksError('ZKS_ERR_AUTH', `room token has ${token.length} bytes, expected ${ROOM_TOKEN_SIZE}`);
  if (token[T.VERSION] !== 1) return new ZksError('ZKS_ERR_VERSION', `room token version ${token[T.VERSION]} is not supported`);
  const role = token[T.ROLE];
  if (role !== RoomRole.CLIENT && role !== RoomRole.EXIT) return new ZksError('ZKS_ERR_AUTH', `room token role ${role} is unknown`);
  const key = await tokenKey(b, workerKey);
  const mac = await b.hmacSha256(key, concatBytes(INFO_TOKEN_KEY, token.subarray(0, T.MAC)));
  key.fill(0);
  if (!equalBytes(mac, token.subarray(T.MAC))) return new ZksError('ZKS_ERR_AUTH', 'room token MAC does not verify');
  if (Math.abs(nowMs - readU64BE(token, T.TIME)) > ROOM_TOKEN_MAX_SKEW_MS) {
    return new ZksError('ZKS_ERR_AUTH', 'room token timestamp is outside the allowed clock skew');
  }
  return { role: role as RoomRoleValue, roomId: token.slice(T.ROOM, T.ROOM + ROOM_ID_SIZE) };
}

/** A short, stable label for a room in status views: the first 8 characters of its one-way, public id. */
export function roomLabel(roomId: Uint8Array): string {
  return encodeBase64Url(roomId).slice(0, 8);
}
