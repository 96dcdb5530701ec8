// HTTP tunnels (docs/PROTOCOL.md §12): one public request is one mux stream from the tunnel (the Worker's Durable
// Object) to the agent (`zks expose http://…`). The stream's bytes are `u32 length || head (UTF-8 JSON)` and then
// the body, FIN at its end — the request going out, the response coming back. The Worker never parses HTTP bytes
// and the agent never trusts the head: both sides check every head here (sizes, tokens, no CR/LF/NUL anywhere).
// Also here: the agent's claim of its id (SIGNAL TUNNEL_CLAIM) and the hop-by-hop header rule (RFC 9110 §7.6.1).

import { ProtocolError } from './errors';
import { getU32, putU32 } from './wire-bytes';

/** Public requests: `/tunnel/<id>` and everything under it. */
export const TUNNEL_PUBLIC_PREFIX = '/tunnel/';
/** Agents' WebSocket upgrades (the Worker key's HELLO in Sec-WebSocket-Protocol, as in direct mode). */
export const TUNNEL_AGENT_PREFIX = '/tunnel-agent/';
/** A tunnel id is a DNS label, so `<id>.example.com` can route to it one day. */
export const TUNNEL_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** The mux target of every request stream (the agent serves one origin, whatever a stream names). */
export const TUNNEL_STREAM_TARGET = { host: 'http.tunnel.invalid', port: 80 } as const;
/** Header fields of a WebSocket handshake that belong to each hop's own WebSocket, never passed on. */
export const WEBSOCKET_HOP_FIELDS: ReadonlySet<string> = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-accept']);

/** Largest head in bytes (JSON): request lines and header blocks beyond this get 431 (request) or 502 (response). */
export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_HEADERS = 256;
export const MAX_TARGET_BYTES = 16 * 1024;
const LENGTH_SIZE = 4;

export type HeaderList = [string, string][];

export interface RequestHead {
  method: string;
  /** origin-form: a path starting with "/", and its query. */
  target: string;
  headers: HeaderList;
  /** The client asked for a WebSocket (the Upgrade field itself is hop-by-hop and not in `headers`), §12.5. */
  upgrade?: 'websocket';
  /** A body follows without a Content-Length: the agent frames it chunked to the local server (§12.3). */
  chunked?: true;
}

export interface ResponseHead {
  status: number;
  statusText: string;
  headers: HeaderList;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// A field value: visible ASCII, space, tab and obs-text; never CR, LF or NUL (RFC 9110 §5.5).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;
// origin-form, as sent on the wire: no space, no control character (RFC 9112 §3.2.1).
const ORIGIN_FORM = /^\/[\x21-\x7e\x80-\uffff]*$/;

const bad = (msg: string) => new ProtocolError('ZKS_ERR_HTTP_HEAD', msg, false);
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `u32 length || JSON`; throws ProtocolError when the head is invalid or too large (a caller bug or an abuser). */
export function encodeHead(head: RequestHead | ResponseHead): Uint8Array {
  const checked = 'method' in head ? checkRequestHead(head) : checkResponseHead(head);
  if (checked instanceof ProtocolError) throw checked;
  const json = utf8.encode(JSON.stringify(head));
  if (json.length > MAX_HEAD_BYTES) throw bad(`head of ${json.length} bytes exceeds ${MAX_HEAD_BYTES}`);
  const out = new Uint8Array(LENGTH_SIZE + json.length);
  putU32(out, 0, json.length);
  out.set(json, LENGTH_SIZE);
  return out;
}

function checkHeaders(value: unknown): HeaderList | ProtocolError {
  if (!Array.isArray(value)) return bad('headers must be a list');
  if (value.length > MAX_HEADERS) return bad(`more than ${MAX_HEADERS} header fields`);
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2) return bad('a header field must be [name, value]');
    const [name, v] = pair as unknown[];
    if (typeof name !== 'string' || !TOKEN.test(name)) return bad(`header name ${JSON.stringify(name)?.slice(0, 64)} is not a token`);
    if (typeof v !== 'string' || !FIELD_VALUE.test(v)) return bad(`header ${name} has a value with CR, LF or NUL`);
  }
  return value as HeaderList;
}

export function checkRequestHead(value: unknown): RequestHead | ProtocolError {
  if (typeof value !== 'object' || value === null) return bad('the request head is not an object');
  const { method, target, headers, upgrade, chunked } = value as Record<string, unknown>;
  if (typeof method !== 'string' || method.length > 32 || !TOKEN.test(method)) return bad('the request method is not a token');
  if (upgrade !== undefined && upgrade !== 'websocket') return bad('the only upgrade carried is "websocket"');
  if (chunked !== undefined && chunked !== true) return bad('chunked is true or absent');
  if (chunked && upgrade) return bad('an upgrade carries no body');
  if (typeof target !== 'string' || target.length > MAX_TARGET_BYTES || !ORIGIN_FORM.test(target)) {
    return bad('the request target is not an origin-form path');
  }
  const list = checkHeaders(headers);
  if (list instanceof ProtocolError) return list;
  if (upgrade) return { method, target, headers: list, upgrade };
  return chunked ? { method, target, headers: list, chunked } : { method, target, headers: list };
}

export function checkResponseHead(value: unknown): ResponseHead | ProtocolError {
  if (typeof value !== 'object' || value === null) return bad('the response head is not an object');
  const { status, statusText, headers } = value as Record<string, unknown>;
  // 1xx never travel (the agent's HTTP client swallows them), except 101: a WebSocket upgrade went through (§12.5).
  if (typeof status !== 'number' || !Number.isInteger(status) || (status !== 101 && (status < 200 || status > 599))) {
    return bad('the response status is not 101 or 200-599');
  }
  if (typeof statusText !== 'string' || statusText.length > 256 || !FIELD_VALUE.test(statusText)) return bad('the status text is not a reason phrase');
  const list = checkHeaders(headers);
  if (list instanceof ProtocolError) return list;
  return { status, statusText, headers: list };
}

/**
 * Collects a head from a stream's first bytes, however they are split. push() returns null until the head is
 * complete, then the head and whatever body bytes came with it; a ProtocolError ends that stream only.
 */
export class HeadReader<T> {
  private parts: Uint8Array[] = [];
  private have = 0;
  private done = false;

  constructor(private readonly check: (value: unknown) => T | ProtocolError) {}

  push(chunk: Uint8Array): { head: T; rest: Uint8Array } | ProtocolError | null {
    if (this.done) throw new Error('HeadReader: the head was already read');
    this.parts.push(chunk);
    this.have += chunk.length;
    if (this.have < LENGTH_SIZE) return null;
    const buf = this.parts.length === 1 ? this.parts[0] : concat(this.parts, this.have);
    this.parts = [buf];
    const length = getU32(buf, 0);
    if (length > MAX_HEAD_BYTES) return this.fail(`head of ${length} bytes exceeds ${MAX_HEAD_BYTES}`);
    if (this.have < LENGTH_SIZE + length) return null;
    this.done = true;
    this.parts = [];
    let value: unknown;
    try {
      value = JSON.parse(utf8Strict.decode(buf.subarray(LENGTH_SIZE, LENGTH_SIZE + length)));
    } catch {
      return bad('the head is not UTF-8 JSON');
    }
    const head = this.check(value);
    if (head instanceof ProtocolError) return head;
    return { head, rest: buf.subarray(LENGTH_SIZE + length) };
  }

  private fail(msg: string): ProtocolError {
    this.done = true;
    this.parts = [];
    return bad(msg);
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

// RFC 9110 §7.6.1: meaningful for one connection only, never forwarded (and the fields Connection names).
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);

/** The fields a proxy passes on: hop-by-hop ones and those Connection names dropped, order and repeats kept. */
export function endToEndHeaders(headers: HeaderList): HeaderList {
  const named = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  return headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !named.has(lower);
  });
}

/** What an agent asks of its tunnel when it claims the id (SIGNAL TUNNEL_CLAIM, JSON). */
export interface TunnelClaim {
  /** HKDF(tunnel secret, "zks1 tunnel claim " || id), 32 bytes: the tunnel keeps the first one it sees. */
  verifier: Uint8Array;
  /** 'public', or SHA-256 of "user:password" for HTTP Basic auth checked by the tunnel. */
  access: 'public' | Uint8Array;
  /** Requests in flight at once; more get 429. */
  maxConcurrent: number;
  /** Requests per second (token bucket, burst of the same size); more get 429 with Retry-After. */
  ratePerSecond: number;
  /** Request bodies larger than this get 413; null: the platform's limit only. */
  maxBodyBytes: number | null;
  /** Keep `/tunnel/<id>` on the path the local server sees (default: stripped). */
  keepPrefix: boolean;
}

export const CLAIM_LIMITS = { maxConcurrent: [1, 10_000], ratePerSecond: [1, 100_000], maxBodyBytes: [0, 2 ** 50] } as const;

const b64urlToBytes = (s: unknown, size: number): Uint8Array | null => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]+$/.test(s)) return null;
  let bin: string;
  try {
    bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  } catch {
    return null; // a length no base64 has (4n + 1)
  }
  if (bin.length !== size) return null;
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};
const bytesToB64url = (b: Uint8Array) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

export function encodeClaim(claim: TunnelClaim): string {
  return JSON.stringify({
    v: 1,
    verifier: bytesToB64url(claim.verifier),
    access: claim.access === 'public' ? 'public' : { basic: bytesToB64url(claim.access) },
    maxConcurrent: claim.maxConcurrent,
    ratePerSecond: claim.ratePerSecond,
    maxBodyBytes: claim.maxBodyBytes,
    keepPrefix: claim.keepPrefix,
  });
}

const inRange = (n: unknown, [min, max]: readonly [number, number]): n is number => typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;

export function parseClaim(text: string): TunnelClaim | ProtocolError {
  const fail = (msg: string) => new ProtocolError('ZKS_ERR_MALFORMED_FRAME', `TUNNEL_CLAIM: ${msg}`);
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return fail('not JSON');
  }
  if (typeof v !== 'object' || v === null || v.v !== 1) return fail('not a version 1 claim');
  const verifier = b64urlToBytes(v.verifier, 32);
  if (!verifier) return fail('verifier must be 32 bytes of base64url');
  let access: TunnelClaim['access'];
  if (v.access === 'public') access = 'public';
  else {
    const hash = b64urlToBytes((v.access as { basic?: unknown } | null)?.basic, 32);
    if (!hash) return fail('access must be "public" or { basic: SHA-256 of user:password }');
    access = hash;
  }
  if (!inRange(v.maxConcurrent, CLAIM_LIMITS.maxConcurrent)) return fail('maxConcurrent out of range');
  if (!inRange(v.ratePerSecond, CLAIM_LIMITS.ratePerSecond)) return fail('ratePerSecond out of range');
  if (v.maxBodyBytes !== null && !inRange(v.maxBodyBytes, CLAIM_LIMITS.maxBodyBytes)) return fail('maxBodyBytes out of range');
  if (typeof v.keepPrefix !== 'boolean') return fail('keepPrefix must be true or false');
  return {
    verifier, access, maxConcurrent: v.maxConcurrent, ratePerSecond: v.ratePerSecond,
    maxBodyBytes: v.maxBodyBytes as number | null, keepPrefix: v.keepPrefix,
  };
}
