// Many concurrent echoes over ONE ICMP socket of a family: each echo gets a sequence number no other echo in flight
// holds; replies and errors are matched by (identifier, sequence) and checked against the address the echo went
// to. The identifier is the kernel's for a ping socket (it rewrites ours to the socket's "port", and delivers only
// replies carrying it), our own random one for a raw socket (which sees every ICMP message of the host: the check
// filters out other programs' pings). Timeouts run on injectable timers; nothing here sleeps.

import { randomInt } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { debuglog } from 'node:util';
import { EchoFailure, type EchoFailureCode } from '../protocol/datagram-types';
import { ZksError } from '../errors/zks-error';
import type { IcmpMessage, IcmpSocket } from '../native/icmp-socket';
import { describeIcmpError, encodeEchoRequest, errorFailure, parseIcmp } from './icmp-wire';

/** setTimeout/clearTimeout/now, injectable so tests drive time themselves. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds on a monotonic clock. */
  now(): number;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

/** An ICMP error about one of our echoes: which kind, who sent it (a router, or the host itself), when. */
export interface IcmpErrorReport {
  kind: 'unreachable' | 'ttl-exceeded';
  from: string;
  rttMs: number;
}

export type ChannelOutcome =
  | { ok: true; ttl: number; payload: Uint8Array; rttMs: number }
  | { ok: false; code: EchoFailureCode; message: string; icmp?: IcmpErrorReport };

/** Echoes one socket keeps in flight at most; more would start reusing sequence numbers of slow echoes. */
export const MAX_IN_FLIGHT = 4096;

interface Pending {
  address: string;
  sentAt: number;
  timer: unknown;
  resolve(outcome: ChannelOutcome): void;
}

const debug = debuglog('zks:icmp');
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));
const errnoText = (errno: number) => ERRNO_NAMES.get(errno) ?? `errno ${errno}`;

export class IcmpChannel {
  readonly ident: number;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = randomInt(0x10000);
  private failed: ZksError | null = null;

  constructor(
    readonly socket: IcmpSocket,
    private readonly timers: Timers,
  ) {
    this.ident = socket.kind === 'dgram' ? socket.ident : randomInt(1, 0x10000);
    socket.onMessage = (m) => this.onMessage(m);
    socket.onError = (err) => this.fail(err);
    socket.setRef(false); // an idle socket does not keep the process alive; in-flight echoes hold a timer
  }

  /** Usable for new echoes (the socket has not failed or been closed). */
  get usable(): boolean {
    return this.failed === null && !this.socket.closed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * One echo to a literal address of this socket's family; resolves on reply, ICMP error or timeout. `ttl` limits
   * its hops (traceroute: a router on the way answers "time exceeded").
   */
  echo(address: string, payload: Uint8Array, timeoutMs: number, ttl?: number): Promise<ChannelOutcome> {
    if (!this.usable) return Promise.resolve({ ok: false, code: EchoFailure.UNSUPPORTED, message: this.failed?.message ?? 'ICMP socket closed' });
    if (this.pending.size >= MAX_IN_FLIGHT) {
      return Promise.resolve({ ok: false, code: EchoFailure.UNSUPPORTED, message: `more than ${MAX_IN_FLIGHT} echoes in flight` });
    }
    let seq = this.nextSeq;
    while (this.pending.has(seq)) seq = (seq + 1) & 0xffff;
    this.nextSeq = (seq + 1) & 0xffff;
    return new Promise((resolve) => {
      const entry: Pending = { address, sentAt: this.timers.now(), timer: undefined, resolve };
      this.pending.set(seq, entry);
      entry.timer = this.timers.setTimeout(
        () => this.settle(seq, { ok: false, code: EchoFailure.TIMEOUT, message: `no answer from ${address} within ${timeoutMs} ms` }),
        timeoutMs,
      );
      const errno = this.socket.send(address, encodeEchoRequest(this.socket.family, this.ident, seq, payload), ttl);
      // A full send buffer is a lost packet (the timer reports it); anything else is the network saying no.
      if (errno !== 0 && errno !== osConstants.errno.EAGAIN && errno !== osConstants.errno.ENOBUFS) {
        this.settle(seq, { ok: false, code: EchoFailure.UNREACHABLE, message: `${address}: ${sendErrorText(errno)}` });
      }
    });
  }

  /** Ends every echo in flight (as UNSUPPORTED, `why`) and closes the socket. Idempotent. */
  close(why = 'the exit closed its ICMP socket'): void {
    this.fail(new ZksError('ZKS_ERR_UNSUPPORTED', why));
  }

  private fail(err: ZksError): void {
    this.failed ??= err;
    for (const seq of [...this.pending.keys()]) this.settle(seq, { ok: false, code: EchoFailure.UNSUPPORTED, message: err.message });
    this.socket.close();
  }

  private settle(seq: number, outcome: ChannelOutcome): void {
    const entry = this.pending.get(seq);
    if (!entry) return;
    this.pending.delete(seq);
    this.timers.clearTimeout(entry.timer);
    entry.resolve(outcome);
  }

  /** The echo in flight with this (identifier, sequence) to this address, if any. */
  private match(ident: number, seq: number, address: string): Pending | undefined {
    const entry = ident === this.ident ? this.pending.get(seq) : undefined;
    return entry && sameAddress(entry.address, address) ? entry : undefined;
  }

  private onMessage(m: IcmpMessage): void {
    const family = this.socket.family;
    const parsed = parseIcmp(m.data, { family, ipHeader: family === 4 && this.socket.kind === 'raw' });
    if (parsed instanceof ZksError) {
      debug('ignored from %s: %s', m.from, parsed.message); // the kernel handed over something we cannot read
      return;
    }

    if (m.error) {
      // A ping socket's error queue: `data` is our echo, `from` where it went, the offender who said no.
      const entry = parsed.kind === 'echo-request' ? this.match(parsed.ident, parsed.seq, m.from) : undefined;
      if (!entry || parsed.kind !== 'echo-request') return;
      const fromIcmp = m.error.origin === 2 || m.error.origin === 3;
      const kind = fromIcmp ? errorFailure(family, m.error.type) : 'unreachable'; // local: e.g. no neighbour
      if (!kind) return;
      const text = fromIcmp ? describeIcmpError(family, m.error.type, m.error.code) : sendErrorText(m.error.errno);
      const from = m.error.offender ? `From ${m.error.offender}: ` : '';
      this.settle(parsed.seq, {
        ok: false, code: EchoFailure.UNREACHABLE, message: `${from}${text}`,
        icmp: { kind, from: m.error.offender, rttMs: this.timers.now() - entry.sentAt },
      });
      return;
    }
    if (parsed.kind === 'echo-reply') {
      const entry = this.match(parsed.ident, parsed.seq, m.from);
      if (!entry) {
        debug('reply from %s id %d seq %d matches no echo in flight (late, or another program\'s)', m.from, parsed.ident, parsed.seq);
        return;
      }
      const ttl = m.ttl >= 0 ? m.ttl : Math.max(parsed.ttl, 0);
      this.settle(parsed.seq, { ok: true, ttl, payload: parsed.payload, rttMs: this.timers.now() - entry.sentAt });
    } else if (parsed.kind === 'error') {
      // A raw socket receives the error itself; the packet it quotes names our echo.
      const entry = this.match(parsed.ident, parsed.seq, parsed.destination);
      if (!entry) return;
      const from = parsed.source || m.from;
      this.settle(parsed.seq, {
        ok: false, code: EchoFailure.UNREACHABLE, message: `From ${from}: ${describeIcmpError(family, parsed.type, parsed.code)}`,
        icmp: { kind: parsed.failure, from, rttMs: this.timers.now() - entry.sentAt },
      });
    }
  }
}

function sendErrorText(errno: number): string {
  switch (errno) {
    case osConstants.errno.EHOSTUNREACH:
      return 'no route to host';
    case osConstants.errno.ENETUNREACH:
      return 'network unreachable';
    case osConstants.errno.EPERM:
    case osConstants.errno.EACCES:
      return 'sending was refused on this host (firewall, or a broadcast address)';
    case osConstants.errno.EMSGSIZE:
      return 'message too long for the path';
    default:
      return `send failed (${errnoText(errno)})`;
  }
}

/** Address text as the kernel prints it vs as we were given it: IPv6 may be written many ways. */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (!a.includes(':') || !b.includes(':')) return false;
  return canonicalIpv6(a) === canonicalIpv6(b);
}

function canonicalIpv6(text: string): string {
  try {
    return new URL(`http://[${text.replace(/^\[|\]$/g, '')}]/`).hostname;
  } catch {
    return text;
  }
}
