// Property tests for icmp.ts: any bytes as an ICMP message give an echo, null or a WireError (never a throw), and an
// echo's reply round-trips its fields; any bytes as the "invoking packet" give null or a port unreachable that
// parses, verifies (ICMPv6 over the pseudo-header) and stays within 576 (IPv4) / 1280 (IPv6) bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { echoReplyPacket, parseEchoRequest, portUnreachablePacket } from '../../../src/netstack/icmp';
import {
  Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View, IpProtocol, Ipv4View, Ipv6View, UdpRepr, isWireError,
} from '../../../src/netstack/wire/index';
import { APP4, APP6, DST4, DST6, ipPacket } from './helpers';

const validEcho4 = fc.record({ ident: fc.integer({ min: 0, max: 0xffff }), seq: fc.integer({ min: 0, max: 0xffff }), data: fc.uint8Array({ maxLength: 200 }) })
  .map(({ ident, seq, data }) => {
    const m = new Uint8Array(8 + data.length);
    Icmpv4Repr.emit({ kind: 'echo-request', ident, seqNo: seq, data }, m);
    return m;
  });

const mutate = (gen: fc.Arbitrary<Uint8Array>) => fc.tuple(gen, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.option(fc.nat()))
  .map(([p, muts, cut]) => {
    const q = p.slice();
    if (q.length > 0) for (const [i, v] of muts) q[i % q.length] = v;
    return cut === null ? q : q.subarray(0, cut % (q.length + 1));
  });

describe('parseEchoRequest on any bytes', () => {
  it('IPv4 and IPv6: an echo, null or a WireError; an echo round-trips through echoReplyPacket', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), mutate(validEcho4), validEcho4), fc.boolean(), (msg, v6) => {
      const [src, dst] = v6 ? [APP6, DST6] : [APP4, DST4];
      const r = parseEchoRequest(v6 ? 6 : 4, src, dst, msg);
      if (r === null || isWireError(r)) return;
      const reply = echoReplyPacket(r, 7);
      if (v6) {
        const ip = Ipv6View.checked(reply);
        if (isWireError(ip)) throw new Error(ip.toString());
        const icmp = Icmpv6View.checked(ip.upperPayload);
        if (isWireError(icmp)) throw new Error(icmp.toString());
        expect(icmp.verifyChecksum(ip.src, ip.dst)).toBe(true);
        expect(Icmpv6Repr.parse(icmp)).toEqual({ kind: 'echo-reply', ident: r.ident, seqNo: r.seq, data: r.data });
      } else {
        const ip = Ipv4View.checked(reply);
        if (isWireError(ip)) throw new Error(ip.toString());
        const icmp = Icmpv4View.checked(ip.payload);
        if (isWireError(icmp)) throw new Error(icmp.toString());
        expect(icmp.verifyChecksum()).toBe(true);
        expect(Icmpv4Repr.parse(icmp)).toEqual({ kind: 'echo-reply', ident: r.ident, seqNo: r.seq, data: r.data });
      }
    }), { numRuns: 500 });
  });
});

const udpPacket = fc.record({ v6: fc.boolean(), port: fc.integer({ min: 1, max: 0xffff }), payload: fc.uint8Array({ maxLength: 1500 }) })
  .map(({ v6, port, payload }) => {
    const [src, dst] = v6 ? [APP6, DST6] : [APP4, DST4];
    const u = new Uint8Array(8 + payload.length);
    UdpRepr.emit({ srcPort: 40000, dstPort: port, payload }, u, { src, dst });
    return ipPacket(src, dst, IpProtocol.UDP, u);
  });

describe('portUnreachablePacket on any bytes', () => {
  it('null, or an error that parses, verifies and stays within the RFC bound', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutate(udpPacket), udpPacket), fc.integer({ min: 68, max: 9000 }), (p, mtu) => {
      const out = portUnreachablePacket(p, Math.max(mtu, p[0] >> 4 === 6 ? 1280 : 68), 1);
      if (out === null) return;
      if (out[0] >> 4 === 4) {
        expect(out.length).toBeLessThanOrEqual(576);
        const ip = Ipv4View.checked(out);
        if (isWireError(ip)) throw new Error(ip.toString());
        const icmp = Icmpv4View.checked(ip.payload);
        if (isWireError(icmp)) throw new Error(icmp.toString());
        expect(icmp.verifyChecksum()).toBe(true);
        expect([icmp.type, icmp.code]).toEqual([3, 3]);
        expect([...icmp.body]).toEqual([...p.subarray(0, icmp.body.length)]);
      } else {
        expect(out.length).toBeLessThanOrEqual(1280);
        const ip = Ipv6View.checked(out);
        if (isWireError(ip)) throw new Error(ip.toString());
        const icmp = Icmpv6View.checked(ip.upperPayload);
        if (isWireError(icmp)) throw new Error(icmp.toString());
        expect(icmp.verifyChecksum(ip.src, ip.dst)).toBe(true);
        expect([icmp.type, icmp.code]).toEqual([1, 4]);
      }
    }), { numRuns: 500 });
  });
});
