// fast-check: random bytes and mutated valid packets into every checked()/parse — the only failure allowed is a
// WireError value, never a throw; every getter of a checked view is then safe and the view's length invariants hold. Random valid Reprs emit → parse → equal.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View, IpProtocol, Ipv4Repr, Ipv4View, Ipv6Repr, Ipv6View, TcpRepr, TcpView,
  UdpRepr, UdpView, WireError, type SackRange, type WireResult,
} from '../../../src/netstack/wire/index';

/** Reads every getter of a view (and runs verify) — the point is that none of them throws. */
function touch(v: object, ...verifyArgs: Uint8Array[]): void {
  let proto = Object.getPrototypeOf(v);
  while (proto && proto !== Object.prototype) {
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (d.get) void (v as Record<string, unknown>)[name];
      if (name === 'verifyChecksum') (v as { verifyChecksum(...a: Uint8Array[]): boolean }).verifyChecksum(...verifyArgs);
    }
    proto = Object.getPrototypeOf(proto);
  }
}

function expectValue<T>(r: WireResult<T>, cls: Function & { prototype: T }): T | null {
  if (r instanceof WireError) {
    expect(r.code).toBe('ZKS_ERR_MALFORMED_PACKET');
    expect(['malformed', 'bad-checksum', 'unsupported']).toContain(r.reason);
    return null;
  }
  expect(r).toBeInstanceOf(cls);
  return r;
}

/** Runs one buffer through every layer the way the interface will, checking the contract at each step. */
function decodeAll(buf: Uint8Array): void {
  const upper = (proto: number, payload: Uint8Array, src: Uint8Array, dst: Uint8Array) => {
    const tcp = expectValue(TcpView.checked(payload), TcpView);
    if (tcp) {
      touch(tcp, src, dst);
      expect(tcp.headerLen).toBeGreaterThanOrEqual(20);
      expect(tcp.headerLen).toBeLessThanOrEqual(payload.length);
      expect(tcp.payload.length).toBe(payload.length - tcp.headerLen);
      const r = TcpRepr.parse(tcp);
      for (const n of [r.mss ?? 0, r.windowScale ?? 0, r.timestamp?.tsVal ?? 0, r.timestamp?.tsEcr ?? 0, ...r.sackRanges.flat()]) {
        expect(Number.isInteger(n) && n >= 0 && n <= 0xffffffff).toBe(true);
      }
    }
    const udp = expectValue(UdpView.checked(payload), UdpView);
    if (udp) {
      touch(udp, src, dst);
      expect(udp.length).toBeGreaterThanOrEqual(8);
      expect(udp.length).toBeLessThanOrEqual(payload.length);
      expect(UdpRepr.parse(udp).payload.length).toBe(udp.length - 8);
    }
    if (proto === IpProtocol.ICMPV6 || src.length === 16) {
      const i6 = expectValue(Icmpv6View.checked(payload), Icmpv6View);
      if (i6) { touch(i6, src, dst); expect(payload.length).toBeGreaterThanOrEqual(8); Icmpv6Repr.parse(i6); }
    } else {
      const i4 = expectValue(Icmpv4View.checked(payload), Icmpv4View);
      if (i4) { touch(i4); expect(payload.length).toBeGreaterThanOrEqual(8); Icmpv4Repr.parse(i4); }
    }
  };
  for (const verifyChecksum of [true, false]) {
    const v4 = expectValue(Ipv4View.checked(buf, { verifyChecksum }), Ipv4View);
    if (v4) {
      touch(v4);
      expect(v4.headerLen).toBeGreaterThanOrEqual(20);
      expect(v4.headerLen).toBeLessThanOrEqual(v4.totalLen);
      expect(v4.totalLen).toBeLessThanOrEqual(buf.length);
      expect(v4.payload.length).toBe(v4.totalLen - v4.headerLen);
      Ipv4Repr.parse(v4);
      upper(v4.protocol, v4.payload, v4.src, v4.dst);
    }
  }
  const v6 = expectValue(Ipv6View.checked(buf), Ipv6View);
  if (v6) {
    touch(v6);
    expect(40 + v6.payloadLen).toBeLessThanOrEqual(buf.length);
    expect(v6.upperOffset).toBeGreaterThanOrEqual(40);
    expect(v6.upperOffset).toBeLessThanOrEqual(40 + v6.payloadLen);
    expect(v6.upperPayload.length).toBe(40 + v6.payloadLen - v6.upperOffset);
    Ipv6Repr.parse(v6);
    upper(v6.upperProtocol, v6.upperPayload, v6.src, v6.dst);
  }
  // Upper layers straight on the random bytes too (headers not behind a valid IP header).
  upper(0, buf, new Uint8Array(4), new Uint8Array(4));
  upper(IpProtocol.ICMPV6, buf, new Uint8Array(16), new Uint8Array(16));
}

// --- arbitraries for valid Reprs -------------------------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const addr6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const bytes = (max: number) => fc.uint8Array({ maxLength: max });

const ipv4Repr = fc.record({
  src: addr4, dst: addr4, protocol: u8, payloadLen: fc.integer({ min: 0, max: 1500 }), ttl: u8,
  dscp: fc.integer({ min: 0, max: 63 }), ecn: fc.integer({ min: 0, max: 3 }), ident: u16, dontFrag: fc.boolean(),
  moreFrags: fc.boolean(), fragOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
  options: fc.integer({ min: 0, max: 10 }).chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })),
});

const ipv6Repr = fc.record({
  src: addr6, dst: addr6, nextHeader: u8, payloadLen: fc.integer({ min: 0, max: 1500 }), hopLimit: u8,
  trafficClass: u8, flowLabel: fc.integer({ min: 0, max: 0xfffff }),
});

const sack: fc.Arbitrary<SackRange> = fc.tuple(u32, u32);
const tcpRepr: fc.Arbitrary<TcpRepr> = fc.record({
  srcPort: u16, dstPort: u16, seq: u32, ack: u32, flags: u8, window: u16, urgent: u16,
  mss: fc.option(u16, { nil: null }), windowScale: fc.option(u8, { nil: null }), sackPermitted: fc.boolean(),
  sackRanges: fc.array(sack, { maxLength: 3 }), timestamp: fc.option(fc.record({ tsVal: u32, tsEcr: u32 }), { nil: null }),
  payload: bytes(300),
}).filter((r) => TcpRepr.headerLen(r) <= 60);

const udpRepr: fc.Arbitrary<UdpRepr> = fc.record({ srcPort: u16, dstPort: u16, payload: bytes(300) });

const KNOWN_V4 = new Set([0, 3, 8, 11]);
const icmpv4Repr: fc.Arbitrary<Icmpv4Repr> = fc.oneof(
  fc.record({ kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const), ident: u16, seqNo: u16, data: bytes(100) }),
  fc.record({ kind: fc.constant('dst-unreachable' as const), code: u8, mtu: u16, invoking: bytes(100) }),
  fc.record({ kind: fc.constant('time-exceeded' as const), code: u8, invoking: bytes(100) }),
  fc.record({ kind: fc.constant('other' as const), type: u8.filter((t) => !KNOWN_V4.has(t)), code: u8, rest: u32, data: bytes(100) }),
);

const KNOWN_V6 = new Set([1, 2, 3, 4, 128, 129]);
const icmpv6Repr: fc.Arbitrary<Icmpv6Repr> = fc.oneof(
  fc.record({ kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const), ident: u16, seqNo: u16, data: bytes(100) }),
  fc.record({ kind: fc.constant('dst-unreachable' as const), code: u8, invoking: bytes(100) }),
  fc.record({ kind: fc.constant('packet-too-big' as const), mtu: u32, invoking: bytes(100) }),
  fc.record({ kind: fc.constant('time-exceeded' as const), code: u8, invoking: bytes(100) }),
  fc.record({ kind: fc.constant('param-problem' as const), code: u8, pointer: u32, invoking: bytes(100) }),
  fc.record({ kind: fc.constant('other' as const), type: u8.filter((t) => !KNOWN_V6.has(t)), code: u8, rest: u32, data: bytes(100) }),
);

/** A whole valid packet: IPv4 or IPv6 around TCP, UDP or ICMP, built by our own emitters. */
const validPacket: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(ipv4Repr, tcpRepr).map(([ip, t]) => build4({ ...ip, protocol: IpProtocol.TCP, moreFrags: false, fragOffset: 0 }, TcpRepr.bufferLen(t), (o) => TcpRepr.emit(t, o, { src: ip.src, dst: ip.dst }))),
  fc.tuple(ipv4Repr, udpRepr).map(([ip, u]) => build4({ ...ip, protocol: IpProtocol.UDP }, UdpRepr.bufferLen(u), (o) => UdpRepr.emit(u, o, { src: ip.src, dst: ip.dst }))),
  fc.tuple(ipv4Repr, icmpv4Repr).map(([ip, m]) => build4({ ...ip, protocol: IpProtocol.ICMP }, Icmpv4Repr.bufferLen(m), (o) => Icmpv4Repr.emit(m, o))),
  fc.tuple(ipv6Repr, tcpRepr).map(([ip, t]) => build6({ ...ip, nextHeader: IpProtocol.TCP }, TcpRepr.bufferLen(t), (o) => TcpRepr.emit(t, o, { src: ip.src, dst: ip.dst }))),
  fc.tuple(ipv6Repr, udpRepr).map(([ip, u]) => build6({ ...ip, nextHeader: IpProtocol.UDP }, UdpRepr.bufferLen(u), (o) => UdpRepr.emit(u, o, { src: ip.src, dst: ip.dst }))),
  fc.tuple(ipv6Repr, icmpv6Repr).map(([ip, m]) => build6({ ...ip, nextHeader: IpProtocol.ICMPV6 }, Icmpv6Repr.bufferLen(m), (o) => Icmpv6Repr.emit(m, o, { src: ip.src, dst: ip.dst }))),
);

function build4(ip: Ipv4Repr, upperLen: number, emit: (o: Uint8Array) => number): Uint8Array {
  const hl = Ipv4Repr.headerLen(ip);
  const out = new Uint8Array(hl + upperLen);
  Ipv4Repr.emit({ ...ip, payloadLen: upperLen }, out);
  emit(out.subarray(hl));
  return out;
}

function build6(ip: Ipv6Repr, upperLen: number, emit: (o: Uint8Array) => number): Uint8Array {
  const out = new Uint8Array(40 + upperLen);
  Ipv6Repr.emit({ ...ip, payloadLen: upperLen }, out);
  emit(out.subarray(40));
  return out;
}

/** Mutations a hostile or broken peer could send: bit flips, byte overwrites, truncation, extension. */
const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: u8 }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('extend' as const), extra: bytes(40) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(pkt: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = pkt.slice();
  for (const m of muts) {
    if (b.length === 0) break;
    switch (m.op) {
      case 'flip': b[m.at % b.length] ^= 1 << m.bit; break;
      case 'set': b[m.at % b.length] = m.value; break;
      case 'truncate': b = b.slice(0, m.at % (b.length + 1)); break;
      case 'extend': { const c = new Uint8Array(b.length + m.extra.length); c.set(b); c.set(m.extra, b.length); b = c; break; }
    }
  }
  return b;
}

describe('no parser throws on hostile input', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodeAll), { numRuns: 3000 });
  });

  it('random bytes behind a plausible IPv4/IPv6 first byte and length', () => {
    const framed = fc.tuple(fc.constantFrom(0x45, 0x46, 0x4f, 0x60, 0x6f), fc.uint8Array({ minLength: 0, maxLength: 200 })).map(([b0, rest]) => {
      const b = new Uint8Array(rest.length + 1);
      b[0] = b0;
      b.set(rest, 1);
      if (b.length >= 4 && b0 >> 4 === 4) new DataView(b.buffer).setUint16(2, b.length);
      if (b.length >= 6 && b0 >> 4 === 6) new DataView(b.buffer).setUint16(4, Math.max(0, b.length - 40));
      return b;
    });
    fc.assert(fc.property(framed, decodeAll), { numRuns: 3000 });
  });

  it('mutated valid packets', () => {
    fc.assert(fc.property(validPacket, fc.array(mutation, { minLength: 1, maxLength: 4 }), (pkt, muts) => decodeAll(mutate(pkt, muts))), { numRuns: 3000 });
  });

  it('valid packets with random IPv6 extension chains', () => {
    const chain = fc.array(fc.tuple(fc.constantFrom(0, 43, 44, 60, 6, 17, 58, 59, 50), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ minLength: 6, maxLength: 6 })), { maxLength: 10 });
    fc.assert(fc.property(chain, bytes(60), (exts, tail) => {
      const parts: number[] = [];
      for (const [next, len, body] of exts) {
        parts.push(next, len, ...body);
        for (let i = 0; i < len * 8; i++) parts.push(i);
      }
      const payload = Uint8Array.from([...parts, ...tail]);
      const pkt = new Uint8Array(40 + payload.length);
      Ipv6Repr.emit({ src: new Uint8Array(16), dst: new Uint8Array(16), nextHeader: exts.length ? 60 : 6, payloadLen: payload.length, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, pkt);
      pkt.set(payload, 40);
      decodeAll(pkt);
      const v = Ipv6View.checked(pkt);
      if (!(v instanceof WireError)) {
        expect(v.upperOffset).toBeGreaterThanOrEqual(40);
        expect(v.upperOffset).toBeLessThanOrEqual(pkt.length);
      }
    }), { numRuns: 2000 });
  });
});

describe('random valid Reprs: emit → check → parse gives the Repr back', () => {
  it('IPv4', () => {
    fc.assert(fc.property(ipv4Repr, (r) => {
      const buf = new Uint8Array(Ipv4Repr.headerLen(r) + r.payloadLen);
      Ipv4Repr.emit(r, buf);
      const v = Ipv4View.checked(buf);
      expect(v).toBeInstanceOf(Ipv4View);
      expect(Ipv4Repr.parse(v as Ipv4View)).toEqual(r);
    }));
  });

  it('IPv6', () => {
    fc.assert(fc.property(ipv6Repr, (r) => {
      // nextHeader of an extension header would make the walk read the (zero) payload: keep it an upper layer here.
      const rr = { ...r, nextHeader: [0, 43, 44, 60].includes(r.nextHeader) ? 6 : r.nextHeader };
      const buf = new Uint8Array(40 + rr.payloadLen);
      Ipv6Repr.emit(rr, buf);
      const v = Ipv6View.checked(buf);
      expect(v).toBeInstanceOf(Ipv6View);
      expect(Ipv6Repr.parse(v as Ipv6View)).toEqual(rr);
    }));
  });

  it('TCP over IPv4 and IPv6, checksum verifies, byte-exact re-emit', () => {
    fc.assert(fc.property(tcpRepr, fc.oneof(fc.tuple(addr4, addr4), fc.tuple(addr6, addr6)), (r, [src, dst]) => {
      const buf = new Uint8Array(TcpRepr.bufferLen(r));
      expect(TcpRepr.emit(r, buf, { src, dst })).toBe(buf.length);
      const v = TcpView.checked(buf);
      expect(v).toBeInstanceOf(TcpView);
      const view = v as TcpView;
      expect(view.verifyChecksum(src, dst)).toBe(true);
      expect(TcpRepr.parse(view)).toEqual(r);
      const again = new Uint8Array(buf.length);
      TcpRepr.emit(TcpRepr.parse(view), again, { src, dst });
      expect(again).toEqual(buf);
    }));
  });

  it('UDP over IPv4 and IPv6', () => {
    fc.assert(fc.property(udpRepr, fc.oneof(fc.tuple(addr4, addr4), fc.tuple(addr6, addr6)), (r, [src, dst]) => {
      const buf = new Uint8Array(UdpRepr.bufferLen(r));
      UdpRepr.emit(r, buf, { src, dst });
      const v = UdpView.checked(buf) as UdpView;
      expect(v.checksum).not.toBe(0);
      expect(v.verifyChecksum(src, dst)).toBe(true);
      expect(UdpRepr.parse(v)).toEqual(r);
    }));
  });

  it('ICMPv4 and ICMPv6', () => {
    fc.assert(fc.property(icmpv4Repr, (r) => {
      const buf = new Uint8Array(Icmpv4Repr.bufferLen(r));
      Icmpv4Repr.emit(r, buf);
      const v = Icmpv4View.checked(buf) as Icmpv4View;
      expect(v.verifyChecksum()).toBe(true);
      expect(Icmpv4Repr.parse(v)).toEqual(r);
    }));
    fc.assert(fc.property(icmpv6Repr, addr6, addr6, (r, src, dst) => {
      const buf = new Uint8Array(Icmpv6Repr.bufferLen(r));
      Icmpv6Repr.emit(r, buf, { src, dst });
      const v = Icmpv6View.checked(buf) as Icmpv6View;
      expect(v.verifyChecksum(src, dst)).toBe(true);
      expect(Icmpv6Repr.parse(v)).toEqual(r);
    }));
  });

  it('whole packets decode through every layer', () => {
    fc.assert(fc.property(validPacket, (pkt) => {
      const v4 = Ipv4View.checked(pkt);
      const v6 = Ipv6View.checked(pkt);
      expect(v4 instanceof Ipv4View || v6 instanceof Ipv6View).toBe(true);
      decodeAll(pkt);
    }), { numRuns: 500 });
  });
});
