// The direct TCP path's set-up bytes and framing (PROTOCOL.md §3.7): PATH_HELLO / PATH_WELCOME against the vectors
// generated with @noble (test/vectors/handshake.json "tcpPath"), TCP_ANSWER texts and the u32-length framing under
// arbitrary input and arbitrary read boundaries (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import vector from '../vectors/handshake.json';
import { nodeCrypto } from '../../src/crypto/node';
import {
  deriveTcpPathKey, formatTcpAnswer, helloValid, parseTcpAnswer, pathHello, pathWelcome, welcomeValid, MAX_TCP_CANDIDATES, PATH_HELLO_SIZE,
} from '../../src/direct/tcp-hello';
import { lengthPrefix, MessageReader, MIN_RECORD } from '../../src/direct/tcp-framing';
import { MAX_DIRECT_MESSAGE } from '../../src/direct/direct-limits';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const t = vector.tcpPath;

describe('PATH_HELLO / PATH_WELCOME: vectors', () => {
  it('derives K from the first record key client → exit and makes the vector hello and welcome', async () => {
    const key = await deriveTcpPathKey(nodeCrypto, hex(vector.sequenced.seqKC2S));
    expect(Buffer.from(key).toString('hex')).toBe(t.tcpPathKey);
    const hello = pathHello(key, hex(t.tcpExitNonce), hex(t.tcpClientNonce));
    expect(Buffer.from(hello).toString('hex')).toBe(t.pathHello);
    expect(hello.length).toBe(PATH_HELLO_SIZE);
    expect(helloValid(key, hex(t.tcpExitNonce), hello)).toBe(true);
    expect(Buffer.from(pathWelcome(key, hex(t.tcpExitNonce), hex(t.tcpClientNonce))).toString('hex')).toBe(t.pathWelcome);
    expect(welcomeValid(key, hex(t.tcpExitNonce), hex(t.tcpClientNonce), hex(t.pathWelcome))).toBe(true);
  });

  it('any changed byte of a hello or welcome, another nonce or another key: refused', () => {
    const key = hex(t.tcpPathKey);
    const ne = hex(t.tcpExitNonce);
    fc.assert(fc.property(fc.nat(PATH_HELLO_SIZE - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const hello = hex(t.pathHello);
      hello[i] ^= x;
      return !helloValid(key, ne, hello);
    }));
    expect(helloValid(key, hex(t.tcpClientNonce), hex(t.pathHello))).toBe(false); // another attempt's nonce
    expect(helloValid(new Uint8Array(32), ne, hex(t.pathHello))).toBe(false);
    expect(helloValid(key, ne, hex(t.pathHello).subarray(0, 40))).toBe(false);
    expect(welcomeValid(key, ne, new Uint8Array(16), hex(t.pathWelcome))).toBe(false);
    expect(welcomeValid(key, ne, hex(t.tcpClientNonce), hex(t.pathWelcome).subarray(1))).toBe(false);
  });
});

describe('TCP_ANSWER text', () => {
  const address = fc.oneof(fc.ipV4(), fc.ipV6());
  const candidate = fc.record({ address, port: fc.integer({ min: 1, max: 65535 }) });

  it('formats and parses back (at most MAX_TCP_CANDIDATES taken)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.array(candidate, { minLength: 1, maxLength: 12 }), (nonce, candidates) => {
      const parsed = parseTcpAnswer(formatTcpAnswer({ nonce, candidates }));
      expect(parsed).toEqual({ nonce, candidates: candidates.slice(0, MAX_TCP_CANDIDATES) });
    }));
  });

  it('never throws on arbitrary text; refuses what is not nonce + ADDRESS PORT lines', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => {
      const r = parseTcpAnswer(text);
      expect(typeof r === 'string' || r.candidates.length > 0).toBe(true);
    }));
    const nonce = 'ab'.repeat(16);
    for (const bad of ['', nonce, `${nonce.toUpperCase()}\n10.0.0.1 1`, `${nonce}\n10.0.0.1`, `${nonce}\n10.0.0.1 0`, `${nonce}\n10.0.0.1 65536`,
      `${nonce}\nhost.example 80`, `${nonce}\n10.0.0.1  80`, `${nonce}\n10.0.0.1 80\n`]) {
      expect(parseTcpAnswer(bad), JSON.stringify(bad)).toMatch(/^TCP_ANSWER: /);
    }
  });
});

describe('TCP path framing (u32 length || body)', () => {
  const body = fc.oneof(
    fc.uint8Array({ minLength: 9, maxLength: 9 }),
    fc.uint8Array({ minLength: MIN_RECORD, maxLength: 3000 }),
  );

  it('delivers the same bodies whatever the read boundaries', () => {
    fc.assert(fc.property(fc.array(body, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 50 }), (bodies, cuts) => {
      const stream = Buffer.concat(bodies.flatMap((b) => [lengthPrefix(b.length), b]));
      const reader = new MessageReader();
      const got: Buffer[] = [];
      for (let off = 0, i = 0; off < stream.length; i++) {
        const n = cuts[i % cuts.length]!;
        // Each read in a buffer of its own, as a socket hands them over.
        expect(reader.push(Uint8Array.from(stream.subarray(off, off + n)), (m) => got.push(Buffer.from(m)))).toBeNull();
        off += n;
      }
      expect(got).toEqual(bodies.map((b) => Buffer.from(b)));
    }));
  });

  it('a length that is neither a heartbeat nor a record fails the stream, with a reason, and delivers nothing after', () => {
    fc.assert(fc.property(fc.oneof(fc.integer({ min: 0, max: MIN_RECORD - 1 }).filter((n) => n !== 9), fc.integer({ min: MAX_DIRECT_MESSAGE + 1, max: 2 ** 32 - 1 })), (n) => {
      const reader = new MessageReader();
      let delivered = 0;
      const good = Buffer.concat([lengthPrefix(9), new Uint8Array(9)]);
      const error = reader.push(Buffer.concat([good, lengthPrefix(n), good]), () => delivered++);
      expect(error).toMatch(new RegExp(`^a ${n}-byte message`));
      expect(delivered).toBe(1);
      expect(reader.push(good, () => delivered++)).not.toBeNull();
      expect(delivered).toBe(1);
    }));
  });
});
