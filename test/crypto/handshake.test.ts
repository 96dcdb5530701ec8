// Handshake: cross-backend round trips, suite negotiation, every rejection path, and the fixed vector
// in test/vectors/handshake.json (generated independently from @noble primitives by gen-handshake.ts).
import { describe, expect, it } from 'vitest';
import vector from '../vectors/handshake.json';
import {
  HELLO_SIZE,
  MAX_CLOCK_SKEW_MS,
  REPLY_SIZE,
  createClientHello,
  decodeBase64Url,
  encodeBase64Url,
  finishClientHandshake,
  respondToHello,
  verifyClientHello,
  type SessionKeys,
  type VerifiedHello,
} from '../../src/crypto/handshake';
import { ZksError } from '../../src/errors/zks-error';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import type { CipherSuite, CryptoBackend } from '../../src/crypto/types';
import { expectZksError, h, hex, rejection } from './helpers';

const PSK = h(vector.inputs.psk);
const PAIRS: Array<[string, CryptoBackend, CryptoBackend]> = [
  ['node client ↔ webcrypto responder', nodeCrypto, webCrypto],
  ['webcrypto client ↔ node responder', webCrypto, nodeCrypto],
  ['node ↔ node', nodeCrypto, nodeCrypto],
  ['webcrypto ↔ webcrypto', webCrypto, webCrypto],
];

function verified(v: VerifiedHello | ZksError): VerifiedHello {
  if (v instanceof ZksError) throw v;
  return v;
}
function keys(k: SessionKeys | ZksError): SessionKeys {
  if (k instanceof ZksError) throw k;
  return k;
}

describe.each(PAIRS)('%s', (_name, client, responder) => {
  it.each<[CipherSuite[], CipherSuite]>([
    [['aes-256-gcm', 'chacha20-poly1305'], 'aes-256-gcm'],
    [['chacha20-poly1305', 'aes-256-gcm'], 'chacha20-poly1305'],
    [['chacha20-poly1305'], 'chacha20-poly1305'],
    [['aes-256-gcm'], 'aes-256-gcm'],
  ])('client offers %j → both sides derive mirrored keys for %s', async (suites, expected) => {
    const { hello, state } = await createClientHello(client, PSK, { suites });
    expect(hello.length).toBe(HELLO_SIZE);
    const v = verified(await verifyClientHello(responder, PSK, hello));
    expect(v.offeredSuites.sort()).toEqual([...suites].sort());
    const { reply, keys: rk } = await respondToHello(responder, PSK, v);
    expect(reply.length).toBe(REPLY_SIZE);
    const ck = keys(await finishClientHandshake(client, state, reply));
    expect(ck.suite).toBe(expected);
    expect(rk.suite).toBe(expected);
    expect(hex(ck.sendKey)).toBe(hex(rk.recvKey));
    expect(hex(ck.recvKey)).toBe(hex(rk.sendKey));
    expect(hex(ck.sessionId)).toBe(hex(rk.sessionId));
    expect(hex(ck.sendKey)).not.toBe(hex(ck.recvKey));
  });

  it('wrong psk → ZKS_ERR_AUTH at verify', async () => {
    const { hello } = await createClientHello(client, PSK);
    const other = PSK.slice();
    other[31] ^= 1;
    expectZksError(await verifyClientHello(responder, other, hello), 'ZKS_ERR_AUTH', /different keys/);
  });

  it('tampered reply (each field) → error, never keys', async () => {
    for (const [offset, code] of [
      [0, 'ZKS_ERR_VERSION'],
      [1, 'ZKS_ERR_HANDSHAKE'],
      [2, 'ZKS_ERR_AUTH'], // responder ephemeral: different dh → confirm fails
      [40, 'ZKS_ERR_AUTH'], // relay entropy
      [97, 'ZKS_ERR_AUTH'], // confirm
    ] as const) {
      const { hello, state } = await createClientHello(client, PSK);
      const { reply } = await respondToHello(responder, PSK, verified(await verifyClientHello(responder, PSK, hello)));
      reply[offset] ^= 0x04;
      const result = await finishClientHandshake(client, state, reply);
      expectZksError(result, code);
    }
  });
});

describe('verifyClientHello', () => {
  const b = webCrypto;
  const now = vector.inputs.timestampMs;

  it('accepts timestamps at the edge of the skew window and rejects beyond it ("clock skew")', async () => {
    for (const skew of [-MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS]) {
      const { hello } = await createClientHello(b, PSK, { nowMs: now + skew });
      expect(await verifyClientHello(b, PSK, hello, { nowMs: now })).not.toBeInstanceOf(ZksError);
    }
    for (const skew of [-MAX_CLOCK_SKEW_MS - 1, MAX_CLOCK_SKEW_MS + 1, -now]) {
      const { hello } = await createClientHello(b, PSK, { nowMs: now + skew });
      expectZksError(await verifyClientHello(b, PSK, hello, { nowMs: now }), 'ZKS_ERR_AUTH', /clock skew/);
    }
  });

  it('checks size, then version, then MAC', async () => {
    const { hello } = await createClientHello(b, PSK);
    expectZksError(await verifyClientHello(b, PSK, hello.subarray(0, 90)), 'ZKS_ERR_HANDSHAKE', /91 bytes/);
    const v2 = hello.slice();
    v2[0] = 2;
    expectZksError(await verifyClientHello(b, PSK, v2), 'ZKS_ERR_VERSION', /upgrade/);
    for (const offset of [1, 2, 3, 10, 11, 27, 58, 59, 90]) {
      const t = hello.slice();
      t[offset] ^= 0x01;
      expectZksError(await verifyClientHello(b, PSK, t), 'ZKS_ERR_AUTH');
    }
  });

  it('a psk that is not 32 bytes is an error value, not a throw', async () => {
    const { hello } = await createClientHello(b, PSK);
    expectZksError(await verifyClientHello(b, new Uint8Array(16), hello), 'ZKS_ERR_HANDSHAKE');
  });
});

describe('suite negotiation', () => {
  const b = nodeCrypto;
  it("takes the client's preference when supported, else the responder's first common suite", async () => {
    const { hello } = await createClientHello(b, PSK, { suites: ['chacha20-poly1305', 'aes-256-gcm'] });
    const v = verified(await verifyClientHello(b, PSK, hello));
    expect((await respondToHello(b, PSK, v)).keys.suite).toBe('chacha20-poly1305');
    expect((await respondToHello(b, PSK, v, { supportedSuites: ['aes-256-gcm'] })).keys.suite).toBe('aes-256-gcm');
  });

  it('no common suite → ZKS_ERR_HANDSHAKE', async () => {
    const { hello } = await createClientHello(b, PSK, { suites: ['chacha20-poly1305'] });
    const v = verified(await verifyClientHello(b, PSK, hello));
    const err = await rejection(respondToHello(b, PSK, v, { supportedSuites: ['aes-256-gcm'] }));
    expectZksError(err, 'ZKS_ERR_HANDSHAKE', /no common cipher suite/);
  });

  it('a reply choosing a suite the client did not offer → ZKS_ERR_HANDSHAKE', async () => {
    const { hello, state } = await createClientHello(b, PSK, { suites: ['aes-256-gcm'] });
    const v = verified(await verifyClientHello(b, PSK, hello));
    const { reply } = await respondToHello(b, PSK, { ...v, offeredSuites: ['chacha20-poly1305'], preferredSuite: null });
    expectZksError(await finishClientHandshake(b, state, reply), 'ZKS_ERR_HANDSHAKE', /did not offer/);
  });
});

describe('low-order ephemeral points', () => {
  const zero = new Uint8Array(32);
  it.each([
    ['node', nodeCrypto],
    ['webcrypto', webCrypto],
  ] as const)('%s: responder refuses a HELLO whose ephemeral is a low-order point', async (_n, b) => {
    const { hello } = await createClientHello(b, PSK, { ephemeral: { privateKey: new Uint8Array(32).fill(7), publicKey: zero } });
    const v = verified(await verifyClientHello(b, PSK, hello)); // MAC is valid: the client holds the psk
    expectZksError(await rejection(respondToHello(b, PSK, v)), 'ZKS_ERR_HANDSHAKE');
  });

  it.each([
    ['node', nodeCrypto],
    ['webcrypto', webCrypto],
  ] as const)('%s: client refuses a REPLY whose ephemeral is a low-order point', async (_n, b) => {
    const { hello, state } = await createClientHello(b, PSK);
    const { reply } = await respondToHello(b, PSK, verified(await verifyClientHello(b, PSK, hello)));
    reply.set(h('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'), 2);
    expectZksError(await finishClientHandshake(b, state, reply), 'ZKS_ERR_HANDSHAKE', /low-order/);
  });
});

describe('client state', () => {
  it('is single use: the ephemeral private key is wiped by the first complete attempt', async () => {
    const b = nodeCrypto;
    const { hello, state } = await createClientHello(b, PSK);
    const { reply } = await respondToHello(b, PSK, verified(await verifyClientHello(b, PSK, hello)));
    keys(await finishClientHandshake(b, state, reply));
    expectZksError(await finishClientHandshake(b, state, reply), 'ZKS_ERR_HANDSHAKE', /already used/);
  });

  it('createClientHello refuses a psk that is not 32 bytes', async () => {
    expectZksError(await rejection(createClientHello(nodeCrypto, new Uint8Array(31))), 'ZKS_ERR_HANDSHAKE');
  });
});

describe('fixed vector (test/vectors/handshake.json)', () => {
  const i = vector.inputs;
  const e = vector.expected;
  it.each([
    ['node', nodeCrypto, webCrypto],
    ['webcrypto', webCrypto, nodeCrypto],
  ] as const)('%s client reproduces HELLO, REPLY, kC2S, kS2C, sessionId', async (_n, cb, rb) => {
    const clientPub = await cb.x25519(h(i.clientEphemeralPrivate), h('0900000000000000000000000000000000000000000000000000000000000000'));
    const responderPub = await rb.x25519(h(i.responderEphemeralPrivate), h('0900000000000000000000000000000000000000000000000000000000000000'));
    const { hello, state } = await createClientHello(cb, PSK, {
      nowMs: i.timestampMs,
      clientNonce: h(i.clientNonce),
      ephemeral: { privateKey: h(i.clientEphemeralPrivate), publicKey: clientPub },
    });
    expect(hex(hello)).toBe(e.hello);
    const v = verified(await verifyClientHello(rb, PSK, hello, { nowMs: i.timestampMs }));
    const { reply, keys: rk } = await respondToHello(rb, PSK, v, {
      relayEntropy: h(i.relayEntropy),
      ephemeral: { privateKey: h(i.responderEphemeralPrivate), publicKey: responderPub },
    });
    expect(hex(reply)).toBe(e.reply);
    const ck = keys(await finishClientHandshake(cb, state, reply));
    expect(hex(ck.sendKey)).toBe(e.kC2S);
    expect(hex(ck.recvKey)).toBe(e.kS2C);
    expect(hex(ck.sessionId)).toBe(e.sessionId);
    expect(hex(rk.recvKey)).toBe(e.kC2S);
    expect(hex(rk.sendKey)).toBe(e.kS2C);
  });

  it.each([
    ['node', nodeCrypto, webCrypto],
    ['webcrypto', webCrypto, nodeCrypto],
  ] as const)('pinned responder key (§2.4 es): %s client reproduces HELLO, REPLY and keys', async (_n, cb, rb) => {
    const p = vector.pinned;
    const base = h('0900000000000000000000000000000000000000000000000000000000000000');
    const clientPub = await cb.x25519(h(i.clientEphemeralPrivate), base);
    const responderPub = await rb.x25519(h(i.responderEphemeralPrivate), base);
    const staticKey = { privateKey: h(p.responderStaticPrivate), publicKey: await rb.x25519(h(p.responderStaticPrivate), base) };
    expect(hex(staticKey.publicKey)).toBe(p.responderStaticPublic);
    const { hello, state } = await createClientHello(cb, PSK, {
      nowMs: i.timestampMs,
      clientNonce: h(i.clientNonce),
      ephemeral: { privateKey: h(i.clientEphemeralPrivate), publicKey: clientPub },
      responderStatic: h(p.responderStaticPublic),
    });
    expect(hex(hello)).toBe(p.pinnedHello);
    const v = verified(await verifyClientHello(rb, PSK, hello, { nowMs: i.timestampMs }));
    expect(v.pinsResponderStatic).toBe(true);
    const { reply, keys: rk } = await respondToHello(rb, PSK, v, {
      relayEntropy: h(i.relayEntropy),
      ephemeral: { privateKey: h(i.responderEphemeralPrivate), publicKey: responderPub },
      staticKey,
    });
    expect(hex(reply)).toBe(p.pinnedReply);
    const ck = keys(await finishClientHandshake(cb, state, reply));
    expect([hex(ck.sendKey), hex(ck.recvKey), hex(ck.sessionId)]).toEqual([p.pinnedKC2S, p.pinnedKS2C, p.pinnedSessionId]);
    expect([hex(rk.recvKey), hex(rk.sendKey)]).toEqual([p.pinnedKC2S, p.pinnedKS2C]);
  });

  it.each([
    ['node', nodeCrypto, webCrypto],
    ['webcrypto', webCrypto, nodeCrypto],
  ] as const)('capabilities (§2.2 bit 6, §2.3 bit 7): %s client reproduces HELLO, REPLY and keys; both sides agree', async (_n, cb, rb) => {
    const c = vector.capabilities;
    const base = h('0900000000000000000000000000000000000000000000000000000000000000');
    const clientPub = await cb.x25519(h(i.clientEphemeralPrivate), base);
    const responderPub = await rb.x25519(h(i.responderEphemeralPrivate), base);
    const { hello, state } = await createClientHello(cb, PSK, {
      nowMs: i.timestampMs,
      clientNonce: h(i.clientNonce),
      ephemeral: { privateKey: h(i.clientEphemeralPrivate), publicKey: clientPub },
      capabilities: true,
    });
    expect(hex(hello)).toBe(c.capsHello);
    const v = verified(await verifyClientHello(rb, PSK, hello, { nowMs: i.timestampMs }));
    expect(v.offersCapabilities).toBe(true);
    expect(v.offeredSuites).toEqual(['aes-256-gcm', 'chacha20-poly1305']);
    const { reply, keys: rk } = await respondToHello(rb, PSK, v, {
      relayEntropy: h(i.relayEntropy),
      ephemeral: { privateKey: h(i.responderEphemeralPrivate), publicKey: responderPub },
      capabilities: true,
    });
    expect(hex(reply)).toBe(c.capsReply);
    expect(rk.capabilities).toBe(true);
    const ck = keys(await finishClientHandshake(cb, state, reply));
    expect(ck.capabilities).toBe(true);
    expect([hex(ck.sendKey), hex(ck.recvKey), hex(ck.sessionId)]).toEqual([c.capsKC2S, c.capsKS2C, c.capsSessionId]);
  });

  it('capabilities: an older responder ignores bit 6 (plain REPLY, no capabilities); a REPLY bit 7 the client did not offer is refused', async () => {
    const offered = await createClientHello(nodeCrypto, PSK, { capabilities: true });
    const v = verified(await verifyClientHello(nodeCrypto, PSK, offered.hello));
    const plain = await respondToHello(nodeCrypto, PSK, v); // a responder that does not speak CAPABILITIES
    expect(plain.reply[1]).toBe(1);
    expect(plain.keys.capabilities).toBe(false);
    expect(keys(await finishClientHandshake(nodeCrypto, offered.state, plain.reply)).capabilities).toBe(false);

    const notOffered = await createClientHello(nodeCrypto, PSK);
    const v2 = verified(await verifyClientHello(nodeCrypto, PSK, notOffered.hello));
    expect(v2.offersCapabilities).toBe(false);
    const r2 = await respondToHello(nodeCrypto, PSK, v2, { capabilities: true });
    expect(r2.reply[1]).toBe(1); // not announced to a client that did not offer
    const forged = r2.reply.slice();
    forged[1] |= 0x80;
    const err = await finishClientHandshake(nodeCrypto, notOffered.state, forged);
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_HANDSHAKE');
  });

  it.each([
    ['node', nodeCrypto, webCrypto],
    ['webcrypto', webCrypto, nodeCrypto],
  ] as const)('sequenced records (§2.2 bit 5, §2.3 bit 6): %s client reproduces HELLO, REPLY and keys', async (_n, cb, rb) => {
    const q = vector.sequenced;
    const base = h('0900000000000000000000000000000000000000000000000000000000000000');
    const clientPub = await cb.x25519(h(i.clientEphemeralPrivate), base);
    const responderPub = await rb.x25519(h(i.responderEphemeralPrivate), base);
    const { hello, state } = await createClientHello(cb, PSK, {
      nowMs: i.timestampMs, clientNonce: h(i.clientNonce), ephemeral: { privateKey: h(i.clientEphemeralPrivate), publicKey: clientPub },
      capabilities: true, sequencedRecords: true,
    });
    expect(hex(hello)).toBe(q.seqHello);
    const v = verified(await verifyClientHello(rb, PSK, hello, { nowMs: i.timestampMs }));
    expect([v.offersCapabilities, v.offersSequencedRecords]).toEqual([true, true]);
    expect(v.offeredSuites).toEqual(['aes-256-gcm', 'chacha20-poly1305']); // bit 5 is not a suite
    const { reply, keys: rk } = await respondToHello(rb, PSK, v, {
      relayEntropy: h(i.relayEntropy), ephemeral: { privateKey: h(i.responderEphemeralPrivate), publicKey: responderPub },
      capabilities: true, sequencedRecords: true,
    });
    expect(hex(reply)).toBe(q.seqReply);
    const ck = keys(await finishClientHandshake(cb, state, reply));
    expect([ck.sequencedRecords, rk.sequencedRecords, ck.suite]).toEqual([true, true, 'aes-256-gcm']);
    expect([hex(ck.sendKey), hex(ck.recvKey)]).toEqual([q.seqKC2S, q.seqKS2C]);
  });

  it('sequenced records: an older responder ignores bit 5; a REPLY bit 6 the client did not offer is refused; a flipped bit breaks confirm', async () => {
    const offered = await createClientHello(nodeCrypto, PSK, { sequencedRecords: true });
    const v = verified(await verifyClientHello(nodeCrypto, PSK, offered.hello));
    const plain = await respondToHello(nodeCrypto, PSK, v); // a responder that does not use them (the Worker)
    expect(plain.reply[1]).toBe(1);
    expect(keys(await finishClientHandshake(nodeCrypto, offered.state, plain.reply)).sequencedRecords).toBe(false);

    const notOffered = await createClientHello(nodeCrypto, PSK);
    const v2 = verified(await verifyClientHello(nodeCrypto, PSK, notOffered.hello));
    const r2 = await respondToHello(nodeCrypto, PSK, v2, { sequencedRecords: true });
    expect(r2.reply[1]).toBe(1); // never chosen for a client that did not offer
    const forged = r2.reply.slice();
    forged[1] |= 0x40;
    const err = await finishClientHandshake(nodeCrypto, notOffered.state, forged);
    expect((err as ZksError).code).toBe('ZKS_ERR_HANDSHAKE');
    expect((err as ZksError).message).toMatch(/sequenced records/);

    // A relay that clears the bit on the way: the transcript no longer matches, confirm fails.
    const both = await createClientHello(nodeCrypto, PSK, { sequencedRecords: true });
    const v3 = verified(await verifyClientHello(nodeCrypto, PSK, both.hello));
    const r3 = await respondToHello(nodeCrypto, PSK, v3, { sequencedRecords: true });
    expect(r3.reply[1]).toBe(1 | 0x40);
    const stripped = r3.reply.slice();
    stripped[1] &= ~0x40;
    expect(await finishClientHandshake(nodeCrypto, both.state, stripped)).toBeInstanceOf(ZksError);
  });

  it('does not wipe the caller-supplied ephemeral or entropy arrays', async () => {
    const priv = h(i.clientEphemeralPrivate);
    const { state, hello } = await createClientHello(nodeCrypto, PSK, {
      nowMs: i.timestampMs,
      ephemeral: { privateKey: priv, publicKey: h(e.hello.slice(54, 118)) },
    });
    const { reply } = await respondToHello(nodeCrypto, PSK, verified(await verifyClientHello(nodeCrypto, PSK, hello, { nowMs: i.timestampMs })));
    keys(await finishClientHandshake(nodeCrypto, state, reply));
    expect(hex(priv)).toBe(i.clientEphemeralPrivate);
  });
});

describe('base64url (HELLO in Sec-WebSocket-Protocol)', () => {
  it('round-trips every length 0..40 and the vector HELLO', () => {
    for (let n = 0; n <= 40; n++) {
      const bytes = new Uint8Array(n).map((_, k) => (k * 37 + n) & 0xff);
      const text = encodeBase64Url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64url'));
      expect(hex(decodeBase64Url(text)!)).toBe(hex(bytes));
    }
    const hello = h(vector.expected.hello);
    expect(encodeBase64Url(hello).length).toBe(122);
  });

  it.each(['A', 'AAAAA', 'AA==', 'A+==', 'ab/c', 'ab c', 'é', 'AB', 'AAB'])('rejects %j', (text) => {
    // 'AB' and 'AAB' have non-zero spare bits: only the canonical encoding is accepted.
    expect(decodeBase64Url(text)).toBeNull();
  });
});
