// IP reassembly: IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5), with RFC 815's observation that a datagram is
// complete once its pieces cover 0 … total without holes. Fragments are copied into one entry per (family, src, dst,
// [protocol,] identification); the entry becomes a whole packet once the last fragment (MF / M clear) fixed the
// length and every byte below it arrived: IPv4 — the first fragment's header with total length, flags and offset
// rewritten; IPv6 — the fixed header with payload length and Next Header (the Fragment header's) rewritten. IPv6
// fragments whose Fragment header does not follow the fixed header directly are refused (counted as invalid).
// Invariants: memory is bounded (maxBytes of fragment data, maxDatagrams entries: the oldest is evicted first);
// an entry lives at most timeoutMs from its first fragment (the caller's clock: nowMs, no timers here); an overlap
// or duplicate drops the whole datagram (as RFC 5722 requires for IPv6 — overlaps are an evasion tool, never needed);
// a datagram that would exceed 65 535 bytes, or a non-final fragment whose length is not a multiple of 8, is dropped.
// A datagram that times out after its offset-0 fragment arrived is reported (onTimedOut, with that fragment): the
// caller answers with ICMP Time Exceeded, code 1 (RFC 792, RFC 1122 §3.3.2, RFC 4443 §3.3).

import { IPV6_HEADER_LEN, finishChecksum, onesSum, type Ipv4View, type Ipv6View } from './wire/index';

export interface ReassemblyOptions {
  /** From the first fragment; default 30 s (Linux's ipfrag_time). */
  timeoutMs?: number;
  /** Fragment bytes held at once over all datagrams; default 1 MiB. */
  maxBytes?: number;
  /** Datagrams being reassembled at once; default 64. */
  maxDatagrams?: number;
  /** A datagram timed out after its offset-0 fragment arrived: `firstFragment` is that fragment as it arrived. */
  onTimedOut?: (firstFragment: Uint8Array, nowMs: number) => void;
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
  /** Copy of the offset-0 fragment's header (IPv4 with options; IPv6 the fixed 40 bytes), once it arrived. */
  header: Uint8Array | null;
  /** IPv6: the Next Header of the offset-0 fragment's Fragment header. */
  nextHeader: number;
  /** The offset-0 fragment's headers as they arrived (IPv6: with its Fragment header), for a Time Exceeded. */
  firstHeaders: Uint8Array | null;
  /** Payload length, known from the fragment with MF clear; -1 before. */
  total: number;
  pieces: Piece[];
  bytes: number;
}

const FLAGS_FRAG = 6;
const TOTAL_LEN = 2;
const CHECKSUM = 10;
const MAX_PACKET = 0xffff;
/** IPv6: payload length and Next Header of the fixed header; the Fragment header's fields (RFC 8200 §4.5). */
const V6_PAYLOAD_LEN = 4;
const V6_NEXT_HEADER = 6;
const FRAG_HEADER_LEN = 8;

interface Fragment {
  key: string;
  start: number;
  data: Uint8Array;
  last: boolean;
  /** The header to rebuild from, for the offset-0 fragment (read lazily: copied only then). */
  header: () => Uint8Array;
  /** The headers before the data as they arrived (IPv6: the Fragment header too), kept for the offset-0 fragment. */
  arrivedHeaders: () => Uint8Array;
  /** Bytes the rebuilt header adds to the payload under the 65 535 limit (IPv4: header length; IPv6: 0). */
  limitOverhead: number;
  nextHeader: number;
}

export class Reassembler {
  readonly stats: ReassemblyStats = { reassembled: 0, overlapDropped: 0, timedOut: 0, evicted: 0, invalid: 0 };
  /** Insertion order is creation order, hence also deadline order (one timeout for all). */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxDatagrams: number;
  private readonly onTimedOut: ReassemblyOptions['onTimedOut'];

  constructor(opts: ReassemblyOptions = {}) {
    this.onTimedOut = opts.onTimedOut;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxBytes = opts.maxBytes ?? 1024 * 1024;
    this.maxDatagrams = opts.maxDatagrams ?? 64;
  }

  /** Datagrams in progress. */
  get size(): number { return this.entries.size; }
  /** Fragment bytes held. */
  get heldBytes(): number { return this.bytes; }

  /** One IPv4 fragment (ip.isFragment). Returns the whole datagram when this fragment completed it, else null. */
  pushV4(ip: Ipv4View, nowMs: number): Uint8Array | null {
    const hl = ip.headerLen;
    return this.push({
      key: `4|${ip.srcU32}>${ip.dstU32}/${ip.protocol}#${ip.ident}`, start: ip.fragOffset, data: ip.payload,
      last: !ip.moreFrags, header: () => ip.buf.slice(0, hl), arrivedHeaders: () => ip.buf.slice(0, hl), limitOverhead: hl, nextHeader: ip.protocol,
    }, nowMs);
  }

  /** One IPv6 fragment (ip.isFragment: its walk stopped right after the Fragment header). */
  pushV6(ip: Ipv6View, nowMs: number): Uint8Array | null {
    const f = ip.upperOffset - FRAG_HEADER_LEN;
    if (f !== IPV6_HEADER_LEN) {
      this.expire(nowMs);
      this.stats.invalid++; // extension headers before the Fragment header: not reassembled here
      return null;
    }
    const b = ip.buf;
    const offsetFlags = (b[f + 2] << 8) | b[f + 3];
    const ident = ((b[f + 4] << 24) | (b[f + 5] << 16) | (b[f + 6] << 8) | b[f + 7]) >>> 0;
    return this.push({
      key: `6|${hex(ip.src)}>${hex(ip.dst)}#${ident}`, start: offsetFlags & 0xfff8, data: ip.upperPayload,
      last: (offsetFlags & 1) === 0, header: () => b.slice(0, IPV6_HEADER_LEN),
      arrivedHeaders: () => b.slice(0, IPV6_HEADER_LEN + FRAG_HEADER_LEN), limitOverhead: 0,
      nextHeader: ip.upperProtocol,
    }, nowMs);
  }

  private push(frag: Fragment, nowMs: number): Uint8Array | null {
    this.expire(nowMs);
    const { key, start, data, last } = frag;
    const end = start + data.length;
    if (data.length === 0 || (!last && data.length % 8 !== 0) || frag.limitOverhead + end > MAX_PACKET) {
      this.stats.invalid++;
      return null;
    }
    let e = this.entries.get(key);
    if (e === undefined) {
      while (this.entries.size >= this.maxDatagrams) this.evictOldest();
      e = { key, firstAtMs: nowMs, header: null, firstHeaders: null, nextHeader: 0, total: -1, pieces: [], bytes: 0 };
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
    if (start === 0) {
      e.header = frag.header();
      e.firstHeaders = frag.arrivedHeaders();
      e.nextHeader = frag.nextHeader;
    }
    if (e.total < 0 || e.bytes !== e.total || e.header === null) return null;
    // No overlaps and bytes == total: the pieces cover [0, total) exactly.
    return this.assemble(e);
  }

  /** Drops every datagram whose time ran out (RFC 791: the reassembly timer). */
  expire(nowMs: number): void {
    for (const e of this.entries.values()) {
      if (nowMs - e.firstAtMs < this.timeoutMs) return;
      this.drop(e, 'timedOut');
      if (e.firstHeaders !== null && this.onTimedOut) this.onTimedOut(firstFragment(e, e.firstHeaders), nowMs);
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
    if (out[0] >> 4 === 6) {
      dv.setUint16(V6_PAYLOAD_LEN, e.total);
      out[V6_NEXT_HEADER] = e.nextHeader;
    } else {
      dv.setUint16(TOTAL_LEN, hl + e.total);
      dv.setUint16(FLAGS_FRAG, 0);
      dv.setUint16(CHECKSUM, 0);
      dv.setUint16(CHECKSUM, finishChecksum(onesSum(out, 0, hl)));
    }
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

/** The offset-0 fragment as it arrived: its headers, then its data (the piece that starts at 0). */
function firstFragment(e: Entry, headers: Uint8Array): Uint8Array {
  const data = e.pieces.find((p) => p.start === 0)!.data;
  const out = new Uint8Array(headers.length + data.length);
  out.set(headers);
  out.set(data, headers.length);
  return out;
}

function hex(a: Uint8Array): string {
  let s = '';
  for (const b of a) s += (b < 16 ? '0' : '') + b.toString(16);
  return s;
}
