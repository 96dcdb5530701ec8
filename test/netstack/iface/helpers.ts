// Helpers for Interface tests: build IPv4/IPv6 packets around a TcpRepr as the application would send them into the
// TUN, parse what the interface emits back (asserting both checksums), and an Interface that records its callbacks.
import { expect } from 'vitest';
import { Interface, type Flow, type InterfaceOptions } from '../../../src/netstack/iface';
import {
  IpProtocol, Ipv4Repr, Ipv4View, Ipv6Repr, Ipv6View, TcpFlags, TcpRepr, TcpView, ipv4FromText, ipv6FromText, isWireError,
} from '../../../src/netstack/wire/index';

export const { SYN, ACK, FIN, RST, PSH } = TcpFlags;
export const APP4 = ipv4FromText('10.0.0.2')!; // the application behind the TUN
export const DST4 = ipv4FromText('93.184.216.34')!; // the target it dialled
export const APP6 = ipv6FromText('fd00::2')!;
export const DST6 = ipv6FromText('2001:db8::80')!;
export const ISS = 0xfffffff0; // our ISN (injected), near 2^32
export const IRS = 0xfffffff8; // the application's ISN

export const SEG: TcpRepr = {
  srcPort: 49500, dstPort: 443, seq: IRS, ack: 0, flags: ACK, window: 65535, urgent: 0,
  mss: null, windowScale: null, sackPermitted: false, sackRanges: [], timestamp: null, payload: new Uint8Array(0),
};
export const SYN_SEG: TcpRepr = { ...SEG, flags: SYN, mss: 1460, windowScale: 7, sackPermitted: true };

/** An IP packet from `src` to `dst` (4- or 16-byte addresses) with `upper` as protocol `protocol`'s payload. */
export function ipPacket(src: Uint8Array, dst: Uint8Array, protocol: number, upper: Uint8Array, ident = 1): Uint8Array {
  if (src.length === 4) {
    const buf = new Uint8Array(20 + upper.length);
    Ipv4Repr.emit({ src, dst, protocol, payloadLen: upper.length, ttl: 64, dscp: 0, ecn: 0, ident, dontFrag: true,
      moreFrags: false, fragOffset: 0, options: new Uint8Array(0) }, buf);
    buf.set(upper, 20);
    return buf;
  }
  const buf = new Uint8Array(40 + upper.length);
  Ipv6Repr.emit({ src, dst, nextHeader: protocol, payloadLen: upper.length, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, buf);
  buf.set(upper, 40);
  return buf;
}

/** The application's segment `seg` as an IP packet app → dst. */
export function tcpPacket(seg: Partial<TcpRepr>, src: Uint8Array = APP4, dst: Uint8Array = DST4): Uint8Array {
  const r = { ...SEG, ...seg };
  const t = new Uint8Array(TcpRepr.bufferLen(r));
  TcpRepr.emit(r, t, { src, dst });
  return ipPacket(src, dst, IpProtocol.TCP, t);
}

export interface Parsed {
  family: 4 | 6;
  src: Uint8Array;
  dst: Uint8Array;
  ttl: number;
  ident: number;
  seg: TcpRepr;
}

/** Parses an emitted packet with the wire views; fails the test unless IP and TCP are valid and checksums verify. */
export function parse(p: Uint8Array): Parsed {
  if (p[0] >> 4 === 4) {
    const ip = Ipv4View.checked(p);
    if (isWireError(ip)) throw new Error(ip.toString());
    expect(ip.protocol).toBe(IpProtocol.TCP);
    expect(ip.totalLen).toBe(p.length);
    const tcp = TcpView.checked(ip.payload);
    if (isWireError(tcp)) throw new Error(tcp.toString());
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    return { family: 4, src: ip.src.slice(), dst: ip.dst.slice(), ttl: ip.ttl, ident: ip.ident, seg: copySeg(TcpRepr.parse(tcp)) };
  }
  const ip = Ipv6View.checked(p);
  if (isWireError(ip)) throw new Error(ip.toString());
  expect(ip.upperProtocol).toBe(IpProtocol.TCP);
  const tcp = TcpView.checked(ip.upperPayload);
  if (isWireError(tcp)) throw new Error(tcp.toString());
  expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
  return { family: 6, src: ip.src.slice(), dst: ip.dst.slice(), ttl: ip.hopLimit, ident: 0, seg: copySeg(TcpRepr.parse(tcp)) };
}

function copySeg(s: TcpRepr): TcpRepr {
  return { ...s, payload: s.payload.slice(), sackRanges: [...s.sackRanges] };
}

export interface Harness {
  iface: Interface;
  connects: Flow[];
  closes: Flow[];
  /** poll(t) and parse everything emitted. */
  out(t?: number): Parsed[];
  /** poll(t) and the raw packets. */
  raw(t?: number): Uint8Array[];
}

export function harness(opts: InterfaceOptions = {}): Harness {
  const connects: Flow[] = [];
  const closes: Flow[] = [];
  const iface = new Interface({
    isn: () => ISS,
    onConnect: (f) => connects.push(f),
    onClose: (f) => closes.push(f),
    ...opts,
  });
  const raw = (t = 0): Uint8Array[] => {
    const got: Uint8Array[] = [];
    iface.poll(t, (p) => got.push(p));
    return got;
  };
  return { iface, connects, closes, raw, out: (t = 0) => raw(t).map(parse) };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | null): string => (b === null ? '' : new TextDecoder().decode(b));
