// ZKS handshake, Noise NNpsk0 shape: HELLO (client, authenticated by the PSK) → REPLY (responder, proves the
// PSK via `confirm`). Spec: docs/PROTOCOL.md "Handshake" (byte layouts and key schedule are restated below).
// Invariants: bad peer input yields a ZksError *value*, never a throw; MAC/confirm compared in constant time;
// dh, prk, okm and ephemeral private keys are wiped after use (as far as GC'd memory allows).
import { ZksError } from '../errors/zks-error';
import { concatBytes, equalBytes, readU64BE, utf8Bytes, writeU64BE } from './bytes';
import { hkdf, hkdfExpand, hkdfExtract } from './hkdf';
import { ALL_SUITES, SUITE_ID, X25519_KEY_SIZE } from './types';
import type { CipherSuite, CryptoBackend, X25519Keypair } from './types';

export { decodeBase64Url, encodeBase64Url, equalBytes } from './bytes';

export const HELLO_SIZE = 91;
export const REPLY_SIZE = 98;
export const HANDSHAKE_VERSION = 1;
export const MAX_CLOCK_SKEW_MS = 10 * 60_000;
export const PSK_SIZE = 32;
export const CLIENT_NONCE_SIZE = 16;
export const RELAY_ENTROPY_SIZE = 32;
/** suiteMask bit 7: the client pins the responder's static X25519 key (relay mode's exit key, §2.4); es is mixed in. */
export const PIN_RESPONDER_STATIC = 0x80;
/** suiteMask bit 6: the client speaks CAPABILITIES (§2.2, §3.3). Older responders ignore the bit. */
export const OFFERS_CAPABILITIES = 0x40;
/** REPLY suite byte bit 7: the responder speaks CAPABILITIES too; set only when the HELLO offered them. */
export const REPLY_SPEAKS_CAPABILITIES = 0x80;
/** suiteMask bit 5: the client can send and receive sequenced records (§2.5a). Older responders ignore the bit. */
export const OFFERS_SEQUENCED_RECORDS = 0x20;
/** REPLY suite byte bit 6: both directions use sequenced records; set only when the HELLO offered them. */
export const REPLY_SEQUENCED_RECORDS = 0x40;
/**
 * suiteMask bit 4: this handshake resumes a session (§11.7): the first record each way is the resume exchange, not a
 * mux record. Set only toward an exit peer that announced Capability.RESUME on the session being resumed.
 */
export const RESUMES_SESSION = 0x10;

// HELLO: version u8 | preferredSuite u8 | suiteMask u8 | timestampMs u64 | clientNonce[16] | ephPub[32] | mac[32]
const H = { VERSION: 0, PREFERRED: 1, MASK: 2, TIME: 3, NONCE: 11, EPH: 27, MAC: 59 } as const;
// REPLY: version u8 | suite u8 | ephPub[32] | relayEntropy[32] | confirm[32]
const R = { VERSION: 0, SUITE: 1, EPH: 2, ENTROPY: 34, CONFIRM: 66 } as const;

const PROTOCOL_NAME = 'ZKS1_NNpsk0_25519_HKDF-SHA256';
const INFO_HELLO_AUTH = utf8Bytes('zks1 hello auth');
const INFO_SESSION_KEYS = utf8Bytes('zks1 session keys');
const LABEL_CONFIRM = utf8Bytes('zks1 responder confirm');

export interface SessionKeys {
  suite: CipherSuite;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  sessionId: Uint8Array;
  /** Both sides speak CAPABILITIES: each sends its frame first (§3.3); false with an older peer. */
  capabilities?: boolean;
  /** Records carry their sequence number and are acknowledged with PATH_ACK (§2.5a); false with an older peer. */
  sequencedRecords?: boolean;
}

/** Opaque to callers; single use (the ephemeral private key is wiped by finishClientHandshake). */
export interface ClientHandshakeState {
  readonly _brand: 'ClientHandshakeState';
}
interface ClientState extends ClientHandshakeState {
  psk: Uint8Array;
  hello: Uint8Array;
  ephemeralPrivate: Uint8Array;
  clientNonce: Uint8Array;
  suiteMask: number;
  /** The responder's pinned static public key, or null (§2.4: es = X25519(e_client, s_responder)). */
  responderStatic: Uint8Array | null;
  offeredCapabilities: boolean;
  offeredSequenced: boolean;
  used: boolean;
}

/** A HELLO whose size, version, MAC and timestamp have been checked. */
export interface VerifiedHello {
  readonly hello: Uint8Array;
  readonly preferredSuite: CipherSuite | null; // null: an id this build does not know
  readonly offeredSuites: CipherSuite[];
  readonly timestampMs: number;
  readonly clientNonce: Uint8Array;
  readonly clientEphemeralPub: Uint8Array;
  /** The client pins this responder's static key: the responder must mix in es (respondToHello's staticKey). */
  readonly pinsResponderStatic: boolean;
  /** The client speaks CAPABILITIES (suiteMask bit 6). */
  readonly offersCapabilities: boolean;
  /** The client can use sequenced records (suiteMask bit 5). */
  readonly offersSequencedRecords: boolean;
  /** RESUMES_SESSION: the first record each way is the resume exchange (§11.7). */
  readonly resumesSession: boolean;
}

const suiteById = (id: number): CipherSuite | null => ALL_SUITES.find((s) => SUITE_ID[s] === id) ?? null;
const suiteBit = (s: CipherSuite): number => 1 << (SUITE_ID[s] - 1);

const ck0 = (b: CryptoBackend) => b.sha256(utf8Bytes(PROTOCOL_NAME)); // same for every backend; cheap

function checkPsk(psk: Uint8Array): void {
  if (!(psk instanceof Uint8Array) || psk.length !== PSK_SIZE) {
    throw new ZksError('ZKS_ERR_HANDSHAKE', `the pre-shared key must be ${PSK_SIZE} bytes`);
  }
}

async function helloAuthKey(b: CryptoBackend, psk: Uint8Array): Promise<Uint8Array> {
  return hkdf(b, psk, await ck0(b), INFO_HELLO_AUTH, 32);
}

export async function createClientHello(
  b: CryptoBackend,
  psk: Uint8Array,
  opts: {
    suites?: CipherSuite[]; nowMs?: number; ephemeral?: X25519Keypair; clientNonce?: Uint8Array; responderStatic?: Uint8Array;
    /** Announce CAPABILITIES (§3.3); off by default so the plain HELLO stays byte-for-byte what older peers sent. */
    capabilities?: boolean;
    /** Offer sequenced records (§2.5a; relay mode: the exit peer decides). Off by default, like capabilities. */
    sequencedRecords?: boolean;
    /** This handshake resumes a session (§11.7): RESUMES_SESSION. */
    resumes?: boolean;
  } = {},
): Promise<{ hello: Uint8Array; state: ClientHandshakeState }> {
  checkPsk(psk);
  const suites = opts.suites ?? ['aes-256-gcm', 'chacha20-poly1305'];
  if (suites.length === 0 || suites.some((s) => SUITE_ID[s] === undefined)) {
    throw new ZksError('ZKS_ERR_HANDSHAKE', `offer at least one known cipher suite (${ALL_SUITES.join(', ')})`);
  }
  const clientNonce = opts.clientNonce ? opts.clientNonce.slice() : b.randomBytes(CLIENT_NONCE_SIZE);
  if (clientNonce.length !== CLIENT_NONCE_SIZE) throw new ZksError('ZKS_ERR_HANDSHAKE', 'clientNonce must be 16 bytes');
  const eph = opts.ephemeral
    ? { privateKey: opts.ephemeral.privateKey.slice(), publicKey: opts.ephemeral.publicKey }
    : await b.x25519Keypair();
  if (eph.publicKey.length !== X25519_KEY_SIZE || eph.privateKey.length !== X25519_KEY_SIZE) {
    throw new ZksError('ZKS_ERR_HANDSHAKE', 'ephemeral X25519 keys must be 32 bytes');
  }
  const suiteMask = suites.reduce((m, s) => m | suiteBit(s), 0);
  const responderStatic = opts.responderStatic ? opts.responderStatic.slice() : null;
  if (responderStatic && responderStatic.length !== X25519_KEY_SIZE) {
    throw new ZksError('ZKS_ERR_HANDSHAKE', 'the pinned responder key must be 32 bytes');
  }

  const hello = new Uint8Array(HELLO_SIZE);
  hello[H.VERSION] = HANDSHAKE_VERSION;
  hello[H.PREFERRED] = SUITE_ID[suites[0]];
  const offeredCapabilities = opts.capabilities ?? false;
  const offeredSequenced = opts.sequencedRecords ?? false;
  hello[H.MASK] = suiteMask | (responderStatic ? PIN_RESPONDER_STATIC : 0) | (offeredCapabilities ? OFFERS_CAPABILITIES : 0) |
    (offeredSequenced ? OFFERS_SEQUENCED_RECORDS : 0) | (opts.resumes ? RESUMES_SESSION : 0);
  writeU64BE(hello, H.TIME, Math.max(0, Math.floor(opts.nowMs ?? Date.now())));
  hello.set(clientNonce, H.NONCE);
  hello.set(eph.publicKey, H.EPH);
  const authKey = await helloAuthKey(b, psk);
  hello.set(await b.hmacSha256(authKey, hello.subarray(0, H.MAC)), H.MAC);
  authKey.fill(0);

  const state: ClientState = {
    _brand: 'ClientHandshakeState',
    psk: psk.slice(),
    hello,
    ephemeralPrivate: eph.privateKey,
    clientNonce,
    suiteMask,
    responderStatic,
    offeredCapabilities,
    offeredSequenced,
    used: false,
  };
  return { hello: hello.slice(), state };
}

/** Responder side, before accepting the WebSocket upgrade. Returns a ZksError value for any bad input. */
export async function verifyClientHello(
  b: CryptoBackend,
  psk: Uint8Array,
  hello: Uint8Array,
  opts: { nowMs?: number } = {},
): Promise<VerifiedHello | ZksError> {
  if (!(hello instanceof Uint8Array) || hello.length !== HELLO_SIZE) {
    return new ZksError('ZKS_ERR_HANDSHAKE', `HELLO must be ${HELLO_SIZE} bytes`);
  }
  if (hello[H.VERSION] !== HANDSHAKE_VERSION) {
    return new ZksError('ZKS_ERR_VERSION', `client speaks handshake v${hello[H.VERSION]}, this relay speaks v${HANDSHAKE_VERSION}: upgrade the older side`);
  }
  if (!(psk instanceof Uint8Array) || psk.length !== PSK_SIZE) {
    return new ZksError('ZKS_ERR_HANDSHAKE', `the pre-shared key must be ${PSK_SIZE} bytes`);
  }
  const authKey = await helloAuthKey(b, psk);
  const mac = await b.hmacSha256(authKey, hello.subarray(0, H.MAC));
  authKey.fill(0);
  if (!equalBytes(mac, hello.subarray(H.MAC))) {
    return new ZksError('ZKS_ERR_AUTH', 'HELLO authentication failed: client and relay hold different keys');
  }
  const timestampMs = readU64BE(hello, H.TIME);
  const nowMs = opts.nowMs ?? Date.now();
  if (Math.abs(timestampMs - nowMs) > MAX_CLOCK_SKEW_MS) {
    return new ZksError('ZKS_ERR_AUTH', `HELLO timestamp is outside the allowed clock skew (±${MAX_CLOCK_SKEW_MS / 60_000} min): sync the client clock`);
  }
  const mask = hello[H.MASK];
  const offeredSuites = ALL_SUITES.filter((s) => (mask & suiteBit(s)) !== 0);
  if (offeredSuites.length === 0) {
    return new ZksError('ZKS_ERR_HANDSHAKE', `client offers no cipher suite this relay knows (mask 0x${mask.toString(16)})`);
  }
  return {
    hello: hello.slice(),
    preferredSuite: suiteById(hello[H.PREFERRED]),
    offeredSuites,
    timestampMs,
    clientNonce: hello.slice(H.NONCE, H.NONCE + CLIENT_NONCE_SIZE),
    clientEphemeralPub: hello.slice(H.EPH, H.EPH + X25519_KEY_SIZE),
    pinsResponderStatic: (mask & PIN_RESPONDER_STATIC) !== 0,
    offersCapabilities: (mask & OFFERS_CAPABILITIES) !== 0,
    offersSequencedRecords: (mask & OFFERS_SEQUENCED_RECORDS) !== 0,
    resumesSession: (mask & RESUMES_SESSION) !== 0,
  };
}

/** prk → okm → keys + confirm; shared by both sides so they cannot drift. Wipes dh, es, prk and okm. */
async function deriveSession(
  b: CryptoBackend,
  psk: Uint8Array,
  dh: Uint8Array,
  es: Uint8Array | null,
  hello: Uint8Array,
  replyHead: Uint8Array,
): Promise<{ c2s: Uint8Array; s2c: Uint8Array; sessionId: Uint8Array; confirm: Uint8Array }> {
  const clientNonce = hello.subarray(H.NONCE, H.NONCE + CLIENT_NONCE_SIZE);
  const relayEntropy = replyHead.subarray(R.ENTROPY, R.ENTROPY + RELAY_ENTROPY_SIZE);
  const ikm = es ? concatBytes(psk, dh, es, clientNonce, relayEntropy) : concatBytes(psk, dh, clientNonce, relayEntropy);
  dh.fill(0);
  es?.fill(0);
  const prk = await hkdfExtract(b, await ck0(b), ikm);
  ikm.fill(0);
  const th = await b.sha256(concatBytes(hello, replyHead));
  const okm = await hkdfExpand(b, prk, concatBytes(INFO_SESSION_KEYS, th), 128);
  prk.fill(0);
  const kConfirm = okm.slice(64, 96);
  const confirm = await b.hmacSha256(kConfirm, concatBytes(LABEL_CONFIRM, th));
  kConfirm.fill(0);
  const out = { c2s: okm.slice(0, 32), s2c: okm.slice(32, 64), sessionId: okm.slice(96, 128), confirm };
  okm.fill(0);
  return out;
}

export async function respondToHello(
  b: CryptoBackend,
  psk: Uint8Array,
  verified: VerifiedHello,
  opts: {
    supportedSuites?: CipherSuite[]; ephemeral?: X25519Keypair; relayEntropy?: Uint8Array; staticKey?: X25519Keypair;
    /** This responder speaks CAPABILITIES; agreed only when the HELLO offered them too. */
    capabilities?: boolean;
    /** This responder uses sequenced records when the HELLO offers them (§2.5a). */
    sequencedRecords?: boolean;
  } = {},
): Promise<{ reply: Uint8Array; keys: SessionKeys }> {
  checkPsk(psk);
  if (verified.pinsResponderStatic && !opts.staticKey) {
    throw new ZksError('ZKS_ERR_AUTH', 'the client pins an exit key (--exit-id), and this responder has none: start the exit peer with --exit-key');
  }
  // Only a client that pins the key gets es; others are served as before (pinning is the client's protection).
  const es = verified.pinsResponderStatic ? await b.x25519(opts.staticKey!.privateKey, verified.clientEphemeralPub) : null;
  const supported = opts.supportedSuites ?? [...ALL_SUITES];
  const offered = verified.offeredSuites;
  const preferred = verified.preferredSuite;
  const suite =
    preferred && offered.includes(preferred) && supported.includes(preferred)
      ? preferred
      : supported.find((s) => offered.includes(s));
  if (!suite) {
    throw new ZksError('ZKS_ERR_HANDSHAKE', `no common cipher suite: client offers [${offered.join(', ')}], relay supports [${supported.join(', ')}]`);
  }
  const relayEntropy = opts.relayEntropy ? opts.relayEntropy.slice() : b.randomBytes(RELAY_ENTROPY_SIZE);
  if (relayEntropy.length !== RELAY_ENTROPY_SIZE) throw new ZksError('ZKS_ERR_HANDSHAKE', 'relayEntropy must be 32 bytes');
  const eph = opts.ephemeral
    ? { privateKey: opts.ephemeral.privateKey.slice(), publicKey: opts.ephemeral.publicKey }
    : await b.x25519Keypair();

  let dh: Uint8Array;
  try {
    dh = await b.x25519(eph.privateKey, verified.clientEphemeralPub);
  } finally {
    eph.privateKey.fill(0);
  }
  const reply = new Uint8Array(REPLY_SIZE);
  reply[R.VERSION] = HANDSHAKE_VERSION;
  const capabilities = verified.offersCapabilities && (opts.capabilities ?? false);
  const sequencedRecords = verified.offersSequencedRecords && (opts.sequencedRecords ?? false);
  reply[R.SUITE] = SUITE_ID[suite] | (capabilities ? REPLY_SPEAKS_CAPABILITIES : 0) | (sequencedRecords ? REPLY_SEQUENCED_RECORDS : 0);
  reply.set(eph.publicKey, R.EPH);
  reply.set(relayEntropy, R.ENTROPY);
  const s = await deriveSession(b, psk, dh, es, verified.hello, reply.subarray(0, R.CONFIRM));
  reply.set(s.confirm, R.CONFIRM);
  return { reply, keys: { suite, sendKey: s.s2c, recvKey: s.c2s, sessionId: s.sessionId, capabilities, sequencedRecords } };
}

export async function finishClientHandshake(
  b: CryptoBackend,
  state: ClientHandshakeState,
  reply: Uint8Array,
): Promise<SessionKeys | ZksError> {
  const st = state as ClientState;
  if (st.used) return new ZksError('ZKS_ERR_HANDSHAKE', 'this handshake state was already used; start a new handshake');
  if (!(reply instanceof Uint8Array) || reply.length !== REPLY_SIZE) {
    return new ZksError('ZKS_ERR_HANDSHAKE', `REPLY must be ${REPLY_SIZE} bytes`);
  }
  if (reply[R.VERSION] !== HANDSHAKE_VERSION) {
    return new ZksError('ZKS_ERR_VERSION', `relay speaks handshake v${reply[R.VERSION]}, this client speaks v${HANDSHAKE_VERSION}: upgrade the older side`);
  }
  const capabilities = (reply[R.SUITE] & REPLY_SPEAKS_CAPABILITIES) !== 0;
  if (capabilities && !st.offeredCapabilities) {
    return new ZksError('ZKS_ERR_HANDSHAKE', 'relay announced capabilities this client did not offer');
  }
  const sequencedRecords = (reply[R.SUITE] & REPLY_SEQUENCED_RECORDS) !== 0;
  if (sequencedRecords && !st.offeredSequenced) {
    return new ZksError('ZKS_ERR_HANDSHAKE', 'relay chose sequenced records, which this client did not offer');
  }
  const suiteId = reply[R.SUITE] & ~(REPLY_SPEAKS_CAPABILITIES | REPLY_SEQUENCED_RECORDS);
  const suite = suiteById(suiteId);
  if (!suite || (st.suiteMask & suiteBit(suite)) === 0) {
    return new ZksError('ZKS_ERR_HANDSHAKE', `relay chose cipher suite ${suiteId}, which this client did not offer`);
  }
  // From here on the ephemeral key is spent, whatever the outcome.
  st.used = true;
  let dh: Uint8Array;
  let es: Uint8Array | null = null;
  try {
    if (st.responderStatic) es = await b.x25519(st.ephemeralPrivate, st.responderStatic);
    dh = await b.x25519(st.ephemeralPrivate, reply.subarray(R.EPH, R.EPH + X25519_KEY_SIZE));
  } catch (err) {
    es?.fill(0);
    return err instanceof ZksError ? err : new ZksError('ZKS_ERR_HANDSHAKE', 'X25519 failed');
  } finally {
    st.ephemeralPrivate.fill(0);
  }
  const s = await deriveSession(b, st.psk, dh, es, st.hello, reply.subarray(0, R.CONFIRM));
  st.psk.fill(0);
  if (!equalBytes(s.confirm, reply.subarray(R.CONFIRM))) {
    s.c2s.fill(0);
    s.s2c.fill(0);
    return new ZksError('ZKS_ERR_AUTH', st.responderStatic
      ? 'the exit peer could not prove the pinned exit key and the room secret (wrong --exit-id or --room, or an impostor holding the room secret)'
      : 'relay could not prove it holds the key (wrong key or tampered reply)');
  }
  return { suite, sendKey: s.c2s, recvKey: s.s2c, sessionId: s.sessionId, capabilities, sequencedRecords };
}
