// Property tests (fast-check): random bytes into every parser of peer input → only ZksError, never another throw;
// verifyClientHello and finishClientHandshake return error values rather than rejecting.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HELLO_SIZE,
  REPLY_SIZE,
  createClientHello,
  decodeBase64Url,
  encodeBase64Url,
  finishClientHandshake,
  verifyClientHello,
} from '../../src/crypto/handshake';
import { RecordOpener } from '../../src/crypto/record';
import { ZksError } from '../../src/errors/zks-error';
import { BACKENDS, h } from './helpers';

const PSK = h('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
// Lengths near the real sizes matter most; also byte 0 = 1 so the version check passes and deeper code runs.
const helloLike = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.uint8Array({ minLength: HELLO_SIZE, maxLength: HELLO_SIZE }).map((a) => ((a[0] = 1), a)),
);
const replyLike = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.uint8Array({ minLength: REPLY_SIZE, maxLength: REPLY_SIZE }).map((a) => ((a[0] = 1), (a[1] = 1 + (a[1] & 1)), a)),
);

describe.each(BACKENDS)('%s backend', (_name, b) => {
  it('verifyClientHello returns a ZksError value for random input', async () => {
    await fc.assert(
      fc.asyncProperty(helloLike, async (bytes) => {
        const r = await verifyClientHello(b, PSK, bytes);
        expect(r).toBeInstanceOf(ZksError);
      }),
      { numRuns: 300 },
    );
  });

  it('finishClientHandshake returns a ZksError value for random replies', async () => {
    await fc.assert(
      fc.asyncProperty(replyLike, async (bytes) => {
        const { state } = await createClientHello(b, PSK);
        const r = await finishClientHandshake(b, state, bytes);
        expect(r).toBeInstanceOf(ZksError);
      }),
      { numRuns: 200 },
    );
  });

  it('RecordOpener.open rejects random records with ZKS_ERR_DECRYPT only', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 100 }), { minLength: 1, maxLength: 4 }), async (records) => {
        const opener = await RecordOpener.create(b, 'aes-256-gcm', PSK);
        for (const rec of records) {
          const err = await opener.open(rec).then(
            () => null,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(ZksError);
          expect((err as ZksError).code).toBe('ZKS_ERR_DECRYPT');
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('base64url', () => {
  it('decodeBase64Url never throws and accepts exactly the canonical encodings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const out = decodeBase64Url(text);
        if (out !== null) expect(encodeBase64Url(out)).toBe(text);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{0,64}$/), (text) => {
        const out = decodeBase64Url(text);
        if (out !== null) expect(encodeBase64Url(out)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(Array.from(decodeBase64Url(encodeBase64Url(bytes))!)).toEqual(Array.from(bytes));
      }),
    );
  });
});
