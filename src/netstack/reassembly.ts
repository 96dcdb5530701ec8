// IPv4 reassembly (RFC 791 §3.2, with RFC 815's observation that a datagram is complete once its pieces cover
// 0 … total without holes). Fragments are copied into one entry per (src, dst, protocol, identification); the
// entry becomes a whole packet — the first fragment's header with total length, flags and offset rewritten —
// once the last fragment (MF clear) fixed the length and every byte below it arrived.
// Invariants: memory is bounded (maxBytes of fragment data, maxDatagrams entries: the oldest is evicted first);
// an entry lives at most timeoutMs from its first fragment (the caller's clock: nowMs, no timers here); an overlap
// or duplicate drops the whole datagram (as RFC 5722 requires for IPv6 — overlaps are an evasion tool, never needed);
// a datagram that would exceed 65 535 bytes, or a non-final fragment whose length is not a multiple of 8, is dropped.

import { finishChecksum, onesSum, type Ipv4View } from './wire/index';

export interface ReassemblyOptions {
  /** From the first fragment; default 30 s (Linux's ipfrag_time). */
  timeoutMs?: number;
  /** Fragment bytes held at once over all datagrams; default 1 MiB. */
  maxBytes?: number;
  /** Datagrams being reassembled at once; default 64. */
  maxDatagrams?: number;
}

export interface ReassemblyStats {
  reassembled: number;
  /** Datagrams dropped for overlapping or duplicate fragments. */
  overlapDropped: number;
  /** Datagrams dropped because timeoutMs passed before they were complete. */
  timedOut: number;
  /** Datagrams dropped to stay within maxBytes / maxDatagrams. */
  evicted: number;
  /** Fragments or datagrams that break RFC 791's rules (length, offset, conflicting last fragment). */
  invalid: number;
}

interface Piece {
  readonly start: number;
  readonly end: number;
  readonly data: Uint8Array;
}

interface Entry {
  readonly key: string;
  readonly firstAtMs: number;
  /** Copy of the offset-0 fragment's header (with options), once it arrived. */
  header: Uint8Array | null;
  /** Payload length, known from the fragment with MF clear; -1 before. */
  total: number;
  pieces: Piece[];
  bytes: number;
}

const FLAGS_FRAG = 6;
const TOTAL_LEN = 2;
const CHECKSUM = 10;
const MAX_PACKET = 0xffff;

export class Ipv4Reassembler {
  readonly stats: ReassemblyStats = { reassembled: 0, overlapDropped: 0, timedOut: 0, evicted: 0, invalid: 0 };
  /** Insertion order is creation order, hence also deadline order (one timeout for all). */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxDatagrams: number;

  constructor(opts: ReassemblyOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxBytes = opts.maxBytes ?? 1024 * 1024;
    this.maxDatagrams = opts.maxDatagrams ?? 64;
  }

  /** Datagrams in progress. */
  get size(): number { return this.entries.size; }
  /** Fragment bytes held. */
  get heldBytes(): number { return this.bytes; }

  /** One fragment (ip.isFragment). Returns the whole datagram when this fragment completed it, else null. */
  push(ip: Ipv4View, nowMs: number): Uint8Array | null {
    this.expire(nowMs);
    const data = ip.payload;
    const start = ip.fragOffset;
    const end = start + data.length;
    const last = !ip.moreFrags;
    const hl = ip.headerLen;
    if (data.length === 0 || (!last && data.length % 8 !== 0) || hl + end > MAX_PACKET) {
      this.stats.invalid++;
      return null;
    }
    const key = `${ip.srcU32}>${ip.dstU32}/${ip.protocol}#${ip.ident}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      while (this.entries.size >= this.maxDatagrams) this.evictOldest();
      e = { key, firstAtMs: nowMs, header: null, total: -1, pieces: [], bytes: 0 };
      this.entries.set(key, e);
    }
    if (last) {
      // A second, different end, or bytes already held beyond it: the fragments contradict each other.
      if ((e.total >= 0 && e.total !== end) || e.pieces.some((p) => p.end > end)) return this.drop(e, 'invalid');
      e.total = end;
    } else if (e.total >= 0 && end > e.total) {
      return this.drop(e, 'invalid');
    }
    for (const p of e.pieces) if (start < p.end && p.start < end) return this.drop(e, 'overlapDropped');
    if (data.length > this.maxBytes) return this.drop(e, 'evicted');
    while (this.bytes + data.length > this.maxBytes) {
      const oldest = this.entries.values().next().value as Entry;
      if (oldest === e) return this.drop(e, 'evicted');
      this.drop(oldest, 'evicted');
    }
    e.pieces.push({ start, end, data: data.slice() });
    e.bytes += data.length;
    this.bytes += data.length;
    if (start === 0) e.header = ip.buf.slice(0, hl);
    if (e.total < 0 || e.bytes !== e.total || e.header === null) return null;
    // No overlaps and bytes == total: the pieces cover [0, total) exactly.
    return this.assemble(e);
  }

  /** Drops every datagram whose time ran out (RFC 791: the reassembly timer). */
  expire(nowMs: number): void {
    for (const e of this.entries.values()) {
      if (nowMs - e.firstAtMs < this.timeoutMs) return;
      this.drop(e, 'timedOut');
    }
  }

  /** When the oldest datagram in progress times out; null when there is none. */
  nextDeadline(): number | null {
    const first = this.entries.values().next();
    return first.done === true ? null : first.value.firstAtMs + this.timeoutMs;
  }

  private assemble(e: Entry): Uint8Array {
    const header = e.header as Uint8Array;
    const hl = header.length;
    const out = new Uint8Array(hl + e.total);
    out.set(header);
    for (const p of e.pieces) out.set(p.data, hl + p.start);
    const dv = new DataView(out.buffer);
    dv.setUint16(TOTAL_LEN, hl + e.total);
    dv.setUint16(FLAGS_FRAG, 0);
    dv.setUint16(CHECKSUM, 0);
    dv.setUint16(CHECKSUM, finishChecksum(onesSum(out, 0, hl)));
    this.remove(e);
    this.stats.reassembled++;
    return out;
  }

  private evictOldest(): void {
    const oldest = this.entries.values().next().value as Entry;
    this.drop(oldest, 'evicted');
  }

  private drop(e: Entry, why: 'overlapDropped' | 'timedOut' | 'evicted' | 'invalid'): null {
    this.stats[why]++;
    this.remove(e);
    return null;
  }

  private remove(e: Entry): void {
    if (this.entries.get(e.key) !== e) return;
    this.entries.delete(e.key);
    this.bytes -= e.bytes;
  }
}
