// Interface: demultiplexing, SYN → onConnect → accept → SYN-ACK, data both ways, RSTs for unknown 4-tuples
// (RFC 9293 §3.10.7.1), drops counted by reason (UDP, ICMP, fragments, malformed, IPv6 blackhole), flow removal.
import { describe, expect, it } from 'vitest';
import { Interface } from '../../../src/netstack/iface';
import { TcpState } from '../../../src/netstack/socket/index';
import { IpProtocol, Ipv4View, Ipv6View, UDP_HEADER_LEN, UdpRepr, UdpView, isWireError, seqAdd } from '../../../src/netstack/wire/index';
import {
  ACK, APP4, APP6, DST4, DST6, FIN, IRS, ISS, PSH, RST, SYN, SYN_SEG, bytes, harness, ipPacket, tcpPacket, text,
} from './helpers';

const L = (n: number): number => seqAdd(ISS, n);
const R = (n: number): number => seqAdd(IRS, n);

/** A harness with one accepted and established IPv4 flow. */
function established(opts = {}) {
  const h = harness(opts);
  h.iface.receive(tcpPacket(SYN_SEG), 0);
  h.connects[0].socket.accept(0);
  h.out(0);
  h.iface.receive(tcpPacket({ seq: R(1), ack: L(1), flags: ACK, window: 1024 }), 1);
  expect(h.connects[0].socket.state).toBe(TcpState.ESTABLISHED);
  return { ...h, flow: h.connects[0] };
}

describe('SYN to a new 4-tuple', () => {
  it('reports the flow, sends nothing until accept, then a valid SYN-ACK in IPv4', () => {
    const h = harness();
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    expect(h.connects).toHaveLength(1);
    const f = h.connects[0];
    expect(f.family).toBe(4);
    expect(f.local).toEqual({ address: '93.184.216.34', port: 443 });
    expect(f.remote).toEqual({ address: '10.0.0.2', port: 49500 });
    expect(f.socket.state).toBe(TcpState.SYN_PENDING);
    expect(h.iface.poll(0, () => { throw new Error('nothing to send yet'); })).toBeNull();

    f.socket.accept(0);
    const [p, ...rest] = h.out(0);
    expect(rest).toEqual([]);
    expect(p.family).toBe(4);
    expect(p.src).toEqual(DST4);
    expect(p.dst).toEqual(APP4);
    expect(p.ttl).toBe(64);
    expect(p.seg).toMatchObject({ srcPort: 443, dstPort: 49500, seq: ISS, ack: R(1), flags: SYN | ACK, mss: 1460, sackPermitted: true });
    expect(p.seg.windowScale).not.toBeNull();
    expect(h.iface.flows).toEqual([{ id: f.id, family: 4, local: f.local, remote: f.remote, state: TcpState.SYN_RECEIVED, bytesIn: 0, bytesOut: 0 }]);
  });

  it('takes MSS from the MTU: mtu − 40 for IPv4, mtu − 60 for IPv6', () => {
    const h = harness({ mtu: 1400 });
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    h.iface.receive(tcpPacket(SYN_SEG, APP6, DST6), 0);
    for (const f of h.connects) f.socket.accept(0);
    const got = h.out(0);
    expect(got.map((p) => [p.family, p.seg.mss])).toEqual([[4, 1360], [6, 1340]]);
  });

  it('sends a duplicate SYN for a pending flow to its socket (no second flow)', () => {
    const h = harness();
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    h.iface.receive(tcpPacket(SYN_SEG), 500);
    expect(h.connects).toHaveLength(1);
    expect(h.iface.flowCount).toBe(1);
    expect(h.out(500)).toEqual([]);
  });

  it('keeps flows apart by 4-tuple', () => {
    const h = harness();
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    h.iface.receive(tcpPacket({ ...SYN_SEG, srcPort: 49501 }), 0);
    h.iface.receive(tcpPacket({ ...SYN_SEG, dstPort: 80 }), 0);
    h.iface.receive(tcpPacket(SYN_SEG, APP4, Uint8Array.of(1, 1, 1, 1)), 0);
    expect(h.connects.map((f) => `${f.remote.port}>${f.local.address}:${f.local.port}`)).toEqual([
      '49500>93.184.216.34:443', '49501>93.184.216.34:443', '49500>93.184.216.34:80', '49500>1.1.1.1:443',
    ]);
    expect(new Set(h.connects.map((f) => f.id)).size).toBe(4);
  });

  it('refuse → RST,ACK to the application, then the flow is removed and reported closed', () => {
    const h = harness();
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    h.connects[0].socket.refuse();
    const [p] = h.out(0);
    expect(p.seg).toMatchObject({ seq: 0, ack: R(1), flags: RST | ACK, srcPort: 443, dstPort: 49500 });
    expect(h.closes).toEqual([h.connects[0]]);
    expect(h.iface.flowCount).toBe(0);
    expect(h.iface.stats.flowsClosed).toBe(1);
  });

  it('refuses SYNs beyond maxFlows with RST,ACK and counts them', () => {
    const h = harness({ maxFlows: 1 });
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    h.iface.receive(tcpPacket({ ...SYN_SEG, srcPort: 1000 }), 0);
    expect(h.connects).toHaveLength(1);
    expect(h.iface.stats.flowLimit).toBe(1);
    const [p] = h.out(0);
    expect(p.seg).toMatchObject({ dstPort: 1000, seq: 0, ack: R(1), flags: RST | ACK });
  });
});

describe('data through an established flow', () => {
  it('delivers application bytes to recv and wraps send() into IPv4 packets', () => {
    const h = established();
    h.iface.receive(tcpPacket({ seq: R(1), ack: L(1), flags: ACK | PSH, payload: bytes('hello') }), 2);
    expect(text(h.flow.socket.recv())).toBe('hello');
    expect(h.flow.socket.send(bytes('world'))).toBe(5);
    const got = h.out(3);
    const data = got.find((p) => p.seg.payload.length > 0)!;
    expect(text(data.seg.payload)).toBe('world');
    expect(data.seg).toMatchObject({ seq: L(1), ack: R(6) });
    expect(data.src).toEqual(DST4);
    const idents = got.map((p) => p.ident);
    expect(new Set(idents).size).toBe(idents.length);
    expect(h.iface.flows[0]).toMatchObject({ bytesIn: 5, bytesOut: 5, state: TcpState.ESTABLISHED });
  });

  it('returns the retransmission deadline from poll and resends at it', () => {
    const h = established();
    h.flow.socket.send(bytes('x'));
    const got: Uint8Array[] = [];
    const at = h.iface.poll(10, (p) => got.push(p));
    expect(got).toHaveLength(1);
    expect(at).toBeGreaterThan(10);
    const again = h.out(at!);
    expect(text(again[0].seg.payload)).toBe('x');
  });

  it('closes both ways and removes the flow after TIME_WAIT', () => {
    const h = established({ socket: { timeWaitMs: 100 } });
    h.flow.socket.close();
    const [fin] = h.out(2);
    expect(fin.seg.flags & FIN).toBe(FIN);
    h.iface.receive(tcpPacket({ seq: R(1), ack: L(2), flags: ACK | FIN }), 3);
    const at = h.iface.poll(3, () => {});
    expect(h.flow.socket.state).toBe(TcpState.TIME_WAIT);
    expect(at).toBe(103);
    expect(h.closes).toEqual([]);
    h.out(103);
    expect(h.closes).toEqual([h.flow]);
    expect(h.iface.flows).toEqual([]);
  });

  it('a RST from the application closes the flow without a reply', () => {
    const h = established();
    h.iface.receive(tcpPacket({ seq: R(1), ack: L(1), flags: RST }), 2);
    expect(h.out(2)).toEqual([]);
    expect(h.closes).toEqual([h.flow]);
  });

  it('carries IPv6 flows with swapped addresses and hop limit 64', () => {
    const h = harness();
    h.iface.receive(tcpPacket(SYN_SEG, APP6, DST6), 0);
    const f = h.connects[0];
    expect(f.local).toEqual({ address: '2001:db8::80', port: 443 });
    expect(f.remote).toEqual({ address: 'fd00::2', port: 49500 });
    f.socket.accept(0);
    const [p] = h.out(0);
    expect(p).toMatchObject({ family: 6, src: DST6, dst: APP6, ttl: 64 });
    expect(p.seg).toMatchObject({ flags: SYN | ACK, seq: ISS, ack: R(1), mss: 1440 });
    h.iface.receive(tcpPacket({ seq: R(1), ack: L(1), payload: bytes('v6') }, APP6, DST6), 1);
    expect(text(f.socket.recv())).toBe('v6');
  });
});

describe('segments for unknown 4-tuples (RFC 9293 §3.10.7.1)', () => {
  it('ACK set → <SEQ=SEG.ACK><CTL=RST>', () => {
    const h = harness();
    h.iface.receive(tcpPacket({ seq: 1234, ack: 0xfffffffe, flags: ACK, payload: bytes('abc') }), 0);
    const [p, ...rest] = h.out(0);
    expect(rest).toEqual([]);
    expect(p.src).toEqual(DST4);
    expect(p.dst).toEqual(APP4);
    expect(p.seg).toMatchObject({ srcPort: 443, dstPort: 49500, seq: 0xfffffffe, ack: 0, flags: RST, payload: new Uint8Array(0) });
    expect(h.connects).toEqual([]);
    expect(h.iface.flowCount).toBe(0);
    expect(h.iface.stats.rstSent).toBe(1);
  });

  it('no ACK → <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, FIN counted, across the wrap', () => {
    const h = harness();
    h.iface.receive(tcpPacket({ seq: 0xfffffffe, flags: FIN | PSH, payload: bytes('abc') }), 0);
    const [p] = h.out(0);
    expect(p.seg).toMatchObject({ seq: 0, ack: 2, flags: RST | ACK });
  });

  it('SYN,ACK → RST with SEG.ACK; a RST is never answered', () => {
    const h = harness();
    h.iface.receive(tcpPacket({ seq: 5, ack: 77, flags: SYN | ACK }), 0);
    h.iface.receive(tcpPacket({ seq: 5, ack: 77, flags: RST | ACK }), 0);
    h.iface.receive(tcpPacket({ seq: 5, flags: RST }), 0);
    const got = h.out(0);
    expect(got.map((p) => [p.seg.seq, p.seg.flags])).toEqual([[77, RST]]);
    expect(h.connects).toEqual([]);
  });

  it('IPv6 gets an IPv6 RST', () => {
    const h = harness();
    h.iface.receive(tcpPacket({ seq: 9, ack: 10, flags: ACK }, APP6, DST6), 0);
    const [p] = h.out(0);
    expect(p).toMatchObject({ family: 6, src: DST6, dst: APP6 });
    expect(p.seg).toMatchObject({ seq: 10, flags: RST });
  });

  it('bounds the RST queue between polls', () => {
    const h = harness({ maxQueuedRst: 3 });
    for (let i = 0; i < 5; i++) h.iface.receive(tcpPacket({ srcPort: 1000 + i, ack: i, flags: ACK }), 0);
    expect(h.out(0)).toHaveLength(3);
    expect(h.iface.stats.rstDropped).toBe(2);
  });
});

describe('drops, counted by reason, never emitted', () => {
  const quiet = (h: ReturnType<typeof harness>) => {
    expect(h.raw(0)).toEqual([]);
    expect(h.connects).toEqual([]);
  };

  it('UDP and ICMP/ICMPv6', () => {
    const h = harness();
    h.iface.receive(ipPacket(APP4, DST4, IpProtocol.UDP, Uint8Array.of(0, 53, 0, 53, 0, 8, 0, 0)), 0);
    h.iface.receive(ipPacket(APP6, DST6, IpProtocol.UDP, Uint8Array.of(0, 53, 0, 53, 0, 8, 0, 0)), 0);
    h.iface.receive(ipPacket(APP4, DST4, IpProtocol.ICMP, Uint8Array.of(8, 0, 0xf7, 0xff, 0, 0, 0, 0)), 0);
    h.iface.receive(ipPacket(APP6, DST6, IpProtocol.ICMPV6, Uint8Array.of(128, 0, 0, 0, 0, 0, 0, 0)), 0);
    h.iface.receive(ipPacket(APP4, DST4, 47, new Uint8Array(4)), 0);
    // IPv6 UDP must carry a checksum (RFC 8200 §8.1): checksum 0 counts as bad, IPv4's 0 means "none"; the ICMPv6
    // echo's zero checksum is bad too (pseudo-header), the valid ICMPv4 echo has no onEcho to go to.
    expect(h.iface.stats).toMatchObject({ udpDropped: 1, badChecksum: 2, icmpDropped: 1, otherDropped: 1, rxPackets: 5 });
    quiet(h);
  });

  it("IPv6 in 'blackhole' mode, even a SYN", () => {
    const h = harness({ ipv6: 'blackhole' });
    h.iface.receive(tcpPacket(SYN_SEG, APP6, DST6), 0);
    h.iface.receive(tcpPacket({ flags: ACK, ack: 1 }, APP6, DST6), 0);
    expect(h.iface.stats.ipv6Dropped).toBe(2);
    quiet(h);
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    expect(h.connects).toHaveLength(1); // IPv4 still carried
  });

  it('fragments (IPv4 MF, IPv4 offset, IPv6 fragment header)', () => {
    const h = harness();
    const mf = tcpPacket(SYN_SEG);
    mf[6] = 0x20; // MF, DF cleared
    mf[10] = mf[11] = 0;
    fixIpv4Checksum(mf);
    const off = tcpPacket(SYN_SEG);
    off[6] = 0x00; off[7] = 0x10;
    fixIpv4Checksum(off);
    const frag6 = ipPacket(APP6, DST6, IpProtocol.IPV6_FRAG, Uint8Array.of(IpProtocol.TCP, 0, 0, 1, 0, 0, 0, 1, ...new Uint8Array(20)));
    for (const p of [mf, off, frag6]) h.iface.receive(p, 0);
    expect(h.iface.stats.fragments).toBe(3);
    quiet(h);
  });

  it('malformed, bad checksums, bad version, unusable addresses', () => {
    const h = harness();
    const good = tcpPacket(SYN_SEG);
    h.iface.receive(new Uint8Array(0), 0); // malformed + badVersion
    h.iface.receive(good.subarray(0, 19), 0); // malformed (IPv4 header truncated)
    const short = good.slice(); short[3] = 200; fixIpv4Checksum(short);
    h.iface.receive(short, 0); // malformed (total length > received)
    const badIp = good.slice(); badIp[8] ^= 1;
    h.iface.receive(badIp, 0); // bad-checksum (IPv4 header)
    const badTcp = good.slice(); badTcp[good.length - 1] ^= 0x55;
    h.iface.receive(badTcp, 0); // bad-checksum (TCP)
    const doff = good.slice(); doff[20 + 12] = 0x40; // TCP data offset 4
    h.iface.receive(doff, 0); // malformed
    h.iface.receive(Uint8Array.of(0x50, 0, 0, 0), 0); // malformed + badVersion
    h.iface.receive(tcpPacket(SYN_SEG, APP4, Uint8Array.of(255, 255, 255, 255)), 0); // badAddress
    h.iface.receive(tcpPacket(SYN_SEG, APP6, Uint8Array.of(0xff, 2, ...new Uint8Array(13), 1)), 0); // badAddress
    h.iface.receive(tcpPacket({ ...SYN_SEG, dstPort: 0 }), 0); // badAddress
    expect(h.iface.stats).toMatchObject({ malformed: 5, badVersion: 2, badChecksum: 2, badAddress: 3, rxPackets: 10 });
    quiet(h);
  });
});

describe('construction', () => {
  it('rejects an impossible MTU', () => {
    expect(() => new Interface({ mtu: 40 })).toThrow(RangeError);
  });
});

function fixIpv4Checksum(p: Uint8Array): void {
  p[10] = p[11] = 0;
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (p[i] << 8) | p[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  s = ~s & 0xffff;
  p[10] = s >> 8;
  p[11] = s & 0xff;
}

describe('UDP hook', () => {
  function udpPacket(src: Uint8Array, dst: Uint8Array, payload: Uint8Array): Uint8Array {
    const buf = new Uint8Array(UDP_HEADER_LEN + payload.length);
    UdpRepr.emit({ srcPort: 40000, dstPort: 53, payload }, buf, { src, dst });
    return ipPacket(src, dst, IpProtocol.UDP, buf);
  }

  it('hands valid datagrams to onUdp; taken ones are not counted as dropped', () => {
    const got: string[] = [];
    const h = harness({ onUdp: (d) => { got.push(`${d.srcPort}>${d.dstPort}:${text(d.payload)}`); return d.dstPort === 53; } });
    h.iface.receive(udpPacket(APP4, DST4, bytes('query')), 0);
    h.iface.receive(udpPacket(APP6, DST6, bytes('query6')), 0);
    expect(got).toEqual(['40000>53:query', '40000>53:query6']);
    expect(h.iface.stats.udpDropped).toBe(0);
  });

  it('drops a datagram with a bad checksum before the hook sees it', () => {
    const got: unknown[] = [];
    const h = harness({ onUdp: (d) => { got.push(d); return true; } });
    const p = udpPacket(APP4, DST4, bytes('query'));
    p[p.length - 1] ^= 0xff;
    h.iface.receive(p, 0);
    expect(got).toEqual([]);
    expect(h.iface.stats.badChecksum).toBe(1);
  });

  it('sendUdp emits a checksummed IPv4/IPv6 datagram at the next poll', () => {
    const h = harness();
    h.iface.sendUdp(DST4, 53, APP4, 40000, bytes('answer'));
    h.iface.sendUdp(DST6, 53, APP6, 40001, bytes('answer6'));
    const raw = h.raw(0);
    expect(raw).toHaveLength(2);
    const v4 = Ipv4View.checked(raw[0]);
    if (isWireError(v4)) throw new Error(v4.message);
    const u4 = UdpView.checked(v4.payload);
    if (isWireError(u4)) throw new Error(u4.message);
    expect(u4.verifyChecksum(DST4, APP4)).toBe(true);
    expect([u4.srcPort, u4.dstPort, text(u4.payload)]).toEqual([53, 40000, 'answer']);
    const v6 = Ipv6View.checked(raw[1]);
    if (isWireError(v6)) throw new Error(v6.message);
    const u6 = UdpView.checked(v6.upperPayload);
    if (isWireError(u6)) throw new Error(u6.message);
    expect(u6.verifyChecksum(DST6, APP6)).toBe(true);
    expect([u6.dstPort, text(u6.payload)]).toEqual([40001, 'answer6']);
  });
});
