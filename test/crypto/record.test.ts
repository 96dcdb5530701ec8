// Record layer: round trips across backends, implicit counter nonces (replay/reorder/drop → ZKS_ERR_DECRYPT),
// rekey epochs under pipelined seals/opens, dead opener, and the record vectors in handshake.json.
import { describe, expect, it } from 'vitest';
import vector from '../vectors/handshake.json';
import { RecordOpener, RecordSealer, createChannel } from '../../src/crypto/record';
import { hkdfExpand } from '../../src/crypto/hkdf';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import type { SessionKeys } from '../../src/crypto/handshake';
import type { CipherSuite, CryptoBackend } from '../../src/crypto/types';
import { expectZksError, h, hex, rejection } from './helpers';

const SUITES: CipherSuite[] = ['aes-256-gcm', 'chacha20-poly1305'];
const PAIRS: Array<[string, CryptoBackend, CryptoBackend]> = [
  ['node → webcrypto', nodeCrypto, webCrypto],
  ['webcrypto → node', webCrypto, nodeCrypto],
  ['node → node', nodeCrypto, nodeCrypto],
  ['webcrypto → webcrypto', webCrypto, webCrypto],
];
const KEY = h(vector.expected.kC2S);
const msg = (i: number, len = 40) => new Uint8Array(len).map((_, k) => (i * 31 + k) & 0xff);

describe.each(PAIRS)('%s', (_name, sb, ob) => {
  describe.each(SUITES)('%s', (suite) => {
    it('round-trips records of many sizes, including empty and 64 KiB', async () => {
      const sealer = await RecordSealer.create(sb, suite, KEY);
      const opener = await RecordOpener.create(ob, suite, KEY);
      for (const len of [0, 1, 15, 16, 17, 1000, 65536]) {
        const pt = msg(len, len);
        const ct = await sealer.seal(pt);
        expect(ct.length).toBe(len + 16);
        expect(hex(await opener.open(ct))).toBe(hex(pt));
      }
    });

    it('rekeys every 3 records across several epochs with pipelined seals and opens', async () => {
      const sealer = await RecordSealer.create(sb, suite, KEY, { rekeyRecords: 3 });
      const opener = await RecordOpener.create(ob, suite, KEY, { rekeyRecords: 3 });
      const sealed = await Promise.all(Array.from({ length: 20 }, (_, i) => sealer.seal(msg(i))));
      const opened = await Promise.all(sealed.map((ct) => opener.open(ct)));
      opened.forEach((pt, i) => expect(hex(pt)).toBe(hex(msg(i))));
      // The same plaintext under a different epoch must not reuse the epoch-0 keystream.
      const plain = await RecordSealer.create(sb, suite, KEY, { rekeyRecords: 1 << 30 });
      const noRekey = [];
      for (let i = 0; i < 4; i++) noRekey.push(await plain.seal(msg(i)));
      expect(hex(noRekey[2])).toBe(hex(sealed[2]));
      expect(hex(noRekey[3])).not.toBe(hex(sealed[3]));
    });

    it('an opener without matching rekeyRecords fails at the first epoch boundary', async () => {
      const sealer = await RecordSealer.create(sb, suite, KEY, { rekeyRecords: 2 });
      const opener = await RecordOpener.create(ob, suite, KEY, { rekeyRecords: 4 });
      await opener.open(await sealer.seal(msg(0)));
      await opener.open(await sealer.seal(msg(1)));
      expectZksError(await rejection(opener.open(await sealer.seal(msg(2)))), 'ZKS_ERR_DECRYPT');
    });
  });
});

describe.each([
  ['node', nodeCrypto],
  ['webcrypto', webCrypto],
] as const)('%s: ordering and failure', (_name, b) => {
  async function pair(rekeyRecords?: number) {
    const opts = rekeyRecords ? { rekeyRecords } : undefined;
    return { sealer: await RecordSealer.create(b, 'aes-256-gcm', KEY, opts), opener: await RecordOpener.create(b, 'aes-256-gcm', KEY, opts) };
  }

  it('replay → ZKS_ERR_DECRYPT', async () => {
    const { sealer, opener } = await pair();
    const r0 = await sealer.seal(msg(0));
    await opener.open(r0);
    expectZksError(await rejection(opener.open(r0)), 'ZKS_ERR_DECRYPT');
  });

  it('reorder → ZKS_ERR_DECRYPT', async () => {
    const { sealer, opener } = await pair();
    const r0 = await sealer.seal(msg(0));
    const r1 = await sealer.seal(msg(1));
    expectZksError(await rejection(opener.open(r1)), 'ZKS_ERR_DECRYPT');
    void r0;
  });

  it('drop → ZKS_ERR_DECRYPT', async () => {
    const { sealer, opener } = await pair();
    await sealer.seal(msg(0)); // lost in transit
    expectZksError(await rejection(opener.open(await sealer.seal(msg(1)))), 'ZKS_ERR_DECRYPT');
  });

  it('after one failure the opener is dead, even for records that would have been valid', async () => {
    const { sealer, opener } = await pair();
    const r0 = await sealer.seal(msg(0));
    const bad = r0.slice();
    bad[0] ^= 1;
    expectZksError(await rejection(opener.open(bad)), 'ZKS_ERR_DECRYPT');
    expectZksError(await rejection(opener.open(r0)), 'ZKS_ERR_DECRYPT');
    expectZksError(await rejection(opener.open(await sealer.seal(msg(1)))), 'ZKS_ERR_DECRYPT');
  });

  it('pipelined opens release nothing after the first bad record', async () => {
    const { sealer, opener } = await pair(3);
    const recs = await Promise.all(Array.from({ length: 8 }, (_, i) => sealer.seal(msg(i))));
    recs[4] = recs[4].slice();
    recs[4][recs[4].length - 1] ^= 0x80; // tag of record 4
    const results = await Promise.allSettled(recs.map((r) => opener.open(r)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected', 'rejected']);
  });

  it('ciphertexts shorter than the tag are rejected (and kill the opener)', async () => {
    const { sealer, opener } = await pair();
    expectZksError(await rejection(opener.open(new Uint8Array(15))), 'ZKS_ERR_DECRYPT', /shorter/);
    expectZksError(await rejection(opener.open(await sealer.seal(msg(0)))), 'ZKS_ERR_DECRYPT');
  });

  it('nonces follow call order: concurrent seals equal sequential seals', async () => {
    const a = await pair(5);
    const b2 = await pair(5);
    const concurrent = await Promise.all(Array.from({ length: 12 }, (_, i) => a.sealer.seal(msg(i, 1000))));
    for (let i = 0; i < 12; i++) expect(hex(await b2.sealer.seal(msg(i, 1000)))).toBe(hex(concurrent[i]));
  });

  it('the epoch-1 key is HKDF-Expand(key, "zks1 rekey", 32) (vector kC2SAfterFirstRekey)', async () => {
    const next = await hkdfExpand(b, KEY, new TextEncoder().encode('zks1 rekey'), 32);
    expect(hex(next)).toBe(vector.expected.kC2SAfterFirstRekey);
    const { sealer } = await pair(1);
    await sealer.seal(msg(0));
    const epoch1 = await sealer.seal(msg(1));
    const direct = await (await b.createAead('aes-256-gcm', next)).seal(h('000000000000000000000001'), msg(1));
    expect(hex(epoch1)).toBe(hex(direct));
  });

  it('matches the record vectors (counter 0 and 1, both suites)', async () => {
    const e = vector.expected;
    const pt = h(e.recordPlaintext);
    const aes = await RecordSealer.create(b, 'aes-256-gcm', KEY);
    expect(hex(await aes.seal(pt))).toBe(e.aesGcmRecord0);
    expect(hex(await aes.seal(pt))).toBe(e.aesGcmRecord1);
    const cc = await RecordSealer.create(b, 'chacha20-poly1305', KEY);
    expect(hex(await cc.seal(pt))).toBe(e.chachaRecord0);
  });

  it('does not modify the key array passed in', async () => {
    const key = KEY.slice();
    const s = await RecordSealer.create(b, 'aes-256-gcm', key, { rekeyRecords: 1 });
    for (let i = 0; i < 4; i++) await s.seal(msg(i));
    expect(hex(key)).toBe(hex(KEY));
  });

  it('a non-positive rekeyRecords is ZKS_ERR_CONFIG (a bad option, not a handshake failure)', async () => {
    expectZksError(await rejection(RecordSealer.create(b, 'aes-256-gcm', KEY, { rekeyRecords: 0 })), 'ZKS_ERR_CONFIG', /rekeyRecords/);
    expectZksError(await rejection(RecordOpener.create(b, 'aes-256-gcm', KEY, { rekeyRecords: 1.5 })), 'ZKS_ERR_CONFIG', /rekeyRecords/);
  });

  it('the sealer refuses with ZKS_ERR_NONCE_EXHAUSTED after counter 2^53 - 1, both paths', async () => {
    const last = Number.MAX_SAFE_INTEGER - 1;
    const sealer = await RecordSealer.create(b, 'aes-256-gcm', KEY, { firstCounter: last });
    const opener = await RecordOpener.create(b, 'aes-256-gcm', KEY, { firstCounter: last });
    expect(hex(await opener.open(await sealer.seal(msg(0))))).toBe(hex(msg(0))); // the last counter still works
    expectZksError(await rejection(sealer.seal(msg(1))), 'ZKS_ERR_NONCE_EXHAUSTED');
    expect(() => sealer.sealNow(msg(1))).toThrow(expect.objectContaining({ code: 'ZKS_ERR_NONCE_EXHAUSTED' }));
  });

  it('sealNow/openNow (synchronous backends) interleave with seal/open on one counter', async () => {
    const { sealer, opener } = await pair(3);
    const out: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) {
      const now = i % 2 ? sealer.sealNow(msg(i), 4) : null; // headroom 4: the room's session id goes there
      out.push(now ? now.subarray(4) : await sealer.seal(msg(i)));
    }
    if (b === nodeCrypto) expect(sealer.sealNow(msg(10))).not.toBeNull();
    else expect(sealer.sealNow(msg(10))).toBeNull(); // WebCrypto is asynchronous: the caller takes seal()
    for (let i = 0; i < 10; i++) {
      const now = i % 3 ? opener.openNow(out[i]) : null;
      expect(hex(now ?? (await opener.open(out[i])))).toBe(hex(msg(i)));
    }
  });

  it('openNow kills the opener on a bad record, like open', async () => {
    const { sealer, opener } = await pair();
    const bad = (await sealer.seal(msg(0))).slice();
    bad[0] ^= 1;
    if (b !== nodeCrypto) return void expect(opener.openNow(bad)).toBeNull();
    expect(() => opener.openNow(bad)).toThrow(expect.objectContaining({ code: 'ZKS_ERR_DECRYPT' }));
    expectZksError(await rejection(opener.open(await sealer.seal(msg(1)))), 'ZKS_ERR_DECRYPT');
  });

  it('a cipher that refuses to seal reports ZKS_ERR_SEAL, not ZKS_ERR_DECRYPT', async () => {
    for (const suite of SUITES) {
      const aead = await b.createAead(suite, KEY);
      expectZksError(await rejection(aead.seal(new Uint8Array(0), msg(0))), 'ZKS_ERR_SEAL', /seal failed/);
    }
  });
});

describe('createChannel', () => {
  it('wires sendKey to the sealer and recvKey to the opener', async () => {
    const c2s = h(vector.expected.kC2S);
    const s2c = h(vector.expected.kS2C);
    const sid = h(vector.expected.sessionId);
    const client: SessionKeys = { suite: 'chacha20-poly1305', sendKey: c2s, recvKey: s2c, sessionId: sid };
    const relay: SessionKeys = { suite: 'chacha20-poly1305', sendKey: s2c, recvKey: c2s, sessionId: sid };
    const a = await createChannel(nodeCrypto, client);
    const z = await createChannel(webCrypto, relay);
    expect(hex(await z.opener.open(await a.sealer.seal(msg(1))))).toBe(hex(msg(1)));
    expect(hex(await a.opener.open(await z.sealer.seal(msg(2))))).toBe(hex(msg(2)));
  });
});
