// The server's answer to a WebSocket upgrade request (RFC 6455 §4.1, §4.2.2), checked as a client must: 101, the
// Upgrade and Connection tokens, the accept hash of our key, and a subprotocol we offered. Pure: it gets the answer's
// head (status line and header lines, without the blank line) as text.

import { createHash } from 'node:crypto';

/** Longest answer head we read before giving up on the server. */
export const UPGRADE_HEAD_LIMIT = 16 * 1024;

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

export interface Upgraded {
  /** The subprotocol the server chose ('' when we offered none). */
  protocol: string;
}

/**
 * Upgraded; a number: the HTTP status of an answer that is not an upgrade (the caller knows what 401 means); an
 * Error: a 101 that breaks the protocol, or no HTTP at all.
 */
export function parseUpgradeResponse(head: string, key: string, offered: readonly string[]): Upgraded | number | Error {
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!status) return new Error(`the server did not answer the upgrade with HTTP: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const code = Number(status[1]);
  if (code !== 101) return code;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return new Error(`the server's upgrade answer has a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const tokens = (name: string) => (headers.get(name) ?? '').toLowerCase().split(',').map((t) => t.trim());
  if (!tokens('upgrade').includes('websocket')) return new Error('the server answered 101 without Upgrade: websocket');
  if (!tokens('connection').includes('upgrade')) return new Error('the server answered 101 without Connection: Upgrade');
  if (headers.get('sec-websocket-accept') !== acceptFor(key)) return new Error('the server answered with a wrong Sec-WebSocket-Accept');
  if (headers.has('sec-websocket-extensions')) return new Error('the server enabled an extension we did not offer');
  const protocol = headers.get('sec-websocket-protocol') ?? '';
  if (offered.length > 0 && !offered.includes(protocol)) {
    return new Error(protocol ? `the server chose the subprotocol ${JSON.stringify(protocol.slice(0, 40))}, which we did not offer` : 'the server chose no subprotocol');
  }
  if (offered.length === 0 && protocol) return new Error('the server chose a subprotocol we did not offer');
  return { protocol };
}
