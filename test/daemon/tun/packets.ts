// Just enough IPv4/UDP/TCP building and reading for the TUN tests (the real codecs live in src/netstack/wire).
// RFC 791 (IPv4 header), RFC 768 (UDP), RFC 9293 §3.1 (TCP header), RFC 1071 (Internet checksum).

export const ip4 = (s: string): number[] => s.split('.').map(Number);
export const ip4str = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** One's-complement sum of `b`, folded to 16 bits, not inverted. */
export function sum16(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudoSum(src: string, dst: string, proto: number, len: number): number {
  const p = new Uint8Array([...ip4(src), ...ip4(dst), 0, proto, len >> 8, len & 0xff]);
  return sum16(p);
}

function ipv4Header(src: string, dst: string, proto: number, payloadLen: number): Uint8Array {
  const h = new Uint8Array(20);
  const dv = new DataView(h.buffer);
  h[0] = 0x45;
  dv.setUint16(2, 20 + payloadLen);
  dv.setUint16(4, 0x1234); // identification
  dv.setUint16(6, 0x4000); // DF
  h[8] = 64;
  h[9] = proto;
  h.set(ip4(src), 12);
  h.set(ip4(dst), 16);
  dv.setUint16(10, ~sum16(h) & 0xffff);
  return h;
}

export interface UdpOptions {
  /** 'full': a real checksum; 'none': 0 (allowed for IPv4); 'partial': only the pseudo-header sum (for NEEDS_CSUM). */
  checksum?: 'full' | 'none' | 'partial';
}

export function udp4(src: string, sport: number, dst: string, dport: number, payload: Uint8Array, o: UdpOptions = {}): Uint8Array {
  const len = 8 + payload.length;
  const pkt = new Uint8Array(20 + len);
  pkt.set(ipv4Header(src, dst, 17, len), 0);
  const dv = new DataView(pkt.buffer);
  dv.setUint16(20, sport);
  dv.setUint16(22, dport);
  dv.setUint16(24, len);
  pkt.set(payload, 28);
  const mode = o.checksum ?? 'full';
  if (mode === 'full') dv.setUint16(26, ~sum16(pkt.subarray(20), pseudoSum(src, dst, 17, len)) & 0xffff || 0xffff);
  if (mode === 'partial') dv.setUint16(26, pseudoSum(src, dst, 17, len));
  return pkt;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

export function tcp4(
  src: string, sport: number, dst: string, dport: number,
  seg: { seq: number; ack: number; flags: number; window: number; mss?: number },
): Uint8Array {
  const opts = seg.mss ? [2, 4, seg.mss >> 8, seg.mss & 0xff] : [];
  const len = 20 + opts.length;
  const pkt = new Uint8Array(20 + len);
  pkt.set(ipv4Header(src, dst, 6, len), 0);
  const dv = new DataView(pkt.buffer);
  dv.setUint16(20, sport);
  dv.setUint16(22, dport);
  dv.setUint32(24, seg.seq >>> 0);
  dv.setUint32(28, seg.ack >>> 0);
  pkt[32] = (len / 4) << 4;
  pkt[33] = seg.flags;
  dv.setUint16(34, seg.window);
  pkt.set(opts, 40);
  dv.setUint16(36, ~sum16(pkt.subarray(20), pseudoSum(src, dst, 6, len)) & 0xffff);
  return pkt;
}

export interface Ipv4Summary {
  version: number;
  totalLength: number;
  proto: number;
  src: string;
  dst: string;
  /** UDP/TCP ports when present. */
  sport: number;
  dport: number;
  /** Transport header offset. */
  l4: number;
}

export function summarize(p: Uint8Array): Ipv4Summary {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const version = p[0]! >> 4;
  if (version !== 4 || p.length < 20) return { version, totalLength: 0, proto: -1, src: '', dst: '', sport: 0, dport: 0, l4: 0 };
  const l4 = (p[0]! & 0xf) * 4;
  const proto = p[9]!;
  const ports = (proto === 6 || proto === 17) && p.length >= l4 + 4;
  return {
    version,
    totalLength: dv.getUint16(2),
    proto,
    src: ip4str(p, 12),
    dst: ip4str(p, 16),
    sport: ports ? dv.getUint16(l4) : 0,
    dport: ports ? dv.getUint16(l4 + 2) : 0,
    l4,
  };
}
