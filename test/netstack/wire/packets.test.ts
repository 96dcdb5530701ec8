// Hand-built captures (Linux option layouts, checksums computed independently with a Python script):
// check → parse → emit round-trips byte for byte, fields read as expected, checksums verify, a flipped bit is caught,
// and each malformation gives its WireError reason (the code is always ZKS_ERR_MALFORMED_PACKET).
import { describe, expect, it } from 'vitest';
import {
  Icmpv4Repr, Icmpv4Unreachable, Icmpv4View, Icmpv6Repr, Icmpv6View, IpProtocol, Ipv4Repr, Ipv4View, Ipv6Repr,
  Ipv6View, TcpFlags, TcpRepr, TcpView, UdpRepr, UdpView, ipv4FromText, ipv4FromU32, ipv4ToText, ipv4ToU32,
  WireError, ipv6FromText, ipv6ToText, onesSum, seqAdd, verifyChecksum,
} from '../../../src/netstack/wire/index';
import { ZksError } from '../../../src/errors/zks-error';
import { expectWireError, hex, ok, toHex } from './helpers';

// 192.168.0.104:49152 → 192.168.0.1:443 SYN, seq 0xfffffff0; MSS 1460, SACK-permitted, TS, NOP, WS 7.
const IPV4_TCP_SYN = hex(
  '45 00 00 3c 1c 46 40 00 40 06 9c bc c0 a8 00 68 c0 a8 00 01 c0 00 01 bb ff ff ff f0 00 00 00 00' +
  'a0 02 fa f0 79 e1 00 00 02 04 05 b4 04 02 08 0a 00 9c 8f 2b 00 00 00 00 01 03 03 07',
);
// [2001:db8::2]:443 → [2001:db8::1]:49152 SYN-ACK, flow label 0x5d2a1; MSS 1432, SACK-permitted, TS, NOP, WS 9.
const IPV6_TCP_SYNACK = hex(
  '60 05 d2 a1 00 28 06 40 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 20 01 0d b8 00 00 00 00' +
  '00 00 00 00 00 00 00 01 01 bb c0 00 7f ff ff ff ff ff ff f1 a0 12 fe 88 c6 1f 00 00 02 04 05 98' +
  '04 02 08 0a 1a 2b 3c 4d 00 9c 8f 2b 01 03 03 09',
);
// PSH|ACK with NOP NOP TS, NOP NOP SACK [0x10, 0x20), 18 bytes of HTTP.
const IPV4_TCP_DATA_SACK = hex(
  '45 00 00 52 1c 47 40 00 40 06 9c a5 c0 a8 00 68 c0 a8 00 01 c0 00 01 bb ff ff ff f1 80 00 00 00' +
  'b0 18 01 f5 b5 46 00 00 01 01 08 0a 00 9c 90 00 1a 2b 3c 50 01 01 05 0a 00 00 00 10 00 00 00 20' +
  '47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a 0d 0a',
);
// 10.0.0.2:53000 → 10.0.0.1:53, DNS query example.com A.
const IPV4_UDP_DNS = hex(
  '45 00 00 39 be ef 00 00 40 11 a7 c2 0a 00 00 02 0a 00 00 01 cf 08 00 35 00 25 3a c2 12 34 01 00' +
  '00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01',
);
// ping 10.0.0.2 → 10.0.0.1, id 0x1c46 seq 1, 16 data bytes.
const IPV4_ICMP_ECHO = hex(
  '45 00 00 2c 42 42 40 00 40 01 e4 8c 0a 00 00 02 0a 00 00 01 08 00 22 f8 1c 46 00 01 10 11 12 13' +
  '14 15 16 17 18 19 1a 1b 1c 1d 1e 1f',
);
// Port unreachable 10.0.0.1 → 10.0.0.2 (TOS 0xc0, like Linux) quoting the whole DNS query above.
const IPV4_ICMP_PORT_UNREACH = hex(
  '45 c0 00 55 00 01 00 00 40 01 65 e5 0a 00 00 01 0a 00 00 02 03 03 11 36 00 00 00 00 45 00 00 39' +
  'be ef 00 00 40 11 a7 c2 0a 00 00 02 0a 00 00 01 cf 08 00 35 00 25 3a c2 12 34 01 00 00 01 00 00' +
  '00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01',
);
// ICMPv6 echo request 2001:db8::2 → 2001:db8::1, id 0x0a0b seq 7, "zks-ping".
const IPV6_ICMP_ECHO = hex(
  '60 00 00 00 00 10 3a 40 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 20 01 0d b8 00 00 00 00' +
  '00 00 00 00 00 00 00 01 80 00 4d c4 0a 0b 00 07 7a 6b 73 2d 70 69 6e 67',
);

/** Flips each bit of buf[from, to) in turn and expects `verify` to fail every time. */
function expectEveryFlipCaught(buf: Uint8Array, from: number, to: number, verify: (b: Uint8Array) => boolean): void {
  expect(verify(buf)).toBe(true);
  for (let bit = from * 8; bit < to * 8; bit++) {
    const c = buf.slice();
    c[bit >> 3] ^= 1 << (bit & 7);
    expect(verify(c), `bit ${bit}`).toBe(false);
  }
}

/** A view that fails checked() counts as "does not verify" (a flipped bit may break a length field first). */
function verifies<V>(r: V | WireError, check: (v: V) => boolean): boolean {
  return !(r instanceof WireError) && check(r);
}

/** Re-emits an IPv4 packet from its Reprs (the upper layer by `emitUpper`) and returns the bytes. */
function reemitIpv4(pkt: Uint8Array, emitUpper: (ip: Ipv4View, out: Uint8Array) => number): Uint8Array {
  const ip = ok(Ipv4View.checked(pkt));
  const repr = Ipv4Repr.parse(ip);
  const out = new Uint8Array(pkt.length);
  const hl = Ipv4Repr.emit(repr, out);
  const n = emitUpper(ip, out.subarray(hl));
  expect(hl + n).toBe(ip.totalLen);
  return out;
}

describe('IPv4', () => {
  it('reads the SYN header fields', () => {
    const ip = ok(Ipv4View.checked(IPV4_TCP_SYN));
    expect([ip.version, ip.headerLen, ip.totalLen, ip.ident, ip.ttl, ip.protocol]).toEqual([4, 20, 60, 0x1c46, 64, IpProtocol.TCP]);
    expect([ip.dontFrag, ip.moreFrags, ip.fragOffset, ip.isFragment, ip.dscp, ip.ecn]).toEqual([true, false, 0, false, 0, 0]);
    expect(ip.checksum).toBe(0x9cbc);
    expect(ipv4ToText(ip.src)).toBe('192.168.0.104');
    expect(ipv4ToText(ip.dst)).toBe('192.168.0.1');
    expect(ip.srcU32).toBe(0xc0a80068);
    expect(ip.payload.length).toBe(40);
    expect(ip.options.length).toBe(0);
  });

  it('header round-trips byte for byte and a flipped header bit is a bad checksum', () => {
    for (const pkt of [IPV4_TCP_SYN, IPV4_UDP_DNS, IPV4_ICMP_ECHO, IPV4_ICMP_PORT_UNREACH]) {
      const out = new Uint8Array(20);
      Ipv4Repr.emit(Ipv4Repr.parse(ok(Ipv4View.checked(pkt))), out);
      expect(toHex(out)).toBe(toHex(pkt.subarray(0, 20)));
      expectEveryFlipCaught(pkt, 0, 20, (b) => onesSum(b, 0, 20) === 0xffff);
    }
    const bad = IPV4_TCP_SYN.slice();
    bad[8] ^= 0x01; // TTL
    expectWireError(Ipv4View.checked(bad), 'bad-checksum');
    expect(Ipv4View.checked(bad, { verifyChecksum: false })).toBeInstanceOf(Ipv4View);
  });

  it('keeps options and ignores link padding past the total length', () => {
    // IHL 6 with a 4-byte option (NOP NOP NOP EOL), then 4 bytes payload, then 6 bytes of padding.
    const repr: Ipv4Repr = {
      src: ipv4FromText('10.1.2.3')!, dst: ipv4FromText('10.3.2.1')!, protocol: 253, payloadLen: 4, ttl: 1,
      dscp: 46, ecn: 1, ident: 0xabcd, dontFrag: false, moreFrags: true, fragOffset: 1480, options: hex('01 01 01 00'),
    };
    const buf = new Uint8Array(24 + 4 + 6).fill(0xee);
    expect(Ipv4Repr.emit(repr, buf)).toBe(24);
    const ip = ok(Ipv4View.checked(buf));
    expect(ip.headerLen).toBe(24);
    expect(ip.payload).toEqual(new Uint8Array(4).fill(0xee));
    expect(ip.packet.length).toBe(28);
    expect(ip.isFragment).toBe(true);
    expect(Ipv4Repr.parse(ip)).toEqual(repr);
  });

  it('rejects malformed headers (reason "malformed")', () => {
    expectWireError(Ipv4View.checked(IPV4_TCP_SYN.subarray(0, 19)), 'malformed', /header needs 20/);
    expectWireError(Ipv4View.checked(IPV4_TCP_SYN.subarray(0, 59)), 'malformed', /total length 60 > 59/);
    const v6 = IPV4_TCP_SYN.slice();
    v6[0] = 0x65;
    expectWireError(Ipv4View.checked(v6), 'malformed', /version 6/);
    const ihl4 = IPV4_TCP_SYN.slice();
    ihl4[0] = 0x44;
    expectWireError(Ipv4View.checked(ihl4), 'malformed', /IHL 4/);
    const short = IPV4_TCP_SYN.slice();
    short[3] = 19; // total length < header length
    expectWireError(Ipv4View.checked(short), 'malformed', /total length 19 < header length 20/);
  });

  it('address helpers', () => {
    expect(ipv4ToU32(ipv4FromText('255.1.2.3')!)).toBe(0xff010203);
    expect(ipv4ToText(ipv4FromU32(0xff010203))).toBe('255.1.2.3');
    expect(ipv4FromText('1.2.3')).toBeNull();
  });
});

describe('IPv4/TCP', () => {
  it('SYN: flags, seq near the wrap, every option', () => {
    const ip = ok(Ipv4View.checked(IPV4_TCP_SYN));
    const tcp = ok(TcpView.checked(ip.payload));
    expect([tcp.srcPort, tcp.dstPort, tcp.seq, tcp.ack, tcp.headerLen, tcp.window, tcp.urgent]).toEqual([49152, 443, 0xfffffff0, 0, 40, 64240, 0]);
    expect([tcp.syn, tcp.ackFlag, tcp.fin, tcp.rst, tcp.psh, tcp.urg, tcp.ece, tcp.cwr]).toEqual([true, false, false, false, false, false, false, false]);
    expect(tcp.segmentLen).toBe(1);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    const r = TcpRepr.parse(tcp);
    expect(r).toEqual({
      srcPort: 49152, dstPort: 443, seq: 0xfffffff0, ack: 0, flags: TcpFlags.SYN, window: 64240, urgent: 0,
      mss: 1460, windowScale: 7, sackPermitted: true, sackRanges: [], timestamp: { tsVal: 0x009c8f2b, tsEcr: 0 },
      payload: new Uint8Array(0),
    });
    expect(seqAdd(r.seq, TcpRepr.segmentLen(r))).toBe(0xfffffff1);
  });

  it('SYN and SACK data segment round-trip byte for byte', () => {
    for (const pkt of [IPV4_TCP_SYN, IPV4_TCP_DATA_SACK]) {
      const out = reemitIpv4(pkt, (ip, o) => TcpRepr.emit(TcpRepr.parse(ok(TcpView.checked(ip.payload))), o, { src: ip.src, dst: ip.dst }));
      expect(toHex(out)).toBe(toHex(pkt));
    }
  });

  it('data segment: SACK block, timestamps and payload', () => {
    const ip = ok(Ipv4View.checked(IPV4_TCP_DATA_SACK));
    const tcp = ok(TcpView.checked(ip.payload));
    const r = TcpRepr.parse(tcp);
    expect(r.flags).toBe(TcpFlags.PSH | TcpFlags.ACK);
    expect(r.ack).toBe(0x80000000);
    expect(r.sackRanges).toEqual([[0x10, 0x20]]);
    expect(r.timestamp).toEqual({ tsVal: 0x009c9000, tsEcr: 0x1a2b3c50 });
    expect(new TextDecoder().decode(r.payload)).toBe('GET / HTTP/1.1\r\n\r\n');
    expect(tcp.segmentLen).toBe(18);
  });

  it('every flipped bit of the segment (or a changed address) fails verifyChecksum', () => {
    const ip = ok(Ipv4View.checked(IPV4_TCP_DATA_SACK));
    const seg = ip.payload.slice();
    expectEveryFlipCaught(seg, 0, seg.length, (b) => verifies(TcpView.checked(b), (v) => v.verifyChecksum(ip.src, ip.dst)));
    expect(ok(TcpView.checked(seg)).verifyChecksum(ipv4FromText('192.168.0.105')!, ip.dst)).toBe(false);
  });

  it("'pseudo' writes the uncomplemented pseudo-header sum (checksum offload); 'none' writes 0", () => {
    const ip = ok(Ipv4View.checked(IPV4_TCP_SYN));
    const r = TcpRepr.parse(ok(TcpView.checked(ip.payload)));
    const out = new Uint8Array(40);
    TcpRepr.emit(r, out, { src: ip.src, dst: ip.dst, checksum: 'pseudo' });
    expect((out[16] << 8) | out[17]).toBe(onesSum(hex('c0 a8 00 68 c0 a8 00 01 00 06 00 28')));
    TcpRepr.emit(r, out, { src: ip.src, dst: ip.dst, checksum: 'none' });
    expect((out[16] << 8) | out[17]).toBe(0);
  });

  it('option malformations are "malformed"; unknown options are skipped', () => {
    const withOpts = (opts: string) => {
      const o = hex(opts);
      const seg = new Uint8Array(20 + o.length);
      seg.set(IPV4_TCP_SYN.subarray(20, 40));
      seg[12] = ((20 + o.length) / 4) << 4;
      seg.set(o, 20);
      return seg;
    };
    expectWireError(TcpView.checked(withOpts('02 03 05 b4')), 'malformed', /MSS option length 3/);
    expectWireError(TcpView.checked(withOpts('01 01 01 02')), 'malformed', /no length byte/);
    expectWireError(TcpView.checked(withOpts('fd 01 00 00')), 'malformed', /length 1/);
    expectWireError(TcpView.checked(withOpts('fd 08 00 00')), 'malformed', /runs past/);
    expectWireError(TcpView.checked(withOpts('03 04 07 00')), 'malformed', /window scale option length 4/);
    expectWireError(TcpView.checked(withOpts('05 06 00 00 00 00 01 01')), 'malformed', /SACK option length 6/);
    expectWireError(TcpView.checked(withOpts('08 0a 00 00 00 01 00 00 00')), 'malformed');
    expectWireError(TcpView.checked(withOpts('04 03 00 00')), 'malformed', /SACK-permitted option length 3/);
    // Unknown kind 0xfd (RFC 6994 experiment) of 4 bytes, then MSS; after EOL anything goes.
    const r = TcpRepr.parse(ok(TcpView.checked(withOpts('fd 04 ab cd 02 04 02 18 00 ff ff ff'))));
    expect(r.mss).toBe(0x218);
    expect(r.windowScale).toBeNull();
  });

  it('header length errors', () => {
    const seg = IPV4_TCP_SYN.slice(20);
    expectWireError(TcpView.checked(seg.subarray(0, 19)), 'malformed', /header needs 20/);
    expectWireError(TcpView.checked(seg.subarray(0, 39)), 'malformed', /header length 40 > 39/);
    seg[12] = 0x40;
    expectWireError(TcpView.checked(seg), 'malformed', /data offset 4/);
  });

  it('emit refuses options that do not fit in 40 bytes', () => {
    const r: TcpRepr = {
      srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TcpFlags.ACK, window: 0, urgent: 0, mss: null, windowScale: null,
      sackPermitted: false, timestamp: { tsVal: 1, tsEcr: 2 }, sackRanges: [[1, 2], [3, 4], [5, 6], [7, 8]], payload: new Uint8Array(0),
    };
    expect(() => TcpRepr.emit(r, new Uint8Array(100), { src: new Uint8Array(4), dst: new Uint8Array(4) })).toThrow(RangeError);
  });
});

describe('IPv6', () => {
  it('SYN-ACK: fixed header, TCP over the IPv6 pseudo-header, byte-for-byte round trip', () => {
    const ip = ok(Ipv6View.checked(IPV6_TCP_SYNACK));
    expect([ip.version, ip.trafficClass, ip.flowLabel, ip.payloadLen, ip.nextHeader, ip.hopLimit]).toEqual([6, 0, 0x5d2a1, 40, 6, 64]);
    expect([ip.upperProtocol, ip.upperOffset, ip.isFragment, ip.hasExtensionHeaders]).toEqual([IpProtocol.TCP, 40, false, false]);
    expect(ipv6ToText(ip.src)).toBe('2001:db8::2');
    expect(ipv6ToText(ip.dst)).toBe('2001:db8::1');
    const tcp = ok(TcpView.checked(ip.upperPayload));
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    const r = TcpRepr.parse(tcp);
    expect([r.flags, r.seq, r.ack, r.mss, r.windowScale, r.sackPermitted]).toEqual([TcpFlags.SYN | TcpFlags.ACK, 0x7fffffff, 0xfffffff1, 1432, 9, true]);
    const out = new Uint8Array(IPV6_TCP_SYNACK.length);
    Ipv6Repr.emit(Ipv6Repr.parse(ip), out);
    TcpRepr.emit(r, out.subarray(40), { src: ip.src, dst: ip.dst });
    expect(toHex(out)).toBe(toHex(IPV6_TCP_SYNACK));
    const seg = ip.upperPayload.slice();
    expectEveryFlipCaught(seg, 0, seg.length, (b) => verifies(TcpView.checked(b), (v) => v.verifyChecksum(ip.src, ip.dst)));
  });

  /** The SYN-ACK with extension headers inserted between the fixed header and TCP. */
  function withExtensions(exts: Uint8Array, firstNext: number): Uint8Array {
    const tcp = IPV6_TCP_SYNACK.subarray(40);
    const pkt = new Uint8Array(40 + exts.length + tcp.length);
    pkt.set(IPV6_TCP_SYNACK.subarray(0, 40));
    pkt.set(exts, 40);
    pkt.set(tcp, 40 + exts.length);
    pkt[6] = firstNext;
    new DataView(pkt.buffer).setUint16(4, exts.length + tcp.length);
    return pkt;
  }

  it('walks Hop-by-Hop, Destination Options, Routing and an atomic Fragment to reach TCP', () => {
    const exts = hex(
      '3c 00 01 04 00 00 00 00' + // Hop-by-Hop → Dest Opts; PadN(4)
      '2b 01 01 0c 00 00 00 00 00 00 00 00 00 00 00 00' + // Dest Opts (16 bytes) → Routing; PadN(12)
      '2c 00 00 00 00 00 00 00' + // Routing type 0, segments left 0 → Fragment
      '06 00 00 00 12 34 56 78', // atomic Fragment (offset 0, M 0) → TCP
    );
    const pkt = withExtensions(exts, IpProtocol.HOP_BY_HOP);
    const ip = ok(Ipv6View.checked(pkt));
    expect([ip.upperProtocol, ip.upperOffset, ip.isFragment, ip.hasExtensionHeaders]).toEqual([IpProtocol.TCP, 40 + 40, false, true]);
    expect(ok(TcpView.checked(ip.upperPayload)).verifyChecksum(ip.src, ip.dst)).toBe(true);
  });

  it('flags a real fragment and stops there; refuses Hop-by-Hop after another header; truncation is malformed', () => {
    const frag = ok(Ipv6View.checked(withExtensions(hex('06 00 00 01 12 34 56 78'), IpProtocol.IPV6_FRAG)));
    expect([frag.isFragment, frag.upperProtocol, frag.upperOffset]).toEqual([true, IpProtocol.TCP, 48]);
    expectWireError(Ipv6View.checked(withExtensions(hex('00 00 01 04 00 00 00 00 06 00 01 04 00 00 00 00'), IpProtocol.IPV6_OPTS)),
      'malformed', /Hop-by-Hop header not first/);
    expectWireError(Ipv6View.checked(withExtensions(hex('06 0a 01 04 00 00 00 00'), IpProtocol.IPV6_OPTS)), 'malformed', /truncated/);
    const nine = new Uint8Array(9 * 8);
    for (let i = 0; i < 9; i++) nine[i * 8] = i === 8 ? 6 : IpProtocol.IPV6_OPTS;
    expectWireError(Ipv6View.checked(withExtensions(nine, IpProtocol.IPV6_OPTS)), 'unsupported', /more than 8/);
  });

  it('fixed-header errors', () => {
    expectWireError(Ipv6View.checked(IPV6_TCP_SYNACK.subarray(0, 39)), 'malformed', /header needs 40/);
    expectWireError(Ipv6View.checked(IPV6_TCP_SYNACK.subarray(0, 79)), 'malformed', /payload length 40 > 39/);
    expectWireError(Ipv6View.checked(IPV4_TCP_SYN), 'malformed', /version 4/);
    expect(ipv6FromText('2001:db8::1')).toEqual(IPV6_TCP_SYNACK.subarray(24, 40));
  });

  it('ICMPv6 echo request: fields, checksum over the pseudo-header, round trip', () => {
    const ip = ok(Ipv6View.checked(IPV6_ICMP_ECHO));
    expect(ip.upperProtocol).toBe(IpProtocol.ICMPV6);
    const icmp = ok(Icmpv6View.checked(ip.upperPayload));
    expect(icmp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    const r = Icmpv6Repr.parse(icmp);
    expect(r).toEqual({ kind: 'echo-request', ident: 0x0a0b, seqNo: 7, data: new TextEncoder().encode('zks-ping') });
    const out = new Uint8Array(IPV6_ICMP_ECHO.length);
    Ipv6Repr.emit(Ipv6Repr.parse(ip), out);
    Icmpv6Repr.emit(r, out.subarray(40), { src: ip.src, dst: ip.dst });
    expect(toHex(out)).toBe(toHex(IPV6_ICMP_ECHO));
    expectEveryFlipCaught(ip.upperPayload.slice(), 0, 16, (b) => verifies(Icmpv6View.checked(b), (v) => v.verifyChecksum(ip.src, ip.dst)));
  });

  it('ICMPv6 errors: unreachable, packet too big, parameter problem', () => {
    const src = ipv6FromText('2001:db8::1')!;
    const dst = ipv6FromText('2001:db8::2')!;
    const cases: Icmpv6Repr[] = [
      Icmpv6Repr.unreachable(4, IPV6_TCP_SYNACK),
      { kind: 'packet-too-big', mtu: 1280, invoking: IPV6_TCP_SYNACK },
      { kind: 'param-problem', code: 1, pointer: 40, invoking: IPV6_TCP_SYNACK },
      { kind: 'time-exceeded', code: 0, invoking: IPV6_TCP_SYNACK },
    ];
    for (const r of cases) {
      const out = new Uint8Array(Icmpv6Repr.bufferLen(r));
      Icmpv6Repr.emit(r, out, { src, dst });
      const v = ok(Icmpv6View.checked(out));
      expect(v.verifyChecksum(src, dst)).toBe(true);
      expect(Icmpv6Repr.parse(v)).toEqual(r);
    }
  });
});

describe('IPv4/UDP', () => {
  it('DNS query: fields, checksum, round trip', () => {
    const ip = ok(Ipv4View.checked(IPV4_UDP_DNS));
    expect([ip.protocol, ip.dontFrag, ip.ident]).toEqual([IpProtocol.UDP, false, 0xbeef]);
    const udp = ok(UdpView.checked(ip.payload));
    expect([udp.srcPort, udp.dstPort, udp.length, udp.checksum]).toEqual([53000, 53, 37, 0x3ac2]);
    expect(udp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    expect(toHex(udp.payload.subarray(0, 4))).toBe('12 34 01 00');
    const out = reemitIpv4(IPV4_UDP_DNS, (v, o) => UdpRepr.emit(UdpRepr.parse(ok(UdpView.checked(v.payload))), o, { src: v.src, dst: v.dst }));
    expect(toHex(out)).toBe(toHex(IPV4_UDP_DNS));
    expectEveryFlipCaught(ip.payload.slice(), 0, 37, (b) => verifies(UdpView.checked(b), (v) => v.verifyChecksum(ip.src, ip.dst)));
  });

  it('checksum 0 means none over IPv4, is invalid over IPv6; a computed 0 is sent as 0xffff', () => {
    const seg = IPV4_UDP_DNS.slice(20);
    seg[6] = 0;
    seg[7] = 0;
    const v = ok(UdpView.checked(seg));
    expect(v.verifyChecksum(new Uint8Array(4), new Uint8Array(4))).toBe(true);
    expect(v.verifyChecksum(new Uint8Array(16), new Uint8Array(16))).toBe(false);
    // Payload chosen so that the sum is 0xffff: header words + pseudo + payload word.
    const src = new Uint8Array(4);
    const dst = new Uint8Array(4);
    const probe = new Uint8Array(10);
    UdpRepr.emit({ srcPort: 0, dstPort: 0, payload: new Uint8Array(2) }, probe, { src, dst });
    const partial = 0xffff - (~((probe[6] << 8) | probe[7]) & 0xffff);
    const out = new Uint8Array(10);
    UdpRepr.emit({ srcPort: 0, dstPort: 0, payload: Uint8Array.of(partial >> 8, partial & 0xff) }, out, { src, dst });
    expect((out[6] << 8) | out[7]).toBe(0xffff);
    expect(ok(UdpView.checked(out)).verifyChecksum(src, dst)).toBe(true);
  });

  it('length errors', () => {
    const seg = IPV4_UDP_DNS.slice(20);
    expectWireError(UdpView.checked(seg.subarray(0, 7)), 'malformed', /header needs 8/);
    expectWireError(UdpView.checked(seg.subarray(0, 36)), 'malformed', /length 37 > 36/);
    seg[5] = 7;
    expectWireError(UdpView.checked(seg), 'malformed', /length 7 < 8/);
    seg[5] = 0;
    expectWireError(UdpView.checked(seg), 'unsupported', /jumbogram/);
  });
});

describe('ICMPv4', () => {
  it('echo request: fields, checksum, round trip, echo reply built from it', () => {
    const ip = ok(Ipv4View.checked(IPV4_ICMP_ECHO));
    const icmp = ok(Icmpv4View.checked(ip.payload));
    expect([icmp.type, icmp.code, icmp.ident, icmp.seqNo, icmp.checksum]).toEqual([8, 0, 0x1c46, 1, 0x22f8]);
    expect(icmp.verifyChecksum()).toBe(true);
    const r = Icmpv4Repr.parse(icmp);
    expect(r).toEqual({ kind: 'echo-request', ident: 0x1c46, seqNo: 1, data: hex('10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f') });
    const out = reemitIpv4(IPV4_ICMP_ECHO, (v, o) => Icmpv4Repr.emit(Icmpv4Repr.parse(ok(Icmpv4View.checked(v.payload))), o));
    expect(toHex(out)).toBe(toHex(IPV4_ICMP_ECHO));
    expectEveryFlipCaught(ip.payload.slice(), 0, 24, (b) => verifies(Icmpv4View.checked(b), (v) => v.verifyChecksum()));
    if (r.kind !== 'echo-request') throw new Error('kind');
    const reply = new Uint8Array(24);
    Icmpv4Repr.emit({ ...r, kind: 'echo-reply' }, reply);
    expect(reply[0]).toBe(0);
    expect(verifyChecksum(reply)).toBe(true);
  });

  it('port unreachable quoting the DNS query: byte-for-byte, and the quote parses as the original', () => {
    const ip = ok(Ipv4View.checked(IPV4_ICMP_PORT_UNREACH));
    expect(ip.dscp).toBe(0x30);
    const icmp = ok(Icmpv4View.checked(ip.payload));
    expect(icmp.verifyChecksum()).toBe(true);
    const r = Icmpv4Repr.parse(icmp);
    expect(r.kind).toBe('dst-unreachable');
    if (r.kind !== 'dst-unreachable') throw new Error('kind');
    expect(r.code).toBe(Icmpv4Unreachable.PORT);
    expect(toHex(r.invoking)).toBe(toHex(IPV4_UDP_DNS));
    const quoted = ok(Ipv4View.checked(r.invoking));
    expect(ok(UdpView.checked(quoted.payload)).dstPort).toBe(53);
    // The stack builds the same message from the original packet.
    const built = Icmpv4Repr.unreachable(Icmpv4Unreachable.PORT, IPV4_UDP_DNS);
    const out = new Uint8Array(Icmpv4Repr.bufferLen(built));
    Icmpv4Repr.emit(built, out);
    expect(toHex(out)).toBe(toHex(ip.payload));
  });

  it('quotes at most 548 bytes (RFC 1812: the error stays within 576); admin-prohibited and frag-needed carry their fields', () => {
    const big = new Uint8Array(1500);
    expect(Icmpv4Repr.unreachable(Icmpv4Unreachable.ADMIN_PROHIBITED, big).kind).toBe('dst-unreachable');
    const r = Icmpv4Repr.unreachable(Icmpv4Unreachable.FRAG_NEEDED, big, 1400);
    expect(Icmpv4Repr.bufferLen(r)).toBe(556);
    const out = new Uint8Array(556);
    Icmpv4Repr.emit(r, out);
    const v = ok(Icmpv4View.checked(out));
    expect([v.type, v.code, v.nextHopMtu]).toEqual([3, 4, 1400]);
    expect(Icmpv4Repr.parse(v)).toEqual(r);
    expectWireError(Icmpv4View.checked(out.subarray(0, 7)), 'malformed', /header needs 8/);
  });
});

describe('truncation', () => {
  it('every proper prefix of every capture is "malformed" at the IP layer', () => {
    const v4 = [IPV4_TCP_SYN, IPV4_TCP_DATA_SACK, IPV4_UDP_DNS, IPV4_ICMP_ECHO, IPV4_ICMP_PORT_UNREACH];
    const v6 = [IPV6_TCP_SYNACK, IPV6_ICMP_ECHO];
    for (const pkt of v4) for (let n = 0; n < pkt.length; n++) expectWireError(Ipv4View.checked(pkt.subarray(0, n)), 'malformed');
    for (const pkt of v6) for (let n = 0; n < pkt.length; n++) expectWireError(Ipv6View.checked(pkt.subarray(0, n)), 'malformed');
  });

  it('a TCP segment cut inside its options is malformed; cut in the payload it still parses (IP owns the length)', () => {
    const seg = IPV4_TCP_DATA_SACK.subarray(20);
    for (let n = 0; n < 44; n++) expectWireError(TcpView.checked(seg.subarray(0, n)), 'malformed');
    for (let n = 44; n <= seg.length; n++) expect(ok(TcpView.checked(seg.subarray(0, n))).payload.length).toBe(n - 44);
  });
});

describe('WireError', () => {
  it('is a cheap value with the ZksError code; toZksError() makes the Error when it leaves the netstack', () => {
    const e = Ipv4View.checked(new Uint8Array(3));
    expectWireError(e, 'malformed', /header needs 20/);
    const z = (e as WireError).toZksError();
    expect(z).toBeInstanceOf(ZksError);
    expect(z.code).toBe('ZKS_ERR_MALFORMED_PACKET');
    expect(z.message).toMatch(/^malformed: IPv4: 3 bytes/);
  });
});

