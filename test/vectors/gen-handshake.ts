// Generates test/vectors/handshake.json from the spec alone, using @noble primitives directly (not src/crypto),
// so the vector is an independent check of src/crypto/handshake.ts. Run: node --import tsx test/vectors/gen-handshake.ts
// Inputs are fixed: RFC 7748 §6.1 Alice/Bob keys as the client/responder ephemerals, counting-byte psk/nonces.
import { writeFileSync } from 'node:fs';
import { x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const utf8 = (s: string) => new TextEncoder().encode(s);
const range = (a: number, n: number) => new Uint8Array(n).map((_, i) => (a + i) & 0xff);
const cat = (...p: Uint8Array[]) => new Uint8Array(Buffer.concat(p));

const psk = range(0x00, 32);
const clientPriv = unhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const responderPriv = unhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
const clientNonce = range(0xa0, 16);
const relayEntropy = range(0xc0, 32);
const timestampMs = 1_767_225_600_000; // 2026-01-01T00:00:00Z

const ck0 = sha256(utf8('ZKS1_NNpsk0_25519_HKDF-SHA256'));
const authKey = expand(sha256, extract(sha256, psk, ck0), utf8('zks1 hello auth'), 32);
const ts = new Uint8Array(8);
new DataView(ts.buffer).setBigUint64(0, BigInt(timestampMs));
const helloBody = cat(Uint8Array.of(1, 1, 0b11), ts, clientNonce, x25519.getPublicKey(clientPriv));
const hello = cat(helloBody, hmac(sha256, authKey, helloBody));

const dh = x25519.getSharedSecret(responderPriv, x25519.getPublicKey(clientPriv));
const prk = extract(sha256, cat(psk, dh, clientNonce, relayEntropy), ck0);
const replyHead = cat(Uint8Array.of(1, 1), x25519.getPublicKey(responderPriv), relayEntropy);
const th = sha256(cat(hello, replyHead));
const okm = expand(sha256, prk, cat(utf8('zks1 session keys'), th), 128);
const confirm = hmac(sha256, okm.slice(64, 96), cat(utf8('zks1 responder confirm'), th));
const reply = cat(replyHead, confirm);
const record0Plain = utf8('hello, relay');
const nonce0 = new Uint8Array(12); // 4 zero bytes || u64 BE counter 0
const nonce1 = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
const rekey1 = expand(sha256, okm.slice(0, 32), utf8('zks1 rekey'), 32);

// Pinned variant (§2.4): the client pins the responder's static key (suiteMask bit 7) and es is mixed in.
const responderStaticPriv = range(0x40, 32);
const pinnedHelloBody = cat(Uint8Array.of(1, 1, 0b11 | 0x80), ts, clientNonce, x25519.getPublicKey(clientPriv));
const pinnedHello = cat(pinnedHelloBody, hmac(sha256, authKey, pinnedHelloBody));
const es = x25519.getSharedSecret(responderStaticPriv, x25519.getPublicKey(clientPriv));
const pinnedPrk = extract(sha256, cat(psk, dh, es, clientNonce, relayEntropy), ck0);
const pinnedTh = sha256(cat(pinnedHello, replyHead));
const pinnedOkm = expand(sha256, pinnedPrk, cat(utf8('zks1 session keys'), pinnedTh), 128);
const pinnedReply = cat(replyHead, hmac(sha256, pinnedOkm.slice(64, 96), cat(utf8('zks1 responder confirm'), pinnedTh)));

// Capabilities variant (§2.2, §2.3): HELLO suiteMask bit 6, REPLY suite byte bit 7; both are in the transcript.
const capsHelloBody = cat(Uint8Array.of(1, 1, 0b11 | 0x40), ts, clientNonce, x25519.getPublicKey(clientPriv));
const capsHello = cat(capsHelloBody, hmac(sha256, authKey, capsHelloBody));
const capsReplyHead = cat(Uint8Array.of(1, 1 | 0x80), x25519.getPublicKey(responderPriv), relayEntropy);
const capsTh = sha256(cat(capsHello, capsReplyHead));
const capsOkm = expand(sha256, prk, cat(utf8('zks1 session keys'), capsTh), 128);
const capsReply = cat(capsReplyHead, hmac(sha256, capsOkm.slice(64, 96), cat(utf8('zks1 responder confirm'), capsTh)));

// Sequenced records (§2.5a): a relay-mode client offers capabilities and sequenced records (suiteMask bits 6 and 5),
// the exit peer accepts both (REPLY suite byte bits 7 and 6). Its first two records in each direction, in the
// sequenced form `seq u64 || AEAD(nonce(seq))`: client → exit a PING, exit → client its PONG and a PATH_ACK(1).
const seqHelloBody = cat(Uint8Array.of(1, 1, 0b11 | 0x40 | 0x20), ts, clientNonce, x25519.getPublicKey(clientPriv));
const seqHello = cat(seqHelloBody, hmac(sha256, authKey, seqHelloBody));
const seqReplyHead = cat(Uint8Array.of(1, 1 | 0x80 | 0x40), x25519.getPublicKey(responderPriv), relayEntropy);
const seqTh = sha256(cat(seqHello, seqReplyHead));
const seqOkm = expand(sha256, prk, cat(utf8('zks1 session keys'), seqTh), 128);
const seqReply = cat(seqReplyHead, hmac(sha256, seqOkm.slice(64, 96), cat(utf8('zks1 responder confirm'), seqTh)));
const u64 = (n: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
};
const frame = (type: number, payload: Uint8Array) => cat(Uint8Array.of(type, 0, 0, 0, 0), u64(payload.length).slice(4), payload);
const opaque = range(0x10, 8);
const seqPlain = {
  c2s0: frame(0x07, opaque), // PING
  s2c0: frame(0x08, opaque), // PONG
  s2c1: frame(0x0b, u64(1)), // PATH_ACK(next = 1): the PING arrived
};
const sequenced = (key: Uint8Array, seq: number, plain: Uint8Array) => cat(u64(seq), gcm(key, cat(new Uint8Array(4), u64(seq))).encrypt(plain));

// Datagram records (§3.6): keys HKDF-Expand(first record key, "zks1 datagram", 32) per direction; record 7 from the
// client carries one UDP_DATAGRAM (flow 1, to 10.0.0.53:53, "hello"), sealed under nonce 0^4 || u64(7).
const dgKC2S = expand(sha256, seqOkm.slice(0, 32), utf8('zks1 datagram'), 32);
const dgKS2C = expand(sha256, seqOkm.slice(32, 64), utf8('zks1 datagram'), 32);
const dgPlain = cat(new Uint8Array([0x10, 0, 0, 0, 1, 0, 0, 0, 13, 1, 0, 53, 1, 10, 0, 0, 53]), utf8('hello'));

// The direct TCP path (§3.7): K = HKDF-Expand(first record key client → exit, "zks1 tcp path", 32); the exit's
// nonce 00..0f, the client's 10..1f.
const tcpK = expand(sha256, seqOkm.slice(0, 32), utf8('zks1 tcp path'), 32);
const tcpNe = Uint8Array.from({ length: 16 }, (_, i) => i);
const tcpNc = Uint8Array.from({ length: 16 }, (_, i) => 16 + i);

const vector = {
  comment: 'ZKS handshake v1, suites [aes-256-gcm, chacha20-poly1305]; generated by gen-handshake.ts with @noble primitives',
  inputs: {
    psk: hex(psk),
    clientEphemeralPrivate: hex(clientPriv),
    responderEphemeralPrivate: hex(responderPriv),
    clientNonce: hex(clientNonce),
    relayEntropy: hex(relayEntropy),
    timestampMs,
  },
  expected: {
    ck0: hex(ck0),
    authKey: hex(authKey),
    hello: hex(hello),
    dh: hex(dh),
    transcriptHash: hex(th),
    reply: hex(reply),
    kC2S: hex(okm.slice(0, 32)),
    kS2C: hex(okm.slice(32, 64)),
    kConfirm: hex(okm.slice(64, 96)),
    sessionId: hex(okm.slice(96, 128)),
    kC2SAfterFirstRekey: hex(rekey1),
    // First client record (counter 0) and second (counter 1) with the same plaintext, both suites.
    recordPlaintext: hex(record0Plain),
    aesGcmRecord0: hex(gcm(okm.slice(0, 32), nonce0).encrypt(record0Plain)),
    aesGcmRecord1: hex(gcm(okm.slice(0, 32), nonce1).encrypt(record0Plain)),
    chachaRecord0: hex(chacha20poly1305(okm.slice(0, 32), nonce0).encrypt(record0Plain)),
  },
  pinned: {
    responderStaticPrivate: hex(responderStaticPriv),
    responderStaticPublic: hex(x25519.getPublicKey(responderStaticPriv)),
    pinnedHello: hex(pinnedHello),
    es: hex(es),
    pinnedReply: hex(pinnedReply),
    pinnedKC2S: hex(pinnedOkm.slice(0, 32)),
    pinnedKS2C: hex(pinnedOkm.slice(32, 64)),
    pinnedSessionId: hex(pinnedOkm.slice(96, 128)),
  },
  capabilities: {
    capsHello: hex(capsHello),
    capsReply: hex(capsReply),
    capsKC2S: hex(capsOkm.slice(0, 32)),
    capsKS2C: hex(capsOkm.slice(32, 64)),
    capsSessionId: hex(capsOkm.slice(96, 128)),
  },
  sequenced: {
    seqHello: hex(seqHello),
    seqReply: hex(seqReply),
    seqKC2S: hex(seqOkm.slice(0, 32)),
    seqKS2C: hex(seqOkm.slice(32, 64)),
    plainC2S0: hex(seqPlain.c2s0),
    plainS2C0: hex(seqPlain.s2c0),
    plainS2C1: hex(seqPlain.s2c1),
    recordC2S0: hex(sequenced(seqOkm.slice(0, 32), 0, seqPlain.c2s0)),
    recordS2C0: hex(sequenced(seqOkm.slice(32, 64), 0, seqPlain.s2c0)),
    recordS2C1: hex(sequenced(seqOkm.slice(32, 64), 1, seqPlain.s2c1)),
  },
  datagram: {
    datagramKC2S: hex(dgKC2S),
    datagramKS2C: hex(dgKS2C),
    datagramPlainC2S7: hex(dgPlain),
    datagramRecordC2S7: hex(sequenced(dgKC2S, 7, dgPlain)),
  },
  tcpPath: {
    tcpPathKey: hex(tcpK),
    tcpExitNonce: hex(tcpNe),
    tcpClientNonce: hex(tcpNc),
    pathHello: hex(cat(utf8('ZKS1-TCP'), tcpNc, hmac(sha256, tcpK, cat(utf8('hello'), tcpNe, tcpNc)))),
    pathWelcome: hex(hmac(sha256, tcpK, cat(utf8('welcome'), tcpNe, tcpNc))),
  },
};
writeFileSync(new URL('./handshake.json', import.meta.url), JSON.stringify(vector, null, 1) + '\n');
console.log(JSON.stringify(vector, null, 1));
