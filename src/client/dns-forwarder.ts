// DNS through the tunnel. Applications send UDP queries (to zksd's resolver address on the TUN, or through a
// SOCKS5 UDP association of a proxy whose path carries no UDP); each is forwarded as DNS-over-TCP (RFC 1035 §4.2.2
// length prefix, pipelined per RFC 7766 §6.2.1) on one tunnel stream to the upstream resolver, so no query ever
// leaves outside the tunnel. Query ids are rewritten to ids unique on that stream (two applications may both use
// id 1) and restored in the answer. Failures are answered with SERVFAIL at once — an application waiting five
// seconds per query for a dead tunnel is worse than a clear error.

import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';
import { ResetCode } from '../protocol/constants';
import type { Dialer } from './dialer';

export interface DnsForwarderOptions {
  dialer: Dialer;
  upstream: Target;
  /** Delivers an answer to the application that asked (`replyTo` as given to query()). */
  answer: (message: Uint8Array, replyTo: unknown) => void;
  timeoutMs?: number;
  maxInflight?: number;
  log?: (line: string) => void;
}

export interface DnsStats {
  queries: number;
  answers: number;
  servfail: number;
  malformed: number;
  streamsOpened: number;
}

interface Pending {
  readonly originalId: number;
  readonly message: Uint8Array; // with our id written in
  readonly replyTo: unknown;
  readonly deadline: number;
  retried: boolean;
}

const HEADER_LEN = 12;
const MAX_MESSAGE = 65_535;
const RCODE_SERVFAIL = 2;

/** A SERVFAIL answer built from the query's header and first question (RFC 1035 §4.1.1). */
export function servfail(query: Uint8Array): Uint8Array {
  const end = query[4] === 0 && query[5] === 0 ? HEADER_LEN : questionEnd(query);
  const out = query.slice(0, end);
  out[2] = (out[2] | 0x80) & ~0x04; // QR=1, AA=0; opcode and RD kept
  out[3] = 0x80 | RCODE_SERVFAIL; // RA=1, Z=0
  out[4] = 0;
  out[5] = end > HEADER_LEN ? 1 : 0;
  out.fill(0, 6, HEADER_LEN); // no answer, authority or additional records
  return out;
}

/** End offset of the first question (labels, then QTYPE and QCLASS), or the header's end when it does not parse. */
function questionEnd(m: Uint8Array): number {
  let off = HEADER_LEN;
  for (let labels = 0; off < m.length && labels < 128; labels++) {
    const len = m[off];
    if (len === 0) return off + 5 <= m.length ? off + 5 : HEADER_LEN;
    if (len > 63) return HEADER_LEN; // compression pointers do not occur in a query's first name
    off += 1 + len;
  }
  return HEADER_LEN;
}

export class DnsForwarder {
  readonly stats: DnsStats = { queries: 0, answers: 0, servfail: 0, malformed: 0, streamsOpened: 0 };
  private readonly pending = new Map<number, Pending>();
  private nextId = Math.floor(Math.random() * 0x10000);
  private stream: MuxStream | null = null;
  private opening = false;
  private inbox = new Uint8Array(0);
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  private readonly timeoutMs: number;
  private readonly maxInflight: number;

  constructor(private readonly opts: DnsForwarderOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.maxInflight = opts.maxInflight ?? 1024;
    this.timer = setInterval(() => this.expire(), 500);
    this.timer.unref();
  }

  get inflight(): number {
    return this.pending.size;
  }

  /** One UDP query from an application. Returns false (and counts it) when it is not a DNS query at all. */
  query(message: Uint8Array, replyTo: unknown): boolean {
    if (this.stopped) return false;
    if (message.length < HEADER_LEN || message.length > MAX_MESSAGE || message[2] & 0x80) {
      this.stats.malformed++; // too short, or a response (QR=1): nothing sensible to answer
      return false;
    }
    this.stats.queries++;
    if (this.pending.size >= this.maxInflight) {
      this.fail(message, replyTo);
      return true;
    }
    const id = this.freeId();
    // A real copy: `message` may be a Buffer, whose slice() is a view — writing our id would change the original.
    const copy = Uint8Array.prototype.slice.call(message);
    copy[0] = id >> 8;
    copy[1] = id & 0xff;
    this.pending.set(id, {
      originalId: (message[0] << 8) | message[1],
      message: copy,
      replyTo,
      deadline: performance.now() + this.timeoutMs,
      retried: false,
    });
    if (this.stream !== null) this.send(this.stream, copy);
    else this.openStream();
    return true;
  }

  private freeId(): number {
    for (;;) {
      this.nextId = (this.nextId + 1) & 0xffff;
      if (!this.pending.has(this.nextId)) return this.nextId;
    }
  }

  private send(stream: MuxStream, message: Uint8Array): void {
    const framed = new Uint8Array(2 + message.length);
    framed[0] = message.length >> 8;
    framed[1] = message.length & 0xff;
    framed.set(message, 2);
    stream.write(framed); // queued by the stream when credit is short; DNS volume is tiny
  }

  private openStream(): void {
    if (this.opening || this.stopped) return;
    this.opening = true;
    void this.opts.dialer.open(this.opts.upstream).then((r) => {
      this.opening = false;
      if (this.stopped) {
        if (r.ok) r.stream.reset(ResetCode.SHUTDOWN, 'resolver stopped');
        return;
      }
      if (!r.ok) {
        this.opts.log?.(`dns: upstream ${this.opts.upstream.host}:${this.opts.upstream.port} unavailable: ${r.message}`);
        for (const [id, p] of this.pending) this.answerFailure(id, p);
        return;
      }
      this.stats.streamsOpened++;
      const stream = r.stream;
      this.stream = stream;
      this.inbox = new Uint8Array(0);
      stream.onData = (chunk) => {
        this.receive(chunk);
        stream.consume(chunk.length);
      };
      stream.onEnd = () => stream.end();
      stream.onClose = () => this.streamClosed(stream);
      for (const p of this.pending.values()) this.send(stream, p.message);
    });
  }

  /** The upstream closed the connection (idle timeout, reset): resend what is unanswered once, on a new stream. */
  private streamClosed(stream: MuxStream): void {
    if (this.stream !== stream) return;
    this.stream = null;
    if (this.stopped || this.pending.size === 0) return;
    for (const [id, p] of this.pending) {
      if (p.retried) this.answerFailure(id, p);
      else p.retried = true;
    }
    if (this.pending.size > 0) this.openStream();
  }

  private receive(chunk: Uint8Array): void {
    const buf = this.inbox.length === 0 ? chunk : concat(this.inbox, chunk);
    let off = 0;
    while (buf.length - off >= 2) {
      const len = (buf[off] << 8) | buf[off + 1];
      if (buf.length - off - 2 < len) break;
      this.answer(buf.subarray(off + 2, off + 2 + len));
      off += 2 + len;
    }
    this.inbox = off === buf.length ? new Uint8Array(0) : buf.slice(off);
  }

  private answer(message: Uint8Array): void {
    if (message.length < HEADER_LEN) return;
    const id = (message[0] << 8) | message[1];
    const p = this.pending.get(id);
    if (p === undefined) return; // late answer to a query we already failed
    this.pending.delete(id);
    const out = message.slice();
    out[0] = p.originalId >> 8;
    out[1] = p.originalId & 0xff;
    this.stats.answers++;
    this.opts.answer(out, p.replyTo);
  }

  private answerFailure(id: number, p: Pending): void {
    this.pending.delete(id);
    const original = p.message.slice();
    original[0] = p.originalId >> 8;
    original[1] = p.originalId & 0xff;
    this.fail(original, p.replyTo);
  }

  private fail(query: Uint8Array, replyTo: unknown): void {
    this.stats.servfail++;
    this.opts.answer(servfail(query), replyTo);
  }

  private expire(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) if (p.deadline <= now) this.answerFailure(id, p);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.stream?.reset(ResetCode.SHUTDOWN, 'resolver stopped');
    this.stream = null;
    this.pending.clear();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
