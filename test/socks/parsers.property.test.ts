// Property tests (fast-check): random bytes and mutated valid messages, cut into random chunks, never make either
// decoder throw; every error is our own type with a reply the server can send; chunking never changes the outcome.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Socks5Parser } from '../../src/socks/socks5-parser';
import { HttpConnectParser } from '../../src/socks/http-connect-parser';
import { HttpProxyError, Socks5Error } from '../../src/socks/errors';
import { ascii, concat, hex, runHttp, runSocks, splitAt } from './helpers';

const VALID_SOCKS = [
  concat(hex('05 01 00'), hex('05 01 00 01 7f000001 0050')),
  concat(hex('05 02 00 02'), hex('01 01 75 01 70'), hex('05 01 00 03 0b 6578616d706c652e636f6d 01bb')),
  concat(hex('05 01 00'), hex('05 01 00 04 00000000000000000000000000000001 0016'), hex('deadbeef')),
];
const VALID_HTTP = [
  ascii('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'),
  ascii('CONNECT [::1]:8080 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\nhead'),
  ascii('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n'),
];

/** Random bytes, or a valid message with a few bytes overwritten / removed / appended. */
function messages(valid: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const mutated = fc
    .tuple(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 8 }),
    )
    .map(([base, edits, cut, extra]) => {
      const b = base.slice();
      for (const [pos, val] of edits) b[pos % b.length] = val;
      return concat(b.subarray(0, b.length - (cut % 4)), extra);
    });
  return fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated);
}

/** A message and ascending cut points inside it. */
const withCuts = (valid: Uint8Array[]) =>
  messages(valid).chain((m) =>
    fc.uniqueArray(fc.integer({ min: 0, max: m.length }), { maxLength: 6 }).map((cuts) => ({
      m, chunks: splitAt(m, cuts.sort((a, b) => a - b)),
    })));

describe('decoders never throw (fast-check)', () => {
  it('Socks5Parser: only our events, only Socks5Error, chunking-invariant', () => {
    fc.assert(fc.property(withCuts(VALID_SOCKS), fc.boolean(), ({ m, chunks }, authRequired) => {
      const p = new Socks5Parser({ authRequired });
      for (const c of chunks) {
        for (let ev = p.feed(c), n = 0; ev.type !== 'need-more' && n < 4; ev = p.next(), n++) {
          expect(['greeting', 'auth', 'request', 'error']).toContain(ev.type);
          if (ev.type === 'error') {
            expect(ev.error).toBeInstanceOf(Socks5Error);
            expect(ev.error.code).toBe('ZKS_ERR_SOCKS');
            expect(ev.error.replyCode).toBeGreaterThanOrEqual(0x01);
            expect(ev.error.replyCode).toBeLessThanOrEqual(0xff);
          }
          if (ev.type === 'request') expect(ev.target.port).toBeLessThan(65536);
        }
      }
      expect(runSocks(chunks, authRequired)).toEqual(runSocks([m], authRequired));
    }), { numRuns: 2000 });
  });

  it('HttpConnectParser: only our events, only HttpProxyError, chunking-invariant', () => {
    fc.assert(fc.property(withCuts(VALID_HTTP), ({ m, chunks }) => {
      const p = new HttpConnectParser();
      for (const c of chunks) {
        const ev = p.feed(c);
        expect(['need-more', 'request', 'error']).toContain(ev.type);
        if (ev.type === 'error') {
          expect(ev.error).toBeInstanceOf(HttpProxyError);
          expect(ev.error.code).toBe('ZKS_ERR_HTTP_PROXY');
          expect([400, 405, 431, 505]).toContain(ev.error.status);
        }
      }
      expect(runHttp(chunks)).toEqual(runHttp([m]));
    }), { numRuns: 2000 });
  });

  it('HttpConnectParser: random printable heads never throw', () => {
    const line = fc.string({ unit: fc.constantFrom(...'CONNECT :[]0123456789abc.HTTP/1\r\n\t'.split('')), maxLength: 80 });
    fc.assert(fc.property(line, (text) => {
      const ev = new HttpConnectParser().feed(ascii(`${text}\r\n\r\n`));
      expect(ev.type === 'request' || (ev.type === 'error' && ev.error instanceof HttpProxyError)).toBe(true);
    }), { numRuns: 2000 });
  });
});
