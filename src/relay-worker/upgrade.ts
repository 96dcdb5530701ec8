// What every upgrade the Worker answers shares: the one refusal, and reading a token (the key-proving HELLO, a room
// token) from the offered subprotocols. Used by the Worker's routes and by the session objects behind them.

import { decodeBase64Url } from '../crypto/handshake';

/** The subprotocol a direct-mode upgrade is answered with; its HELLO rides in `zks1.<base64url>`. */
export const SUBPROTOCOL = 'zks1';
export const HELLO_PREFIX = 'zks1.';

/** The one answer to every request that has not proved the key: same status, body and headers for every probe. */
export const refuse = () => new Response('Unauthorized', { status: 401 });

/** The base64url token after `prefix` among the offered subprotocols, decoded; null if absent or not canonical. */
export function tokenFromHeader(header: string | null, prefix: string): Uint8Array | null {
  if (!header) return null;
  for (const part of header.split(',')) {
    const p = part.trim();
    if (p.startsWith(prefix)) return decodeBase64Url(p.slice(prefix.length));
  }
  return null;
}
