// ICMPv4 (RFC 792, RFC 1191 for the next-hop MTU, RFC 1812 §5.2.7.1 for "administratively prohibited") and ICMPv6
// (RFC 4443): echo request/reply and the error messages the stack sends or must understand. Every message here is
// an 8-byte header (type, code, checksum, 4 type-specific bytes) and a body; errors quote the invoking packet.
// Invariant of the views: buf.length ≥ 8 and the message is the whole buf (pass the IP payload).
// ICMPv4's checksum covers the message only; ICMPv6's adds the IPv6 pseudo-header (RFC 4443 §2.3).
//
//   |     type      |     code      |          checksum             |
//   |  identifier / unused / MTU / pointer (4 bytes, by type)       |
//   |  echo data, or the invoking packet (as much as fits) …        |

import { onesSum, pseudoHeaderSum, finishChecksum, writeChecksum, type ChecksumMode } from './checksum';
import { malformed, type WireResult } from './errors';
import { IpProtocol } from './ip';

export const ICMP_HEADER_LEN = 8;

const F = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4, IDENT: 4, SEQ: 6, BODY: 8 } as const;

export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
} as const;

/** Destination Unreachable codes (RFC 792; 13 from RFC 1812 §5.2.7.1). */
export const Icmpv4Unreachable = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4,
  ADMIN_PROHIBITED: 13,
} as const;

export const Icmpv6Type = {
  DST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAM_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
} as const;

/** Destination Unreachable codes (RFC 4443 §3.1). */
export const Icmpv6Unreachable = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
  SOURCE_POLICY: 5,
  REJECT_ROUTE: 6,
} as const;

/** RFC 1812 §4.3.2.3: an ICMPv4 error (with its 20-byte IP header) stays within 576 bytes. */
export const ICMPV4_MAX_QUOTE = 576 - 20 - ICMP_HEADER_LEN;
/** RFC 4443 §2.4(c): an ICMPv6 error (with its 40-byte IPv6 header) stays within the minimum MTU, 1280 bytes. */
export const ICMPV6_MAX_QUOTE = 1280 - 40 - ICMP_HEADER_LEN;

/** Both ICMP versions share the layout; the view is the same, checksum verification differs. */
abstract class IcmpViewBase {
  readonly buf: Uint8Array;
  protected readonly dv: DataView;

  protected constructor(buf: Uint8Array) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get type(): number { return this.buf[F.TYPE]; }
  get code(): number { return this.buf[F.CODE]; }
  get checksum(): number { return this.dv.getUint16(F.CHECKSUM); }
  /** The 4 type-specific bytes as an unsigned 32-bit number. */
  get rest(): number { return this.dv.getUint32(F.REST); }
  /** Echo identifier. */
  get ident(): number { return this.dv.getUint16(F.IDENT); }
  /** Echo sequence number. */
  get seqNo(): number { return this.dv.getUint16(F.SEQ); }
  /** Echo data, or the quoted invoking packet of an error. */
  get body(): Uint8Array { return this.buf.subarray(F.BODY); }
}

export class Icmpv4View extends IcmpViewBase {
  static checked(buf: Uint8Array): WireResult<Icmpv4View> {
    if (buf.length < ICMP_HEADER_LEN) return malformed(`ICMPv4: ${buf.length} bytes, header needs ${ICMP_HEADER_LEN}`);
    return new Icmpv4View(buf);
  }

  /** Next-hop MTU of "fragmentation needed" (RFC 1191 §4). */
  get nextHopMtu(): number { return this.dv.getUint16(F.SEQ); }

  verifyChecksum(): boolean {
    return onesSum(this.buf) === 0xffff;
  }
}

export class Icmpv6View extends IcmpViewBase {
  static checked(buf: Uint8Array): WireResult<Icmpv6View> {
    if (buf.length < ICMP_HEADER_LEN) return malformed(`ICMPv6: ${buf.length} bytes, header needs ${ICMP_HEADER_LEN}`);
    return new Icmpv6View(buf);
  }

  /** MTU of Packet Too Big, pointer of Parameter Problem. */
  get mtu(): number { return this.rest; }
  get pointer(): number { return this.rest; }

  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    return onesSum(this.buf, 0, this.buf.length, pseudoHeaderSum(src, dst, IpProtocol.ICMPV6, this.buf.length)) === 0xffff;
  }
}

/** Typed ICMPv4 messages. `data`/`invoking` alias the packet buffer. Unknown types keep their raw fields. */
export type Icmpv4Repr =
  | { kind: 'echo-request' | 'echo-reply'; ident: number; seqNo: number; data: Uint8Array }
  /** `mtu` is the next-hop MTU for FRAG_NEEDED (RFC 1191), 0 otherwise; the other 2 bytes are sent as zero. */
  | { kind: 'dst-unreachable'; code: number; mtu: number; invoking: Uint8Array }
  | { kind: 'time-exceeded'; code: number; invoking: Uint8Array }
  | { kind: 'other'; type: number; code: number; rest: number; data: Uint8Array };

/** Typed ICMPv6 messages. `data`/`invoking` alias the packet buffer. Unknown types (NDP, MLD, …) keep raw fields. */
export type Icmpv6Repr =
  | { kind: 'echo-request' | 'echo-reply'; ident: number; seqNo: number; data: Uint8Array }
  | { kind: 'dst-unreachable'; code: number; invoking: Uint8Array }
  | { kind: 'packet-too-big'; mtu: number; invoking: Uint8Array }
  | { kind: 'time-exceeded'; code: number; invoking: Uint8Array }
  | { kind: 'param-problem'; code: number; pointer: number; invoking: Uint8Array }
  | { kind: 'other'; type: number; code: number; rest: number; data: Uint8Array };

/** The (type, code, rest, body) a Repr is written as. */
interface Raw { type: number; code: number; rest: number; body: Uint8Array }

function rawV4(r: Icmpv4Repr): Raw {
  switch (r.kind) {
    case 'echo-request': return { type: Icmpv4Type.ECHO_REQUEST, code: 0, rest: echoRest(r.ident, r.seqNo), body: r.data };
    case 'echo-reply': return { type: Icmpv4Type.ECHO_REPLY, code: 0, rest: echoRest(r.ident, r.seqNo), body: r.data };
    case 'dst-unreachable': return { type: Icmpv4Type.DST_UNREACHABLE, code: r.code, rest: r.mtu & 0xffff, body: r.invoking };
    case 'time-exceeded': return { type: Icmpv4Type.TIME_EXCEEDED, code: r.code, rest: 0, body: r.invoking };
    case 'other': return { type: r.type, code: r.code, rest: r.rest, body: r.data };
  }
}

function rawV6(r: Icmpv6Repr): Raw {
  switch (r.kind) {
    case 'echo-request': return { type: Icmpv6Type.ECHO_REQUEST, code: 0, rest: echoRest(r.ident, r.seqNo), body: r.data };
    case 'echo-reply': return { type: Icmpv6Type.ECHO_REPLY, code: 0, rest: echoRest(r.ident, r.seqNo), body: r.data };
    case 'dst-unreachable': return { type: Icmpv6Type.DST_UNREACHABLE, code: r.code, rest: 0, body: r.invoking };
    case 'packet-too-big': return { type: Icmpv6Type.PACKET_TOO_BIG, code: 0, rest: r.mtu, body: r.invoking };
    case 'time-exceeded': return { type: Icmpv6Type.TIME_EXCEEDED, code: r.code, rest: 0, body: r.invoking };
    case 'param-problem': return { type: Icmpv6Type.PARAM_PROBLEM, code: r.code, rest: r.pointer, body: r.invoking };
    case 'other': return { type: r.type, code: r.code, rest: r.rest, body: r.data };
  }
}

function echoRest(ident: number, seqNo: number): number {
  return (((ident & 0xffff) << 16) | (seqNo & 0xffff)) >>> 0;
}

/** Writes header + body with a zero checksum field; returns the DataView over the message. */
function writeRaw(raw: Raw, buf: Uint8Array): DataView {
  const total = ICMP_HEADER_LEN + raw.body.length;
  if (buf.length < total) throw new RangeError(`ICMP message needs ${total} bytes, buffer has ${buf.length}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, total);
  buf[F.TYPE] = raw.type;
  buf[F.CODE] = raw.code;
  dv.setUint16(F.CHECKSUM, 0);
  dv.setUint32(F.REST, raw.rest >>> 0);
  const b = raw.body;
  if (b.length > 0 && !(b.buffer === buf.buffer && b.byteOffset === buf.byteOffset + F.BODY)) buf.set(b, F.BODY);
  return dv;
}

export const Icmpv4Repr = {
  /**
   * Never fails. Echo and error messages with a code outside the ones this stack knows still parse by type;
   * only the type decides the kind. Unknown types become 'other'.
   */
  parse(view: Icmpv4View): Icmpv4Repr {
    switch (view.type) {
      case Icmpv4Type.ECHO_REQUEST:
        if (view.code === 0) return { kind: 'echo-request', ident: view.ident, seqNo: view.seqNo, data: view.body };
        break;
      case Icmpv4Type.ECHO_REPLY:
        if (view.code === 0) return { kind: 'echo-reply', ident: view.ident, seqNo: view.seqNo, data: view.body };
        break;
      case Icmpv4Type.DST_UNREACHABLE:
        if (view.rest >>> 16 === 0) return { kind: 'dst-unreachable', code: view.code, mtu: view.nextHopMtu, invoking: view.body };
        break;
      case Icmpv4Type.TIME_EXCEEDED:
        if (view.rest === 0) return { kind: 'time-exceeded', code: view.code, invoking: view.body };
        break;
    }
    return { kind: 'other', type: view.type, code: view.code, rest: view.rest, data: view.body };
  },

  bufferLen(repr: Icmpv4Repr): number {
    return ICMP_HEADER_LEN + rawV4(repr).body.length;
  },

  /** Writes the message with its checksum at buf[0, bufferLen); returns bufferLen. */
  emit(repr: Icmpv4Repr, buf: Uint8Array): number {
    const raw = rawV4(repr);
    const total = ICMP_HEADER_LEN + raw.body.length;
    const dv = writeRaw(raw, buf);
    dv.setUint16(F.CHECKSUM, finishChecksum(onesSum(buf, 0, total)));
    return total;
  },

  /** Destination Unreachable quoting `original` (an IPv4 packet) as far as RFC 1812's 576-byte bound allows. */
  unreachable(code: number, original: Uint8Array, mtu = 0): Icmpv4Repr {
    return { kind: 'dst-unreachable', code, mtu, invoking: original.subarray(0, ICMPV4_MAX_QUOTE) };
  },
};

export interface Icmpv6EmitOptions {
  src: Uint8Array;
  dst: Uint8Array;
  /** Default 'full'. */
  checksum?: ChecksumMode;
}

export const Icmpv6Repr = {
  /** Never fails; like Icmpv4Repr.parse, the type (and a zero code for echo) decides the kind. */
  parse(view: Icmpv6View): Icmpv6Repr {
    switch (view.type) {
      case Icmpv6Type.ECHO_REQUEST:
        if (view.code === 0) return { kind: 'echo-request', ident: view.ident, seqNo: view.seqNo, data: view.body };
        break;
      case Icmpv6Type.ECHO_REPLY:
        if (view.code === 0) return { kind: 'echo-reply', ident: view.ident, seqNo: view.seqNo, data: view.body };
        break;
      case Icmpv6Type.DST_UNREACHABLE:
        if (view.rest === 0) return { kind: 'dst-unreachable', code: view.code, invoking: view.body };
        break;
      case Icmpv6Type.PACKET_TOO_BIG:
        if (view.code === 0) return { kind: 'packet-too-big', mtu: view.mtu, invoking: view.body };
        break;
      case Icmpv6Type.TIME_EXCEEDED:
        if (view.rest === 0) return { kind: 'time-exceeded', code: view.code, invoking: view.body };
        break;
      case Icmpv6Type.PARAM_PROBLEM:
        return { kind: 'param-problem', code: view.code, pointer: view.pointer, invoking: view.body };
    }
    return { kind: 'other', type: view.type, code: view.code, rest: view.rest, data: view.body };
  },

  bufferLen(repr: Icmpv6Repr): number {
    return ICMP_HEADER_LEN + rawV6(repr).body.length;
  },

  /** Writes the message with its checksum over the pseudo-header at buf[0, bufferLen); returns bufferLen. */
  emit(repr: Icmpv6Repr, buf: Uint8Array, opts: Icmpv6EmitOptions): number {
    const raw = rawV6(repr);
    const total = ICMP_HEADER_LEN + raw.body.length;
    const dv = writeRaw(raw, buf);
    writeChecksum(buf, dv, total, F.CHECKSUM, IpProtocol.ICMPV6, opts.src, opts.dst, opts.checksum ?? 'full');
    return total;
  },

  /** Destination Unreachable quoting `original` (an IPv6 packet) up to the 1280-byte minimum MTU (RFC 4443 §2.4). */
  unreachable(code: number, original: Uint8Array): Icmpv6Repr {
    return { kind: 'dst-unreachable', code, invoking: original.subarray(0, ICMPV6_MAX_QUOTE) };
  },
};
