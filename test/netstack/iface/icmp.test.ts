// ICMP at the interface: echo requests reach onEcho and sendEchoReply answers with the same identifier, sequence
// number and data; sendPortUnreachable quotes the invoking packet within RFC 1812's 576 / RFC 4443's 1280 bytes with
// checksums that verify (ICMPv6 over the pseudo-header); no error about multicast, ICMP errors or later fragments.
// Reassembly: in any order, overlaps dropped, bounded, timed out by the clock passed to receive/poll, and a
// datagram that timed out after its first fragment answered with Time Exceeded (code 1).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IcmpEcho, UdpDatagram } from '../../../src/netstack/iface';
import {
  Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View, IpProtocol, Ipv4Repr, Ipv4View, Ipv6View, UdpRepr, isWireError,
} from '../../../src/netstack/wire/index';
import { APP4, APP6, DST4, DST6, harness, ipPacket } from './helpers';

function echo4(ident: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  Icmpv4Repr.emit({ kind: 'echo-request', ident, seqNo: seq, data }, m);
  return ipPacket(APP4, DST4, IpProtocol.ICMP, m);
}

function echo6(ident: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  Icmpv6Repr.emit({ kind: 'echo-request', ident, seqNo: seq, data }, m, { src: APP6, dst: DST6 });
  return ipPacket(APP6, DST6, IpProtocol.ICMPV6, m);
}

function udp(src: Uint8Array, dst: Uint8Array, dstPort: number, payload: Uint8Array, ident = 1): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  UdpRepr.emit({ srcPort: 40000, dstPort, payload }, u, { src, dst });
  return ipPacket(src, dst, IpProtocol.UDP, u, ident);
}

/** `whole` (an IPv4 packet without options) cut into fragments of `size` payload bytes (a multiple of 8). */
function fragments(whole: Uint8Array, size: number): Uint8Array[] {
  const ip = Ipv4View.checked(whole);
  if (isWireError(ip)) throw new Error(ip.toString());
  const repr = Ipv4Repr.parse(ip);
  const body = ip.payload;
  const out: Uint8Array[] = [];
  for (let off = 0; off < body.length; off += size) {
    const chunk = body.subarray(off, off + size);
    const p = new Uint8Array(20 + chunk.length);
    Ipv4Repr.emit({ ...repr, payloadLen: chunk.length, dontFrag: false, moreFrags: off + size < body.length, fragOffset: off }, p);
    p.set(chunk, 20);
    out.push(p);
  }
  return out;
}

/** `whole` (an IPv6 packet without extension headers) as fragments of `size` bytes (RFC 8200 §4.5), identification `ident`. */
function fragments6(whole: Uint8Array, size: number, ident: number): Uint8Array[] {
  const next = whole[6];
  const body = whole.subarray(40);
  const out: Uint8Array[] = [];
  for (let off = 0; off < body.length; off += size) {
    const chunk = body.subarray(off, off + size);
    const p = new Uint8Array(48 + chunk.length);
    p.set(whole.subarray(0, 40));
    const dv = new DataView(p.buffer);
    dv.setUint16(4, 8 + chunk.length);
    p[6] = 44; // Fragment
    p[40] = next;
    dv.setUint16(42, off | (off + size < body.length ? 1 : 0));
    dv.setUint32(44, ident);
    p.set(chunk, 48);
    out.push(p);
  }
  return out;
}

const pattern = (n: number, seed = 7): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

function withCallbacks() {
  const echoes: IcmpEcho[] = [];
  const datagrams: { d: UdpDatagram; payload: Uint8Array; packet: Uint8Array }[] = [];
  const h = harness({
    onEcho: (e) => echoes.push(e),
    onUdp: (d) => { datagrams.push({ d, payload: d.payload.slice(), packet: d.packet.slice() }); return false; },
  });
  return { h, echoes, datagrams };
}

describe('echo', () => {
  it('IPv4: request to onEcho, reply with the same id/seq/data from the pinged address', () => {
    const { h, echoes } = withCallbacks();
    const data = pattern(56);
    h.iface.receive(echo4(0x1234, 7, data), 0);
    expect(echoes).toHaveLength(1);
    expect(echoes[0]).toMatchObject({ family: 4, ident: 0x1234, seq: 7 });
    h.iface.sendEchoReply(echoes[0]);
    const [p] = h.raw(0);
    const ip = Ipv4View.checked(p);
    if (isWireError(ip)) throw new Error(ip.toString());
    expect(ip.protocol).toBe(IpProtocol.ICMP);
    expect([...ip.src]).toEqual([...DST4]);
    expect([...ip.dst]).toEqual([...APP4]);
    const icmp = Icmpv4View.checked(ip.payload);
    if (isWireError(icmp)) throw new Error(icmp.toString());
    expect(icmp.verifyChecksum()).toBe(true);
    expect(Icmpv4Repr.parse(icmp)).toEqual({ kind: 'echo-reply', ident: 0x1234, seqNo: 7, data });
    expect(h.iface.stats).toMatchObject({ echoRequests: 1, echoReplies: 1 });
  });

  it('IPv6: reply checksum covers the pseudo-header', () => {
    const { h, echoes } = withCallbacks();
    h.iface.receive(echo6(9, 65535, pattern(8)), 0);
    expect(echoes).toHaveLength(1);
    h.iface.sendEchoReply(echoes[0]);
    const [p] = h.raw(0);
    const ip = Ipv6View.checked(p);
    if (isWireError(ip)) throw new Error(ip.toString());
    const icmp = Icmpv6View.checked(ip.upperPayload);
    if (isWireError(icmp)) throw new Error(icmp.toString());
    expect(icmp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    expect(Icmpv6Repr.parse(icmp)).toEqual({ kind: 'echo-reply', ident: 9, seqNo: 65535, data: pattern(8) });
  });

  it('a request with a wrong checksum is counted, never reported', () => {
    const { h, echoes } = withCallbacks();
    const p = echo4(1, 1, pattern(4));
    p[p.length - 1] ^= 1;
    h.iface.receive(p, 0);
    expect(echoes).toHaveLength(0);
    expect(h.iface.stats.badChecksum).toBe(1);
  });

  it('an echo reply or an error from the application is dropped and counted', () => {
    const { h, echoes } = withCallbacks();
    const m = new Uint8Array(16);
    Icmpv4Repr.emit({ kind: 'echo-reply', ident: 1, seqNo: 1, data: pattern(8) }, m);
    h.iface.receive(ipPacket(APP4, DST4, IpProtocol.ICMP, m), 0);
    expect(echoes).toHaveLength(0);
    expect(h.iface.stats.icmpDropped).toBe(1);
  });
});

/** The ICMPv4 error in `p`, checked: from DST4 back to APP4, checksum right. */
function icmp4ErrorOf(p: Uint8Array): Icmpv4View {
  const ip = Ipv4View.checked(p);
  if (isWireError(ip)) throw new Error(ip.toString());
  expect([...ip.src]).toEqual([...DST4]);
  expect([...ip.dst]).toEqual([...APP4]);
  const icmp = Icmpv4View.checked(ip.payload);
  if (isWireError(icmp)) throw new Error(icmp.toString());
  expect(icmp.verifyChecksum()).toBe(true);
  return icmp;
}

/** The ICMPv6 error in `p`, checked: from DST6 back to APP6, checksum right over the pseudo-header. */
function icmp6ErrorOf(p: Uint8Array): Icmpv6View {
  const ip = Ipv6View.checked(p);
  if (isWireError(ip)) throw new Error(ip.toString());
  expect([...ip.src]).toEqual([...DST6]);
  expect([...ip.dst]).toEqual([...APP6]);
  const icmp = Icmpv6View.checked(ip.upperPayload);
  if (isWireError(icmp)) throw new Error(icmp.toString());
  expect(icmp.verifyChecksum(ip.src, ip.dst)).toBe(true);
  return icmp;
}

describe('port unreachable', () => {
  it('IPv4: type 3 code 3 from the target, quoting the whole short datagram', () => {
    const { h, datagrams } = withCallbacks();
    const sent = udp(APP4, DST4, 443, pattern(100));
    h.iface.receive(sent, 0);
    expect(h.iface.sendPortUnreachable(datagrams[0].packet, 0)).toBe(true);
    const icmp = icmp4ErrorOf(h.raw(0)[0]);
    expect([icmp.type, icmp.code, icmp.rest]).toEqual([3, 3, 0]);
    expect([...icmp.body]).toEqual([...sent]);
  });

  it('IPv4: a large datagram is quoted up to 548 bytes (576 in all)', () => {
    const { h, datagrams } = withCallbacks();
    const sent = udp(APP4, DST4, 443, pattern(1400));
    h.iface.receive(sent, 0);
    h.iface.sendPortUnreachable(datagrams[0].packet, 0);
    const [p] = h.raw(0);
    expect(p.length).toBe(576);
    expect([...p.subarray(28)]).toEqual([...sent.subarray(0, 548)]);
  });

  it('IPv6: type 1 code 4, quoted up to 1280 in all, checksum over the pseudo-header', () => {
    const { h, datagrams } = withCallbacks();
    const sent = udp(APP6, DST6, 443, pattern(1400));
    h.iface.receive(sent, 0);
    h.iface.sendPortUnreachable(datagrams[0].packet, 0);
    const [p] = h.raw(0);
    expect(p.length).toBe(1280);
    const icmp = icmp6ErrorOf(p);
    expect([icmp.type, icmp.code, icmp.rest]).toEqual([1, 4, 0]);
    expect([...icmp.body]).toEqual([...sent.subarray(0, 1232)]);
  });

  it('never about multicast or broadcast, an ICMP error, or a later fragment', () => {
    const { h } = withCallbacks();
    expect(h.iface.sendPortUnreachable(udp(APP4, Uint8Array.of(239, 255, 255, 250), 1900, pattern(10)), 0)).toBe(false);
    expect(h.iface.sendPortUnreachable(udp(APP4, Uint8Array.of(255, 255, 255, 255), 67, pattern(10)), 0)).toBe(false);
    expect(h.iface.sendPortUnreachable(udp(APP6, Uint8Array.of(0xff, 2, ...new Array<number>(13).fill(0), 0xfb), 5353, pattern(10)), 0)).toBe(false);
    const err = new Uint8Array(36);
    Icmpv4Repr.emit(Icmpv4Repr.unreachable(3, pattern(28)), err);
    expect(h.iface.sendPortUnreachable(ipPacket(APP4, DST4, IpProtocol.ICMP, err), 0)).toBe(false);
    const later = fragments(udp(APP4, DST4, 443, pattern(64)), 32)[1];
    expect(h.iface.sendPortUnreachable(later, 0)).toBe(false);
    expect(h.raw(0)).toHaveLength(0);
    expect(h.iface.stats.unreachableSuppressed).toBe(5);
  });
});

describe('ICMP error rate (RFC 4443 §2.4(f))', () => {
  it('a burst of 3 at 10/s: the 4th at the same instant is refused and counted, one more 100 ms later', () => {
    const h = harness({ icmpErrorRate: { perSecond: 10, burst: 3 } });
    const p = udp(APP4, DST4, 443, pattern(8));
    expect([0, 0, 0, 0].map((t) => h.iface.sendPortUnreachable(p, t))).toEqual([true, true, true, false]);
    expect(h.iface.sendPortUnreachable(p, 100)).toBe(true);
    expect(h.iface.sendPortUnreachable(p, 100)).toBe(false);
    expect(h.iface.stats).toMatchObject({ unreachableSent: 4, unreachableRateLimited: 2 });
    expect(h.raw(100)).toHaveLength(4);
  });
});

describe('IPv4 reassembly', () => {
  const whole = udp(APP4, DST4, 53, pattern(3000), 0x4242);

  it('delivers a datagram cut in 3, in any order, as if it came whole', () => {
    for (const order of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
      const { h, datagrams } = withCallbacks();
      const frags = fragments(whole, 1480);
      for (const i of order) h.iface.receive(frags[i], 0);
      expect(datagrams).toHaveLength(1);
      expect([...datagrams[0].payload]).toEqual([...pattern(3000)]);
      expect(h.iface.reassembly.stats.reassembled).toBe(1);
      expect(h.iface.reassembly.size).toBe(0);
    }
  });

  it('IPv6: a datagram cut in 3, in any order, comes whole (payload length and Next Header rebuilt)', () => {
    const whole6 = udp(APP6, DST6, 53, pattern(3000), 1);
    for (const order of [[0, 1, 2], [2, 1, 0]]) {
      const { h, datagrams } = withCallbacks();
      const frags = fragments6(whole6, 1448, 0xdeadbeef);
      for (const i of order) h.iface.receive(frags[i], 0);
      expect(datagrams).toHaveLength(1);
      expect([...datagrams[0].packet]).toEqual([...whole6]);
    }
  });

  it('IPv6: overlapping fragments drop the datagram; an extension header before the Fragment header is refused', () => {
    const { h, datagrams } = withCallbacks();
    const whole6 = udp(APP6, DST6, 53, pattern(3000), 1);
    const frags = fragments6(whole6, 1448, 7);
    h.iface.receive(frags[0], 0);
    h.iface.receive(fragments6(whole6, 8, 7)[100], 0); // bytes 800..808, inside the first fragment
    h.iface.receive(frags[1], 0);
    h.iface.receive(frags[2], 0);
    expect(datagrams).toHaveLength(0);
    expect(h.iface.reassembly.stats.overlapDropped).toBe(1);
    // Destination Options (8 bytes, empty PadN) before the Fragment header.
    const f = frags[1];
    const withOpts = new Uint8Array(f.length + 8);
    withOpts.set(f.subarray(0, 40));
    withOpts[6] = 60;
    withOpts.set(Uint8Array.of(44, 0, 1, 4, 0, 0, 0, 0), 40);
    withOpts.set(f.subarray(40), 48);
    new DataView(withOpts.buffer).setUint16(4, f.length - 40 + 8);
    h.iface.receive(withOpts, 0);
    expect(h.iface.reassembly.stats.invalid).toBe(1);
  });

  it('drops the datagram when fragments overlap (RFC 5722 policy)', () => {
    const { h, datagrams } = withCallbacks();
    const frags = fragments(whole, 1480);
    const overlapping = fragments(whole, 8)[180]; // bytes 1440..1448 lie inside the first fragment
    h.iface.receive(frags[0], 0);
    h.iface.receive(overlapping, 0);
    h.iface.receive(frags[1], 0);
    h.iface.receive(frags[2], 0);
    expect(datagrams).toHaveLength(0);
    expect(h.iface.reassembly.stats.overlapDropped).toBe(1);
  });

  it('times out by the clock given to receive and poll; poll reports the deadline', () => {
    const { h, datagrams } = withCallbacks();
    const frags = fragments(whole, 1480);
    h.iface.receive(frags[0], 1_000);
    expect(h.iface.poll(1_000, () => {})).toBe(31_000);
    h.iface.poll(31_000, () => {});
    expect(h.iface.reassembly.stats.timedOut).toBe(1);
    h.iface.receive(frags[1], 31_001);
    h.iface.receive(frags[2], 31_001);
    expect(datagrams).toHaveLength(0);
  });

  it('a datagram whose first fragment came but not the rest is answered with Time Exceeded code 1, quoting that fragment', () => {
    const { h } = withCallbacks();
    const first = fragments(whole, 1480)[0];
    h.iface.receive(first, 1_000);
    expect(h.raw(30_999)).toHaveLength(0);
    const [p, ...more] = h.raw(31_000);
    expect(more).toHaveLength(0);
    const icmp = icmp4ErrorOf(p);
    expect([icmp.type, icmp.code]).toEqual([11, 1]);
    expect([...icmp.body]).toEqual([...first.subarray(0, 548)]); // the fragment as sent, its MF flag and all
    expect(h.iface.stats).toMatchObject({ timeExceededSent: 1, timeExceededDropped: 0 });
  });

  it('no Time Exceeded when the first fragment never came (RFC 1122 §3.3.2), or when the error rate is spent', () => {
    const { h } = withCallbacks();
    h.iface.receive(fragments(whole, 1480)[1], 0);
    expect(h.raw(30_000)).toHaveLength(0);
    expect(h.iface.reassembly.stats.timedOut).toBe(1);
    expect(h.iface.stats.timeExceededSent).toBe(0);
    const limited = harness({ icmpErrorRate: { perSecond: 1, burst: 1 } });
    for (const ident of [1, 2]) limited.iface.receive(fragments(udp(APP4, DST4, 53, pattern(3000), ident), 1480)[0], 0);
    expect(limited.raw(30_000)).toHaveLength(1);
    expect(limited.iface.stats).toMatchObject({ timeExceededSent: 1, timeExceededDropped: 1 });
  });

  it('IPv6: Time Exceeded code 1 quotes the first fragment with its Fragment header, checksum over the pseudo-header', () => {
    const { h } = withCallbacks();
    const first = fragments6(udp(APP6, DST6, 53, pattern(3000), 1), 1448, 0x77)[0];
    h.iface.receive(first, 0);
    const icmp = icmp6ErrorOf(h.raw(30_000)[0]);
    expect([icmp.type, icmp.code]).toEqual([3, 1]);
    expect([...icmp.body]).toEqual([...first.subarray(0, 1232)]);
  });

  it('refuses a fragment past 65 535 bytes and a non-final fragment not a multiple of 8', () => {
    const { h } = withCallbacks();
    const f = fragments(whole, 1480)[2];
    const dv = new DataView(f.buffer, f.byteOffset);
    dv.setUint16(6, 65528 / 8); // offset 65 528 + 1 480 … > 65 535
    dv.setUint16(10, 0);
    dv.setUint16(10, ~Array.from({ length: 10 }, (_, i) => dv.getUint16(i * 2)).reduce((a, b) => { const s = a + b; return (s & 0xffff) + (s >>> 16); }, 0) & 0xffff);
    h.iface.receive(f, 0);
    expect(h.iface.reassembly.stats.invalid).toBe(1);
  });

  it('stays within maxBytes and maxDatagrams, evicting the oldest', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ ident: fc.integer({ min: 0, max: 20 }), frag: fc.integer({ min: 0, max: 2 }) }), { maxLength: 60 }),
      (steps) => {
        const h = harness({ reassembly: { maxBytes: 4000, maxDatagrams: 4 } });
        let t = 0;
        for (const s of steps) {
          h.iface.receive(fragments(udp(APP4, DST4, 53, pattern(3000), s.ident), 1480)[s.frag], (t += 10));
          expect(h.iface.reassembly.heldBytes).toBeLessThanOrEqual(4000);
          expect(h.iface.reassembly.size).toBeLessThanOrEqual(4);
        }
      },
    ));
  });

  it('any permutation of any valid cut gives back the exact datagram', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 400 }), fc.integer({ min: 9, max: 4000 }), fc.integer({ min: 0, max: 1e9 }),
      (units, len, seed) => {
        const { h, datagrams } = withCallbacks();
        const frags = fragments(udp(APP4, DST4, 53, pattern(len, seed), seed & 0xffff), units * 8);
        let x = seed;
        for (let i = frags.length - 1; i > 0; i--) {
          x = (x * 1103515245 + 12345) >>> 0;
          const j = x % (i + 1);
          [frags[i], frags[j]] = [frags[j], frags[i]];
        }
        for (const f of frags) h.iface.receive(f, 0);
        if (frags.length === 1) return; // not a fragment: plain delivery
        expect(datagrams).toHaveLength(1);
        expect([...datagrams[0].payload]).toEqual([...pattern(len, seed)]);
      },
    ), { numRuns: 60 });
  });

  it('random fragment headers and bytes never throw and never exceed the bounds', () => {
    const frag = fc.record({
      ident: fc.integer({ min: 0, max: 3 }), off: fc.integer({ min: 0, max: 8191 }), mf: fc.boolean(),
      body: fc.uint8Array({ minLength: 0, maxLength: 200 }), proto: fc.constantFrom(1, 6, 17),
    }).map((f) => {
      const p = new Uint8Array(20 + f.body.length);
      Ipv4Repr.emit({ src: APP4, dst: DST4, protocol: f.proto, payloadLen: f.body.length, ttl: 64, dscp: 0, ecn: 0,
        ident: f.ident, dontFrag: false, moreFrags: f.mf, fragOffset: f.off * 8, options: new Uint8Array(0) }, p);
      p.set(f.body, 20);
      return p;
    });
    const frag6 = fc.record({
      ident: fc.integer({ min: 0, max: 3 }), off: fc.integer({ min: 0, max: 8191 }), m: fc.boolean(),
      body: fc.uint8Array({ minLength: 0, maxLength: 200 }), next: fc.constantFrom(17, 58, 6, 44, 60),
    }).map((f) => {
      const p = new Uint8Array(48 + f.body.length);
      p.set(udp(APP6, DST6, 1, new Uint8Array(0)).subarray(0, 40));
      const dv = new DataView(p.buffer);
      dv.setUint16(4, 8 + f.body.length);
      p[6] = 44;
      p[40] = f.next;
      dv.setUint16(42, (f.off << 3) | (f.m ? 1 : 0));
      dv.setUint32(44, f.ident);
      p.set(f.body, 48);
      return p;
    });
    fc.assert(fc.property(fc.array(fc.oneof(frag, frag6), { maxLength: 40 }), (pkts) => {
      const h = harness({ reassembly: { maxBytes: 2000, maxDatagrams: 2 }, onUdp: () => true, onEcho: () => {} });
      for (const p of pkts) h.iface.receive(p, 0);
      h.raw(0);
      expect(h.iface.reassembly.heldBytes).toBeLessThanOrEqual(2000);
    }));
  });
});
