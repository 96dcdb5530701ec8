// UDP header (RFC 768): a checked view and a typed Repr; checksum over the IPv4/IPv6 pseudo-header.
// Invariant of UdpView: 8 ≤ length field ≤ buf.length; the datagram is buf[0, length) (bytes past it are ignored).
// Checksum 0 means "none" over IPv4 and is accepted; over IPv6 it is mandatory (RFC 8200 §8.1) and 0 fails verify.
//
//   |        source port            |       destination port        |
//   |           length              |           checksum            |

import { onesSum, pseudoHeaderSum, writeChecksum, type ChecksumMode } from './checksum';
import { malformed, unsupported, type WireResult } from './errors';
import { IpProtocol } from './ip';

export const UDP_HEADER_LEN = 8;

const F = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

export class UdpView {
  readonly buf: Uint8Array;
  private readonly dv: DataView;

  private constructor(buf: Uint8Array) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** `buf` is the IP payload. */
  static checked(buf: Uint8Array): WireResult<UdpView> {
    if (buf.length < UDP_HEADER_LEN) return malformed(`UDP: ${buf.length} bytes, header needs ${UDP_HEADER_LEN}`);
    const len = (buf[F.LENGTH] << 8) | buf[F.LENGTH + 1];
    if (len === 0) return unsupported('UDP: length 0 (jumbogram)');
    if (len < UDP_HEADER_LEN) return malformed(`UDP: length ${len} < ${UDP_HEADER_LEN}`);
    if (len > buf.length) return malformed(`UDP: length ${len} > ${buf.length} bytes received`);
    return new UdpView(buf);
  }

  get srcPort(): number { return this.dv.getUint16(F.SRC_PORT); }
  get dstPort(): number { return this.dv.getUint16(F.DST_PORT); }
  get length(): number { return this.dv.getUint16(F.LENGTH); }
  get checksum(): number { return this.dv.getUint16(F.CHECKSUM); }
  get payload(): Uint8Array { return this.buf.subarray(UDP_HEADER_LEN, this.length); }

  /** IPv4 (4-byte addresses) accepts checksum 0 as "none"; IPv6 does not. */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    if (this.checksum === 0) return src.length === 4;
    const len = this.length;
    return onesSum(this.buf, 0, len, pseudoHeaderSum(src, dst, IpProtocol.UDP, len)) === 0xffff;
  }
}

/** A typed UDP datagram; `payload` aliases the packet buffer. */
export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export interface UdpEmitOptions {
  src: Uint8Array;
  dst: Uint8Array;
  /** Default 'full'. 'none' writes 0, which only IPv4 allows. */
  checksum?: ChecksumMode;
}

export const UdpRepr = {
  parse(view: UdpView): UdpRepr {
    return { srcPort: view.srcPort, dstPort: view.dstPort, payload: view.payload };
  },

  bufferLen(repr: UdpRepr): number {
    return UDP_HEADER_LEN + repr.payload.length;
  },

  /** Writes header and payload at buf[0, bufferLen) and returns bufferLen. RangeError when it cannot fit. */
  emit(repr: UdpRepr, buf: Uint8Array, opts: UdpEmitOptions): number {
    const total = UDP_HEADER_LEN + repr.payload.length;
    if (total > 0xffff) throw new RangeError(`UDP datagram of ${total} bytes > 65535`);
    if (buf.length < total) throw new RangeError(`UDP datagram needs ${total} bytes, buffer has ${buf.length}`);
    const dv = new DataView(buf.buffer, buf.byteOffset, total);
    dv.setUint16(F.SRC_PORT, repr.srcPort);
    dv.setUint16(F.DST_PORT, repr.dstPort);
    dv.setUint16(F.LENGTH, total);
    dv.setUint16(F.CHECKSUM, 0);
    const p = repr.payload;
    if (p.length > 0 && !(p.buffer === buf.buffer && p.byteOffset === buf.byteOffset + UDP_HEADER_LEN)) buf.set(p, UDP_HEADER_LEN);
    writeChecksum(buf, dv, total, F.CHECKSUM, IpProtocol.UDP, opts.src, opts.dst, opts.checksum ?? 'full');
    return total;
  },
};
