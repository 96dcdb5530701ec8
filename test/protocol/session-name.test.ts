// The name of a direct-mode session the Worker keeps (`/session/<name>`, PROTOCOL.md §11.8): exactly the unpadded
// base64url of 16 bytes, in its one canonical spelling — anything else is refused before any object is touched.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64Url, encodeBase64Url } from '../../src/crypto/handshake';
import { isSessionName, SESSION_NAME_BYTES } from '../../src/protocol/resume-wire';

describe('isSessionName', () => {
  it('accepts the base64url of any 16 bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: SESSION_NAME_BYTES, maxLength: SESSION_NAME_BYTES }), (b) => isSessionName(encodeBase64Url(b))));
  });

  it('whatever it accepts decodes to 16 bytes that encode back to the same text (one spelling per name)', () => {
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.%';
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom(...chars), minLength: 20, maxLength: 24 }),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(fc.property(text, (t) => {
      if (!isSessionName(t)) return true;
      const b = decodeBase64Url(t);
      return b !== null && b.length === SESSION_NAME_BYTES && encodeBase64Url(b) === t;
    }), { numRuns: 20_000 });
  });

  it('refuses other lengths, padding, the standard alphabet and non-canonical last characters', () => {
    const name = encodeBase64Url(new Uint8Array(16).fill(7));
    for (const bad of ['', name.slice(1), `${name}A`, `${name}==`, `${name.slice(0, 21)}+`, `${name.slice(0, 20)}/A`, `${name.slice(0, 21)}B`, `${name.slice(0, 21)}R`]) {
      expect(isSessionName(bad), bad).toBe(false);
    }
  });
});
