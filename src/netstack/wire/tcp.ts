// TCP header (RFC 9293 §3.1) with options MSS (§3.2), Window Scale and Timestamps (RFC 7323), SACK-Permitted and
// SACK (RFC 2018): a checked view, a typed Repr, parse/emit with the checksum over the IPv4 or IPv6 pseudo-header.
// Invariant of TcpView: 20 ≤ headerLen ≤ buf.length and the option list was walked once without error; the
// segment is the whole buf (pass the IP payload, not more). Sequence numbers are unsigned 32-bit (see seq.ts).
//
//   |        source port            |       destination port        |
//   |                        sequence number                        |
//   |                     acknowledgment number                     |
//   | off | rsvd |C|E|U|A|P|R|S|F|            window                 |
//   |          checksum             |        urgent pointer         |
//   |                 options (0–40 bytes) …  | data …

import { onesSum, pseudoHeaderSum, writeChecksum, type ChecksumMode } from './checksum';
import { malformed, type WireResult } from './errors';
import { u16, u32 } from './bytes';
import { IpProtocol } from './ip';

export const TCP_HEADER_LEN = 20;
export const TCP_MAX_OPTIONS_LEN = 40;

const F = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFF: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
} as const;

export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** Largest shift a window scale option may ask for (RFC 7323 §2.3: larger values are used as 14). */
export const TCP_MAX_WINDOW_SCALE = 14;

/** One SACK block: [left, right) in sequence space (RFC 2018 §3). */
export type SackRange = readonly [left: number, right: number];

export interface TcpTimestamp {
  tsVal: number;
  tsEcr: number;
}

interface ParsedOptions {
  mss: number | null;
  windowScale: number | null;
  sackPermitted: boolean;
  sackRanges: readonly SackRange[];
  timestamp: TcpTimestamp | null;
}

const NO_SACK: readonly SackRange[] = Object.freeze([]);

/**
 * Walks buf[off, end) as a TCP option list. EOL ends it; unknown kinds are skipped by their length; a length < 2,
 * one running past the header, or a known kind with the wrong length is malformed. When `out` is given the known
 * options are stored in it.
 */
function walkOptions(buf: Uint8Array, off: number, end: number, out: ParsedOptions | null): WireResult<null> {
  let i = off;
  while (i < end) {
    const kind = buf[i];
    if (kind === TcpOptionKind.EOL) break;
    if (kind === TcpOptionKind.NOP) { i++; continue; }
    if (end - i < 2) return malformed(`TCP: option ${kind} at ${i} has no length byte`);
    const len = buf[i + 1];
    if (len < 2) return malformed(`TCP: option ${kind} at ${i} has length ${len}`);
    if (len > end - i) return malformed(`TCP: option ${kind} at ${i} of ${len} bytes runs past the header`);
    switch (kind) {
      case TcpOptionKind.MSS:
        if (len !== 4) return malformed(`TCP: MSS option length ${len}`);
        if (out) out.mss = (buf[i + 2] << 8) | buf[i + 3];
        break;
      case TcpOptionKind.WINDOW_SCALE:
        if (len !== 3) return malformed(`TCP: window scale option length ${len}`);
        if (out) out.windowScale = buf[i + 2];
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (len !== 2) return malformed(`TCP: SACK-permitted option length ${len}`);
        if (out) out.sackPermitted = true;
        break;
      case TcpOptionKind.SACK: {
        if ((len - 2) % 8 !== 0 || len === 2) return malformed(`TCP: SACK option length ${len}`);
        if (out) {
          const ranges: SackRange[] = [];
          for (let j = i + 2; j < i + len; j += 8) ranges.push([u32(buf, j), u32(buf, j + 4)]);
          out.sackRanges = ranges;
        }
        break;
      }
      case TcpOptionKind.TIMESTAMPS:
        if (len !== 10) return malformed(`TCP: timestamps option length ${len}`);
        if (out) out.timestamp = { tsVal: u32(buf, i + 2), tsEcr: u32(buf, i + 6) };
        break;
      default:
        break; // RFC 9293 §3.2: unknown options are skipped by their length
    }
    i += len;
  }
  return null;
}

export class TcpView {
  readonly buf: Uint8Array;

  private constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  /** `buf` is exactly the segment (the IP payload). Validates the data offset and the option list once. */
  static checked(buf: Uint8Array): WireResult<TcpView> {
    if (buf.length < TCP_HEADER_LEN) return malformed(`TCP: ${buf.length} bytes, header needs ${TCP_HEADER_LEN}`);
    const hl = (buf[F.DATA_OFF] >> 4) * 4;
    if (hl < TCP_HEADER_LEN) return malformed(`TCP: data offset ${hl / 4} < 5`);
    if (hl > buf.length) return malformed(`TCP: header length ${hl} > ${buf.length} bytes received`);
    const err = walkOptions(buf, TCP_HEADER_LEN, hl, null);
    if (err) return err;
    return new TcpView(buf);
  }

  get srcPort(): number { return u16(this.buf, F.SRC_PORT); }
  get dstPort(): number { return u16(this.buf, F.DST_PORT); }
  get seq(): number { return u32(this.buf, F.SEQ); }
  get ack(): number { return u32(this.buf, F.ACK); }
  get headerLen(): number { return (this.buf[F.DATA_OFF] >> 4) * 4; }
  /** The 8 flag bits CWR … FIN (see TcpFlags). */
  get flags(): number { return this.buf[F.FLAGS]; }
  get fin(): boolean { return (this.buf[F.FLAGS] & TcpFlags.FIN) !== 0; }
  get syn(): boolean { return (this.buf[F.FLAGS] & TcpFlags.SYN) !== 0; }
  get rst(): boolean { return (this.buf[F.FLAGS] & TcpFlags.RST) !== 0; }
  get psh(): boolean { return (this.buf[F.FLAGS] & TcpFlags.PSH) !== 0; }
  get ackFlag(): boolean { return (this.buf[F.FLAGS] & TcpFlags.ACK) !== 0; }
  get urg(): boolean { return (this.buf[F.FLAGS] & TcpFlags.URG) !== 0; }
  get ece(): boolean { return (this.buf[F.FLAGS] & TcpFlags.ECE) !== 0; }
  get cwr(): boolean { return (this.buf[F.FLAGS] & TcpFlags.CWR) !== 0; }
  /** The raw 16-bit window field, not yet shifted by the window scale. */
  get window(): number { return u16(this.buf, F.WINDOW); }
  get checksum(): number { return u16(this.buf, F.CHECKSUM); }
  get urgent(): number { return u16(this.buf, F.URGENT); }
  get options(): Uint8Array { return this.buf.subarray(TCP_HEADER_LEN, this.headerLen); }
  get payload(): Uint8Array { return this.buf.subarray(this.headerLen); }
  /** Sequence space the segment occupies: payload bytes + 1 for SYN + 1 for FIN (RFC 9293 §3.4). */
  get segmentLen(): number {
    const f = this.buf[F.FLAGS];
    return this.buf.length - this.headerLen + (f & TcpFlags.SYN ? 1 : 0) + (f & TcpFlags.FIN ? 1 : 0);
  }

  /** Verifies the checksum over the pseudo-header of `src` → `dst` (4- or 16-byte addresses) and the whole segment. */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    return onesSum(this.buf, 0, this.buf.length, pseudoHeaderSum(src, dst, IpProtocol.TCP, this.buf.length)) === 0xffff;
  }
}

/**
 * A typed TCP segment. Options absent from the segment are null/false/empty. `payload` aliases the packet buffer
 * (no copy); copy it to keep it. `windowScale` is the raw value (a peer's > 14 is used as 14 by the socket layer).
 */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** TcpFlags bits. */
  flags: number;
  window: number;
  urgent: number;
  mss: number | null;
  windowScale: number | null;
  sackPermitted: boolean;
  sackRanges: readonly SackRange[];
  timestamp: TcpTimestamp | null;
  payload: Uint8Array;
}

export interface TcpEmitOptions {
  src: Uint8Array;
  dst: Uint8Array;
  /** Default 'full'. */
  checksum?: ChecksumMode;
}

function optionsLen(r: TcpRepr): number {
  let n = 0;
  if (r.mss !== null) n += 4;
  if (r.timestamp !== null) n += 12; // NOP NOP TS, or SACK-permitted + TS
  else if (r.sackPermitted) n += 4; // NOP NOP SACK-permitted
  if (r.windowScale !== null) n += 4; // NOP WS
  if (r.sackRanges.length > 0) n += 4 + 8 * r.sackRanges.length; // NOP NOP SACK
  return n;
}

const NO_PAYLOAD = new Uint8Array(0);

export const TcpRepr = {
  /** A segment without options (no MSS/WS/SACK-permitted/timestamps), empty unless `payload`/`sackRanges` are given. */
  plain(fields: Pick<TcpRepr, 'srcPort' | 'dstPort' | 'seq' | 'ack' | 'flags' | 'window'> & Partial<Pick<TcpRepr, 'sackRanges' | 'payload'>>): TcpRepr {
    return {
      srcPort: fields.srcPort,
      dstPort: fields.dstPort,
      seq: fields.seq,
      ack: fields.ack,
      flags: fields.flags,
      window: fields.window,
      urgent: 0,
      mss: null,
      windowScale: null,
      sackPermitted: false,
      sackRanges: fields.sackRanges ?? NO_SACK,
      timestamp: null,
      payload: fields.payload ?? NO_PAYLOAD,
    };
  },

  /** Never fails: TcpView.checked already walked the options. Does not verify the checksum (see verifyChecksum). */
  parse(view: TcpView): TcpRepr {
    const opts: ParsedOptions = { mss: null, windowScale: null, sackPermitted: false, sackRanges: NO_SACK, timestamp: null };
    const hl = view.headerLen;
    if (hl > TCP_HEADER_LEN) walkOptions(view.buf, TCP_HEADER_LEN, hl, opts);
    return {
      srcPort: view.srcPort,
      dstPort: view.dstPort,
      seq: view.seq,
      ack: view.ack,
      flags: view.flags,
      window: view.window,
      urgent: view.urgent,
      mss: opts.mss,
      windowScale: opts.windowScale,
      sackPermitted: opts.sackPermitted,
      sackRanges: opts.sackRanges,
      timestamp: opts.timestamp,
      payload: view.payload,
    };
  },

  /** Header length including options, as emit lays them out. */
  headerLen(repr: TcpRepr): number {
    return TCP_HEADER_LEN + optionsLen(repr);
  },

  /** Header + payload. */
  bufferLen(repr: TcpRepr): number {
    return TCP_HEADER_LEN + optionsLen(repr) + repr.payload.length;
  },

  /** Sequence space: payload + SYN + FIN. */
  segmentLen(repr: TcpRepr): number {
    return repr.payload.length + (repr.flags & TcpFlags.SYN ? 1 : 0) + (repr.flags & TcpFlags.FIN ? 1 : 0);
  },

  /**
   * Writes header, options and payload at buf[0, bufferLen) and returns bufferLen. Options use Linux's layout
   * (MSS; SACK-permitted+TS or NOP NOP TS or NOP NOP SACK-permitted; NOP WS; NOP NOP SACK), so Linux segments
   * round-trip byte for byte. The payload is not copied when it already sits at buf[headerLen]. RangeError when
   * the Repr cannot be carried (more than 40 option bytes, buffer too small) — a caller bug, not packet input.
   */
  emit(repr: TcpRepr, buf: Uint8Array, opts: TcpEmitOptions): number {
    const ol = optionsLen(repr);
    if (ol > TCP_MAX_OPTIONS_LEN) throw new RangeError(`TCP options need ${ol} bytes > ${TCP_MAX_OPTIONS_LEN}`);
    const hl = TCP_HEADER_LEN + ol;
    const total = hl + repr.payload.length;
    if (buf.length < total) throw new RangeError(`TCP segment needs ${total} bytes, buffer has ${buf.length}`);
    const dv = new DataView(buf.buffer, buf.byteOffset, total);
    dv.setUint16(F.SRC_PORT, repr.srcPort);
    dv.setUint16(F.DST_PORT, repr.dstPort);
    dv.setUint32(F.SEQ, repr.seq >>> 0);
    dv.setUint32(F.ACK, repr.ack >>> 0);
    buf[F.DATA_OFF] = (hl / 4) << 4;
    buf[F.FLAGS] = repr.flags;
    dv.setUint16(F.WINDOW, repr.window);
    dv.setUint16(F.CHECKSUM, 0);
    dv.setUint16(F.URGENT, repr.urgent);
    let i = TCP_HEADER_LEN;
    if (repr.mss !== null) {
      buf[i] = TcpOptionKind.MSS;
      buf[i + 1] = 4;
      dv.setUint16(i + 2, repr.mss);
      i += 4;
    }
    if (repr.timestamp !== null) {
      if (repr.sackPermitted) {
        buf[i] = TcpOptionKind.SACK_PERMITTED;
        buf[i + 1] = 2;
      } else {
        buf[i] = TcpOptionKind.NOP;
        buf[i + 1] = TcpOptionKind.NOP;
      }
      buf[i + 2] = TcpOptionKind.TIMESTAMPS;
      buf[i + 3] = 10;
      dv.setUint32(i + 4, repr.timestamp.tsVal >>> 0);
      dv.setUint32(i + 8, repr.timestamp.tsEcr >>> 0);
      i += 12;
    } else if (repr.sackPermitted) {
      buf[i] = TcpOptionKind.NOP;
      buf[i + 1] = TcpOptionKind.NOP;
      buf[i + 2] = TcpOptionKind.SACK_PERMITTED;
      buf[i + 3] = 2;
      i += 4;
    }
    if (repr.windowScale !== null) {
      buf[i] = TcpOptionKind.NOP;
      buf[i + 1] = TcpOptionKind.WINDOW_SCALE;
      buf[i + 2] = 3;
      buf[i + 3] = repr.windowScale;
      i += 4;
    }
    if (repr.sackRanges.length > 0) {
      buf[i] = TcpOptionKind.NOP;
      buf[i + 1] = TcpOptionKind.NOP;
      buf[i + 2] = TcpOptionKind.SACK;
      buf[i + 3] = 2 + 8 * repr.sackRanges.length;
      i += 4;
      for (const [left, right] of repr.sackRanges) {
        dv.setUint32(i, left >>> 0);
        dv.setUint32(i + 4, right >>> 0);
        i += 8;
      }
    }
    const p = repr.payload;
    if (p.length > 0 && !(p.buffer === buf.buffer && p.byteOffset === buf.byteOffset + hl)) buf.set(p, hl);
    writeChecksum(buf, dv, total, F.CHECKSUM, IpProtocol.TCP, opts.src, opts.dst, opts.checksum ?? 'full');
    return total;
  },
};
