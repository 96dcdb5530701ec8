// Shared helpers for the proxy-front tests: hex literals and "feed these chunks, collect every event" drivers
// that normalise results into plain objects, so split-at-every-boundary runs can be compared with toEqual.

import { Socks5Parser, type Socks5Event } from '../../src/socks/socks5-parser';
import { HttpConnectParser, type HttpConnectEvent } from '../../src/socks/http-connect-parser';

export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (clean.length % 2 !== 0) throw new Error(`odd hex literal: ${text}`);
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}

export function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/** Splits `input` at the given offsets (ascending) into chunks. */
export function splitAt(input: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) { out.push(input.subarray(prev, c)); prev = c; }
  return out;
}

type Plain = Record<string, unknown>;

function plainSocks(ev: Socks5Event): Plain {
  switch (ev.type) {
    case 'auth': return { type: 'auth', username: Array.from(ev.username), password: Array.from(ev.password) };
    case 'error': {
      const e = ev.error;
      return { type: 'error', code: e.code, replyCode: e.replyCode, phase: e.phase, message: e.message };
    }
    default: return { ...ev };
  }
}

function isSocksTerminal(ev: Socks5Event): boolean {
  return ev.type === 'request' || ev.type === 'error' || (ev.type === 'greeting' && ev.method === 0xff);
}

export interface Run { events: Plain[]; rest: number[] }

export function runSocks(chunks: Uint8Array[], authRequired = false): Run {
  const p = new Socks5Parser({ authRequired });
  const events: Plain[] = [];
  let done = false;
  for (const c of chunks) {
    let ev = p.feed(c);
    while (!done && ev.type !== 'need-more') {
      events.push(plainSocks(ev));
      if (isSocksTerminal(ev)) done = true;
      else ev = p.next();
    }
  }
  return { events, rest: Array.from(p.takeRest()) };
}

function plainHttp(ev: HttpConnectEvent): Plain {
  if (ev.type !== 'error') return { ...ev };
  return { type: 'error', code: ev.error.code, status: ev.error.status, message: ev.error.message };
}

export function runHttp(chunks: Uint8Array[]): Run {
  const p = new HttpConnectParser();
  const events: Plain[] = [];
  for (const c of chunks) {
    const ev = p.feed(c);
    if (ev.type !== 'need-more' && events.length === 0) events.push(plainHttp(ev));
  }
  return { events, rest: Array.from(p.takeRest()) };
}

/** Every way of cutting `input` into two pieces, plus one byte at a time. */
export function everySplit(input: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= input.length; i++) out.push(splitAt(input, [i]));
  out.push(Array.from(input, (b) => Uint8Array.of(b)));
  return out;
}
