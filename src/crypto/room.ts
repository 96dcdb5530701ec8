// Relay-mode keys, the room access token and the exit peer's proof (docs/PROTOCOL.md "Relay rooms").
// A room secret (32 random bytes, `zks keygen`) never reaches the relay: the end-to-end handshake uses one HKDF
// output as its PSK; another is the exit's X25519 key, and the relay-visible roomId commits to its public half,
// so the room can check an exit's proof (X25519 with a fresh room key, then a MAC) and learns nothing that opens
// traffic. Access to any room still needs the Worker key: the upgrade carries a TOKEN MAC'd with a key from it.
//   TOKEN (74 bytes): version u8 | role u8 | timestampMs u64 | nonce[16] | roomId[16] | mac[32]
import { ZksError } from '../errors/zks-error';
import { concatBytes, decodeBase64Url, encodeBase64Url, equalBytes, readU64BE, utf8Bytes, writeU64BE } from './bytes';
import { hkdf } from './hkdf';
import { X25519_KEY_SIZE, type CryptoBackend, type X25519Keypair } from './types';

export const ROOM_ID_SIZE = 16;
export const ROOM_TOKEN_SIZE = 74;
/** A room secret is exactly what `zks keygen` prints: 32 random bytes, base64url (43 characters). */
export const ROOM_SECRET_SIZE = 32;
/** Fewer distinct byte values than this in 32 bytes is a pattern, not randomness (random: ~30, never < 16). */
const MIN_DISTINCT_SECRET_BYTES = 16;
export const EXIT_INSTANCE_SIZE = 16;
export const EXIT_PROOF_SIZE = 32;
export const ROOM_TOKEN_MAX_SKEW_MS = 10 * 60_000;
export const RoomRole = { CLIENT: 1, EXIT: 2 } as const;
export type RoomRoleValue = (typeof RoomRole)[keyof typeof RoomRole];

const T = { VERSION: 0, ROLE: 1, TIME: 2, NONCE: 10, ROOM: 26, MAC: 42 } as const;
const SALT_ROOM = utf8Bytes('zks1 room');
const INFO_PSK = utf8Bytes('zks1 room psk');
const INFO_ID = utf8Bytes('zks1 room id');
const INFO_TOKEN_KEY = utf8Bytes('zks1 room auth');
const INFO_EXIT_KEY = utf8Bytes('zks1 room exit key');
const INFO_EXIT_PROOF = utf8Bytes('zks1 room exit proof');
const X25519_BASE_POINT = (() => {
  const u = new Uint8Array(X25519_KEY_SIZE);
  u[0] = 9; // RFC 7748 §4.1: u = 9, little endian
  return u;
})();

export interface RoomKeys {
  roomId: Uint8Array; // what the relay sees: HKDF of exitKey.publicKey
  psk: Uint8Array; // end-to-end handshake key; never leaves client and exit peer
  /** The exit peer's room key: only the holder of the secret has the private half (clients never use it). */
  exitKey: X25519Keypair;
}

const WEAK_SECRET_HELP =
  'the room secret must be 32 random bytes in base64url (43 characters), exactly as printed by `zks keygen`: '
  + 'passphrases are refused, because the room id the relay sees lets anyone test guesses offline. '
  + 'Run `zks keygen` and give the new secret to the exit peer and every client';

/**
 * The 32 bytes of a room secret, or a ZKS_ERR_CONFIG error saying to run `zks keygen`. Only the format and an
 * obvious pattern can be checked, not where the bytes came from: a hand-made 43-character text may still pass.
 */
export function roomSecretBytes(secret: string): Uint8Array {
  const bytes = decodeBase64Url(secret.trim());
  if (!bytes || bytes.length !== ROOM_SECRET_SIZE) throw new ZksError('ZKS_ERR_CONFIG', WEAK_SECRET_HELP);
  if (new Set(bytes).size < MIN_DISTINCT_SECRET_BYTES) {
    bytes.fill(0);
    throw new ZksError('ZKS_ERR_CONFIG', `${WEAK_SECRET_HELP} (this one repeats a pattern)`);
  }
  return bytes;
}

/** A tunnel id (docs/design/expose.md): a DNS label, so that `<id>.example.com` can name it later. */
export const TUNNEL_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SALT_TUNNEL = utf8Bytes('zks1 tunnel');

/**
 * The room secret of TCP tunnel `id` (`zks expose tcp://…` and `zks access`): the tunnel secret and the id through
 * HKDF, so one secret opens a different room per id, and nobody who lacks the secret learns or reaches any of them.
 */
export async function tunnelRoomSecret(b: CryptoBackend, secret: string, id: string): Promise<string> {
  if (!TUNNEL_ID.test(id)) throw new ZksError('ZKS_ERR_CONFIG', `tunnel id "${id}" must be 1-63 of a-z, 0-9 and "-" (not at either end)`);
  const ikm = roomSecretBytes(secret);
  const derived = await hkdf(b, ikm, SALT_TUNNEL, utf8Bytes(`zks1 tunnel ${id}`), ROOM_SECRET_SIZE);
  ikm.fill(0);
  try {
    return encodeBase64Url(derived);
  } finally {
    derived.fill(0);
  }
}

/**
 * What an HTTP tunnel's agent proves it holds (docs/PROTOCOL.md §12.2): HKDF of the tunnel secret and the id. The
 * tunnel keeps the first verifier it sees; an agent with another secret is refused. Not the secret itself, and
 * not the TCP tunnel's room secret (another info string): knowing it opens no TCP tunnel.
 */
export async function tunnelClaimVerifier(b: CryptoBackend, secret: string, id: string): Promise<Uint8Array> {
  if (!TUNNEL_ID.test(id)) throw new ZksError('ZKS_ERR_CONFIG', `tunnel id "${id}" must be 1-63 of a-z, 0-9 and "-" (not at either end)`);
  const ikm = roomSecretBytes(secret);
  try {
    return await hkdf(b, ikm, SALT_TUNNEL, utf8Bytes(`zks1 tunnel claim ${id}`), 32);
  } finally {
    ikm.fill(0);
  }
}

/** Derives the relay-visible room id, the end-to-end PSK and the exit's room key from a room secret. */
export async function deriveRoomKeys(b: CryptoBackend, secret: string): Promise<RoomKeys> {
  const ikm = roomSecretBytes(secret);
  const [psk, exitPrivate] = await Promise.all([hkdf(b, ikm, SALT_ROOM, INFO_PSK, 32), hkdf(b, ikm, SALT_ROOM, INFO_EXIT_KEY, X25519_KEY_SIZE)]);
  ikm.fill(0);
  const exitPublic = await b.x25519(exitPrivate, X25519_BASE_POINT);
  return { roomId: await roomIdOf(b, exitPublic), psk, exitKey: { privateKey: exitPrivate, publicKey: exitPublic } };
}

/**
 * The exit's optional static key pair from its private half (`zks keygen --exit`). Clients that pin the public
 * half (the "exit id") mix es = X25519(e_client, exitStatic) into the end-to-end handshake (docs/PROTOCOL.md §2.4).
 */
export async function exitStaticKey(b: CryptoBackend, privateKey: Uint8Array): Promise<X25519Keypair> {
  if (privateKey.length !== X25519_KEY_SIZE) {
    throw new ZksError('ZKS_ERR_CONFIG', 'the exit key must be 32 bytes of base64url (43 characters), as printed by `zks keygen --exit`');
  }
  const priv = privateKey.slice();
  return { privateKey: priv, publicKey: await b.x25519(priv, X25519_BASE_POINT) };
}

/** roomId = HKDF(exit public key): a 128-bit commitment the room checks an exit's key against. */
export function roomIdOf(b: CryptoBackend, exitPublic: Uint8Array): Promise<Uint8Array> {
  return hkdf(b, exitPublic, SALT_ROOM, INFO_ID, ROOM_ID_SIZE);
}

function exitProofInput(roomId: Uint8Array, challenge: Uint8Array, exitPublic: Uint8Array, instance: Uint8Array): Uint8Array {
  return concatBytes(INFO_EXIT_PROOF, roomId, challenge, exitPublic, instance);
}

async function exitProofMac(b: CryptoBackend, shared: Uint8Array, input: Uint8Array): Promise<Uint8Array> {
  const key = await hkdf(b, shared, SALT_ROOM, INFO_EXIT_PROOF, 32);
  shared.fill(0);
  const mac = await b.hmacSha256(key, input);
  key.fill(0);
  return mac;
}

/**
 * The exit's answer to a room challenge (the room's fresh X25519 public key): a MAC under a key only the holder
 * of exitKey.privateKey and the room (with its challenge private key) can compute. `instance` names this exit
 * peer process (the room lets the same instance replace its own stale connection at once).
 */
export async function proveExit(
  b: CryptoBackend, keys: Pick<RoomKeys, 'roomId' | 'exitKey'>, challenge: Uint8Array, instance: Uint8Array,
): Promise<Uint8Array> {
  const shared = await b.x25519(keys.exitKey.privateKey, challenge);
  return exitProofMac(b, shared, exitProofInput(keys.roomId, challenge, keys.exitKey.publicKey, instance));
}

/** The room's check of an exit's proof; true, or a ZKS_ERR_AUTH error value (never throws for bad input). */
export async function verifyExitProof(
  b: CryptoBackend,
  roomId: Uint8Array,
  challenge: X25519Keypair,
  proof: { exitPublic: Uint8Array; instance: Uint8Array; mac: Uint8Array },
): Promise<true | ZksError> {
  const refuse = (why: string) => new ZksError('ZKS_ERR_AUTH', `exit proof refused: ${why}`);
  if (proof.exitPublic.length !== X25519_KEY_SIZE || proof.mac.length !== EXIT_PROOF_SIZE || proof.instance.length !== EXIT_INSTANCE_SIZE) {
    return refuse('bad field length');
  }
  if (!equalBytes(await roomIdOf(b, proof.exitPublic), roomId)) return refuse('the key is not the one this room id commits to');
  let shared: Uint8Array;
  try {
    shared = await b.x25519(challenge.privateKey, proof.exitPublic);
  } catch {
    return refuse('the key is not a valid X25519 public key');
  }
  const mac = await exitProofMac(b, shared, exitProofInput(roomId, challenge.publicKey, proof.exitPublic, proof.instance));
  return equalBytes(mac, proof.mac) ? true : refuse('the MAC does not verify');
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
