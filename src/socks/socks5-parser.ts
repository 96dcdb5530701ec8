// Incremental SOCKS5 decoder (RFC 1928 greeting + request, RFC 1929 username/password sub-negotiation) and the
// encoders for our replies. Pure: no I/O, no node:* — feed(chunk) returns the next event or 'need-more', and input
// split at any byte boundary yields the same events. Errors come back as Socks5Error values, never thrown.
// Invariant: once 'request' or 'error' is returned the decoder stops; remaining bytes are the client's early data.

import { AddressType, ConnectResult } from '../protocol/constants';
import { formatIPv4, formatIPv6, isValidDomain, parseIPv4, parseIPv6, type Target } from '../protocol/address';
import { ByteQueue } from './byte-queue';
import { Socks5Error } from './errors';

export const SOCKS_VERSION = 0x05;
export const AUTH_VERSION = 0x01; // RFC 1929 §2

/** RFC 1928 §3 METHOD values we know. */
export const Socks5Method = { NO_AUTH: 0x00, USER_PASS: 0x02, NO_ACCEPTABLE: 0xff } as const;

/** RFC 1928 §4 CMD values. */
export const Socks5Command = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const;

/** RFC 1928 §6 REP values. 0x00..0x06 equal ConnectResult (protocol/constants.ts) on purpose. */
export const Socks5Reply = {
  SUCCEEDED: ConnectResult.OK,
  GENERAL_FAILURE: ConnectResult.GENERAL_FAILURE,
  NOT_ALLOWED: ConnectResult.FORBIDDEN,
  NETWORK_UNREACHABLE: ConnectResult.NETWORK_UNREACHABLE,
  HOST_UNREACHABLE: ConnectResult.HOST_UNREACHABLE,
  REFUSED: ConnectResult.REFUSED,
  TTL_EXPIRED: ConnectResult.TIMEOUT,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

export type Socks5Event =
  | { type: 'need-more' }
  /** `method` is what we chose from `methods`; NO_ACCEPTABLE means: send it and close. */
  | { type: 'greeting'; methods: number[]; method: number }
  /** Fresh copies, so the caller can wipe the password after checking it. */
  | { type: 'auth'; username: Uint8Array; password: Uint8Array }
  | { type: 'request'; command: number; addressType: number; target: Target }
  | { type: 'error'; error: Socks5Error };

export interface Socks5ParserOptions {
  /** When true only USER_PASS is acceptable; when false NO_AUTH is preferred and USER_PASS accepted as fallback. */
  authRequired: boolean;
}

const State = { GREETING: 0, AUTH: 1, REQUEST: 2, DONE: 3 } as const;
type StateValue = (typeof State)[keyof typeof State];
const NEED_MORE: Socks5Event = { type: 'need-more' };

export class Socks5Parser {
  private readonly queue = new ByteQueue();
  private state: StateValue = State.GREETING;
  private final: Socks5Event | null = null; // the 'request' or 'error' that stopped us (or the 0xFF greeting)

  constructor(private readonly opts: Socks5ParserOptions) {}

  /** Queues `chunk` and returns the next event. Call next() until 'need-more' to drain pipelined messages. */
  feed(chunk: Uint8Array): Socks5Event {
    this.queue.push(chunk);
    return this.next();
  }

  next(): Socks5Event {
    switch (this.state) {
      case State.GREETING: return this.greeting();
      case State.AUTH: return this.auth();
      case State.REQUEST: return this.request();
      case State.DONE: return this.final ?? NEED_MORE;
    }
  }

  /** Bytes received after the request (the client's early data); valid once 'request' was returned. */
  takeRest(): Uint8Array {
    return this.queue.takeAll();
  }

  private fail(replyCode: number, message: string, phase: 'greeting' | 'auth' | 'request'): Socks5Event {
    this.state = State.DONE;
    this.final = { type: 'error', error: new Socks5Error(replyCode, message, phase) };
    return this.final;
  }

  // RFC 1928 §3: VER | NMETHODS | METHODS[NMETHODS]
  private greeting(): Socks5Event {
    const q = this.queue;
    if (q.length >= 1 && q.peek(0) !== SOCKS_VERSION) {
      return this.fail(Socks5Method.NO_ACCEPTABLE, `unsupported SOCKS version ${q.peek(0)} (expected 5)`, 'greeting');
    }
    if (q.length < 2 || q.length < 2 + q.peek(1)) return NEED_MORE;
    const n = q.peek(1);
    q.consume(2);
    const methods = Array.from(q.consume(n));
    let method: number = Socks5Method.NO_ACCEPTABLE;
    if (this.opts.authRequired) {
      if (methods.includes(Socks5Method.USER_PASS)) method = Socks5Method.USER_PASS;
    } else if (methods.includes(Socks5Method.NO_AUTH)) {
      method = Socks5Method.NO_AUTH;
    } else if (methods.includes(Socks5Method.USER_PASS)) {
      method = Socks5Method.USER_PASS; // no credentials configured: any username/password is fine
    }
    if (method === Socks5Method.NO_ACCEPTABLE) {
      this.state = State.DONE;
      this.final = { type: 'greeting', methods, method };
      return this.final;
    }
    this.state = method === Socks5Method.USER_PASS ? State.AUTH : State.REQUEST;
    return { type: 'greeting', methods, method };
  }

  // RFC 1929 §2: VER(0x01) | ULEN | UNAME | PLEN | PASSWD. Zero lengths are tolerated (they simply won't match).
  private auth(): Socks5Event {
    const q = this.queue;
    if (q.length >= 1 && q.peek(0) !== AUTH_VERSION) {
      return this.fail(0x01, `unsupported username/password auth version ${q.peek(0)} (expected 1)`, 'auth');
    }
    if (q.length < 2) return NEED_MORE;
    const ulen = q.peek(1);
    if (q.length < 3 + ulen) return NEED_MORE;
    const plen = q.peek(2 + ulen);
    if (q.length < 3 + ulen + plen) return NEED_MORE;
    q.consume(2);
    const username = q.consume(ulen).slice();
    q.consume(1);
    const password = q.consume(plen).slice();
    this.state = State.REQUEST;
    return { type: 'auth', username, password };
  }

  // RFC 1928 §4: VER | CMD | RSV(0x00) | ATYP | DST.ADDR | DST.PORT
  private request(): Socks5Event {
    const q = this.queue;
    const R = Socks5Reply;
    if (q.length >= 1 && q.peek(0) !== SOCKS_VERSION) {
      return this.fail(R.GENERAL_FAILURE, `unsupported SOCKS version ${q.peek(0)} in request (expected 5)`, 'request');
    }
    if (q.length >= 3 && q.peek(2) !== 0x00) {
      return this.fail(R.GENERAL_FAILURE, `reserved byte in request must be 0, got ${q.peek(2)}`, 'request');
    }
    if (q.length < 4) return NEED_MORE;
    const atyp = q.peek(3);
    let addrLen: number;
    if (atyp === AddressType.IPV4) addrLen = 4;
    else if (atyp === AddressType.IPV6) addrLen = 16;
    else if (atyp === AddressType.DOMAIN) {
      if (q.length < 5) return NEED_MORE;
      addrLen = 1 + q.peek(4);
      if (addrLen === 1) return this.fail(R.GENERAL_FAILURE, 'empty domain name in request', 'request');
    } else {
      return this.fail(R.ADDRESS_TYPE_NOT_SUPPORTED, `unsupported address type ${atyp}`, 'request');
    }
    if (q.length < 4 + addrLen + 2) return NEED_MORE;

    const header = q.consume(4);
    const command = header[1];
    const addr = q.consume(addrLen);
    const portBytes = q.consume(2);
    const port = (portBytes[0] << 8) | portBytes[1];
    this.state = State.DONE;

    let host: string | null;
    if (atyp === AddressType.IPV4) host = formatIPv4(addr);
    else if (atyp === AddressType.IPV6) host = formatIPv6(addr);
    else host = canonicalDomain(addr.subarray(1));
    if (host === null) {
      // UDP ASSOCIATE's address is only a hint at the client's own (RFC 1928 §7), and clients say "unknown" in
      // their own ways (PySocks sends the domain "0"): what we cannot use as an address means unspecified.
      if (command !== Socks5Command.UDP_ASSOCIATE) {
        return this.fail(R.HOST_UNREACHABLE, 'invalid host name in request', 'request');
      }
      host = '0.0.0.0';
    }
    if (command !== Socks5Command.CONNECT && command !== Socks5Command.BIND && command !== Socks5Command.UDP_ASSOCIATE) {
      return this.fail(R.COMMAND_NOT_SUPPORTED, `unknown SOCKS command ${command}`, 'request');
    }
    // UDP ASSOCIATE legitimately sends 0.0.0.0:0 (RFC 1928 §7); a CONNECT to port 0 can never succeed.
    if (command === Socks5Command.CONNECT && port === 0) {
      return this.fail(R.GENERAL_FAILURE, 'destination port 0 in CONNECT request', 'request');
    }
    this.final = { type: 'request', command, addressType: atyp, target: { host, port } };
    return this.final;
  }
}

/** Domain bytes → canonical host text: IP literals normalised, names lower-cased and validated; null if invalid. */
export function canonicalDomain(bytes: Uint8Array): string | null {
  let text = '';
  for (const b of bytes) {
    if (b < 0x21 || b > 0x7e) return null; // printable ASCII only (IDNs arrive punycoded)
    text += String.fromCharCode(b);
  }
  const v4 = parseIPv4(text);
  if (v4) return formatIPv4(v4);
  if (text.includes(':') || text.startsWith('[')) {
    const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
    const v6 = parseIPv6(bare);
    return v6 ? formatIPv6(v6) : null;
  }
  const name = text.toLowerCase();
  return isValidDomain(name) ? name : null;
}

/** RFC 1928 §3 method selection message. */
export function encodeMethodSelection(method: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, method);
}

/** RFC 1929 §2 status message: 0x00 success, anything else failure. */
export function encodeAuthStatus(ok: boolean): Uint8Array {
  return Uint8Array.of(AUTH_VERSION, ok ? 0x00 : 0x01);
}

/**
 * RFC 1928 §6 reply. BND.ADDR/BND.PORT are 0.0.0.0:0 unless `bound` is given (UDP ASSOCIATE: our relay socket):
 * a CONNECT's real local address is at the far end of the tunnel. `bound` is an IPv4 or IPv6 literal.
 */
export function encodeReply(rep: number, bound?: Target): Uint8Array {
  const v6 = bound && bound.host.includes(':') ? parseIPv6(bound.host) : null;
  const addr = v6 ?? (bound ? parseIPv4(bound.host) : null) ?? new Uint8Array(4);
  const out = new Uint8Array(6 + addr.length);
  out.set([SOCKS_VERSION, rep, 0x00, v6 ? AddressType.IPV6 : AddressType.IPV4]);
  out.set(addr, 4);
  const port = bound?.port ?? 0;
  out[4 + addr.length] = port >> 8;
  out[5 + addr.length] = port & 0xff;
  return out;
}

/** Reply for any Socks5Error, in the shape its phase requires. */
export function encodeErrorReply(err: Socks5Error): Uint8Array {
  switch (err.phase) {
    case 'greeting': return encodeMethodSelection(err.replyCode);
    case 'auth': return encodeAuthStatus(false);
    case 'request': return encodeReply(err.replyCode);
  }
}
