// Incremental decoder for an HTTP/1.x proxy request head (RFC 9112 §2-3, CONNECT per RFC 9110 §9.3.6).
// Pure: feed(chunk) scans only the new bytes for the empty line that ends the head, so input split at any byte
// boundary gives the same result; the head is copied once (only if it spans chunks). Errors are HttpProxyError
// values with the status to answer. Invariant: at most MAX_HEAD_BYTES are buffered before the decoder gives up.

import { formatIPv4, formatIPv6, isValidDomain, parseIPv4, parseIPv6, type Target } from '../protocol/address';
import { ByteQueue } from './byte-queue';
import { HttpProxyError } from './errors';

/** Request line + headers + the final empty line. */
export const MAX_HEAD_BYTES = 8 * 1024;

export type HttpConnectEvent =
  | { type: 'need-more' }
  /** A complete CONNECT head. `proxyAuthorization` is the raw header value, if present. */
  | { type: 'request'; target: Target; version: string; proxyAuthorization?: string }
  | { type: 'error'; error: HttpProxyError };

const LF = 0x0a;
const CR = 0x0d;
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/; // RFC 9110 §5.6.2
const NEED_MORE: HttpConnectEvent = { type: 'need-more' };

export class HttpConnectParser {
  private readonly queue = new ByteQueue();
  private scanned = 0; // bytes already searched for the end of the head
  private lineEmpty = false; // true right after a LF (CRs ignored), so the next LF ends the head
  private final: HttpConnectEvent | null = null;

  feed(chunk: Uint8Array): HttpConnectEvent {
    this.queue.push(chunk);
    if (this.final) return this.final;
    // Only `chunk` is new: everything queued before it was scanned by earlier calls.
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      this.scanned++;
      if (b === LF) {
        if (this.lineEmpty) return this.finish(this.scanned);
        this.lineEmpty = true;
      } else if (b !== CR) {
        this.lineEmpty = false;
      }
      if (this.scanned >= MAX_HEAD_BYTES) {
        return this.fail(431, `request head larger than ${MAX_HEAD_BYTES} bytes`);
      }
    }
    return NEED_MORE;
  }

  /** Bytes received after the head (the client's early data); valid once 'request' was returned. */
  takeRest(): Uint8Array {
    return this.queue.takeAll();
  }

  private fail(status: number, message: string): HttpConnectEvent {
    this.final = { type: 'error', error: new HttpProxyError(status, message) };
    return this.final;
  }

  private finish(headLength: number): HttpConnectEvent {
    const head = this.queue.consume(headLength);
    let text = '';
    for (const b of head) text += String.fromCharCode(b); // latin1: header values may carry obs-text
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
      if (lines[i].includes('\r')) return this.fail(400, 'bare CR in request head');
    }
    // RFC 9112 §3: method SP request-target SP HTTP-version
    const requestLine = lines[0].split(' ');
    if (requestLine.length !== 3) return this.fail(400, 'malformed request line');
    const [method, authority, version] = requestLine;
    if (!TOKEN_RE.test(method)) return this.fail(400, 'malformed request method');
    if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return this.fail(505, `unsupported protocol ${version}`);

    let proxyAuthorization: string | undefined;
    for (const line of lines.slice(1)) {
      if (line === '') break;
      if (line[0] === ' ' || line[0] === '\t') return this.fail(400, 'obsolete header line folding');
      const colon = line.indexOf(':');
      if (colon <= 0 || !TOKEN_RE.test(line.slice(0, colon))) return this.fail(400, 'malformed header line');
      if (line.slice(0, colon).toLowerCase() === 'proxy-authorization') {
        proxyAuthorization = line.slice(colon + 1).trim();
      }
    }
    if (method !== 'CONNECT') {
      // Deliberately not an open forward proxy: plain-HTTP requests would bypass the tunnel's design.
      return this.fail(405, 'only CONNECT is supported; use the SOCKS5 port or an HTTPS_PROXY');
    }
    const target = parseAuthority(authority);
    if (typeof target === 'string') return this.fail(400, target);
    this.final = { type: 'request', target, version, proxyAuthorization };
    return this.final;
  }
}

/** CONNECT request-target (RFC 9110 §9.3.6 authority-form): host:port, IPv6 in brackets. Error text on failure. */
export function parseAuthority(authority: string): Target | string {
  const colon = authority.lastIndexOf(':');
  if (colon <= 0) return `CONNECT target "${authority}" must be host:port`;
  const hostPart = authority.slice(0, colon);
  const portText = authority.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return `invalid port in CONNECT target "${authority}"`;
  }
  const port = Number(portText);
  if (hostPart.startsWith('[') && hostPart.endsWith(']')) {
    const v6 = parseIPv6(hostPart.slice(1, -1));
    return v6 ? { host: formatIPv6(v6), port } : `invalid IPv6 address in CONNECT target "${authority}"`;
  }
  if (hostPart.includes(':') || hostPart.includes('[')) return `IPv6 addresses must be in brackets: "${authority}"`;
  const v4 = parseIPv4(hostPart);
  if (v4) return { host: formatIPv4(v4), port };
  const name = hostPart.toLowerCase();
  return isValidDomain(name) ? { host: name, port } : `invalid host name in CONNECT target "${authority}"`;
}

/**
 * Decodes `Proxy-Authorization: Basic <base64(user:pass)>` (RFC 7617). Returns raw UTF-8 bytes so the caller can
 * compare them in constant time; null when the header is absent, not Basic, or not valid base64.
 */
export function parseBasicCredentials(value: string | undefined): { username: Uint8Array; password: Uint8Array } | null {
  if (value === undefined) return null;
  const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(value);
  if (!m) return null;
  let binary: string;
  try {
    binary = atob(m[1]);
  } catch {
    return null;
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const colon = bytes.indexOf(0x3a);
  if (colon < 0) return null;
  return { username: bytes.slice(0, colon), password: bytes.slice(colon + 1) };
}
