// The Interface in offload mode (a TUN with a virtio-net header): input whose checksum the kernel vouched for
// (NEEDS_CSUM: the field holds only a partial sum) is accepted without verification, other input still is; TCP out
// carries the pseudo-header sum and a TxOffload (csum_start/offset, hdr_len, gso_size) that, finished and cut the
// way the kernel does, yields valid MSS-sized packets. Also: poll dispatches only flows with work.
import { describe, expect, it } from 'vitest';
import { Interface, type TxOffload } from '../../../src/netstack/iface';
import { TcpState } from '../../../src/netstack/socket/index';
import {
  IpProtocol, Ipv4View, Ipv6View, UDP_HEADER_LEN, UdpRepr, internetChecksum, isWireError, pseudoHeaderSum, seqAdd,
} from '../../../src/netstack/wire/index';
import { ACK, APP4, APP6, DST4, DST6, IRS, ISS, SYN_SEG, bytes, harness, ipPacket, parse, tcpPacket } from './helpers';

const L = (n: number): number => seqAdd(ISS, n);
const R = (n: number): number => seqAdd(IRS, n);

/** A TCP packet whose checksum field holds a partial sum, as the kernel hands it over with NEEDS_CSUM. */
function partial(p: Uint8Array): Uint8Array {
  const off = (p[0] >> 4 === 4 ? 20 : 40) + 16;
  p[off] ^= 0x5a; // anything but the full checksum
  return p;
}

/** What the kernel does with NEEDS_CSUM: the checksum from csumStart to the end, stored at csumStart + csumOffset. */
function finish(p: Uint8Array, o: TxOffload): Uint8Array {
  const c = internetChecksum(p, o.csumStart, p.length - o.csumStart);
  p[o.csumStart + o.csumOffset] = c >> 8;
  p[o.csumStart + o.csumOffset + 1] = c & 0xff;
  return p;
}

function established(family: 4 | 6, window = 65535) {
  const [app, dst] = family === 4 ? [APP4, DST4] : [APP6, DST6];
  const out: Array<{ p: Uint8Array; o: TxOffload | null }> = [];
  const h = harness({ offload: true });
  const poll = (t = 0) => {
    out.length = 0;
    h.iface.poll(t, (p, o) => out.push({ p: p.slice(), o }));
    return out;
  };
  h.iface.receive(tcpPacket({ ...SYN_SEG, windowScale: 0 }, app, dst), 0);
  h.connects[0].socket.accept(0);
  poll();
  h.iface.receive(tcpPacket({ seq: R(1), ack: L(1), flags: ACK, window }, app, dst), 1);
  expect(h.connects[0].socket.state).toBe(TcpState.ESTABLISHED);
  return { h, flow: h.connects[0], poll, app, dst };
}

describe('offload input: checksums the kernel vouched for', () => {
  it('accepts a TCP segment with a partial checksum when trusted, drops it otherwise', () => {
    const h = harness();
    h.iface.receive(partial(tcpPacket(SYN_SEG)), 0);
    expect(h.iface.stats.badChecksum).toBe(1);
    expect(h.connects).toHaveLength(0);
    h.iface.receive(partial(tcpPacket(SYN_SEG)), 0, true);
    expect(h.connects).toHaveLength(1);
    h.iface.receive(partial(tcpPacket(SYN_SEG, APP6, DST6)), 0, true);
    expect(h.connects).toHaveLength(2);
  });

  it('takes a GSO super-packet (one segment far beyond the MTU) as one segment', () => {
    const { h, flow } = established(4);
    const big = new Uint8Array(60_000).map((_, i) => i * 7);
    h.iface.receive(partial(tcpPacket({ seq: R(1), ack: L(1), flags: ACK, payload: big })), 2, true);
    expect(flow.socket.recv()).toEqual(big);
    expect(h.iface.stats.badChecksum).toBe(0);
  });

  it('UDP with a partial checksum reaches onUdp when trusted', () => {
    const got: string[] = [];
    const h = harness({ onUdp: (d) => (got.push(String(d.dstPort)), true) });
    const u = new Uint8Array(UDP_HEADER_LEN + 5);
    UdpRepr.emit({ srcPort: 40000, dstPort: 53, payload: bytes('query') }, u, { src: APP4, dst: DST4, checksum: 'pseudo' });
    h.iface.receive(ipPacket(APP4, DST4, IpProtocol.UDP, u), 0);
    expect(got).toEqual([]);
    h.iface.receive(ipPacket(APP4, DST4, IpProtocol.UDP, u), 0, true);
    expect(got).toEqual(['53']);
  });

  it('the IPv4 header checksum is still verified', () => {
    const h = harness();
    const p = tcpPacket(SYN_SEG);
    p[10] ^= 1;
    h.iface.receive(p, 0, true);
    expect(h.iface.stats.badChecksum).toBe(1);
  });
});

describe('offload output: partial checksums and GSO segments', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: the SYN-ACK carries the pseudo-header sum and a NEEDS_CSUM description`, () => {
      const h = harness({ offload: true });
      const [app, dst] = family === 4 ? [APP4, DST4] : [APP6, DST6];
      h.iface.receive(tcpPacket(SYN_SEG, app, dst), 0);
      h.connects[0].socket.accept(0);
      const got: Array<{ p: Uint8Array; o: TxOffload | null }> = [];
      h.iface.poll(0, (p, o) => got.push({ p: p.slice(), o }));
      expect(got).toHaveLength(1);
      const { p, o } = got[0];
      const hl = family === 4 ? 20 : 40;
      const tl = p.length - hl;
      expect(o).toEqual({ family, csumStart: hl, csumOffset: 16, hdrLen: p.length, gsoSize: 0 });
      expect((p[hl + 16] << 8) | p[hl + 17]).toBe(pseudoHeaderSum(dst, app, IpProtocol.TCP, tl));
      expect(parse(finish(p, o!)).seg).toMatchObject({ flags: 0x12, seq: ISS });
    });

    it(`IPv${family}: a large send leaves as one segment of whole MSS packets (gso_size = MSS), cut into valid packets`, () => {
      const { h, flow, poll } = established(family);
      const mss = family === 4 ? 1460 : 1440;
      const data = new Uint8Array(40_000).map((_, i) => i * 13);
      expect(flow.socket.send(data)).toBe(40_000);
      const out = poll(2);
      expect(out).toHaveLength(1); // cwnd 10 MSS, window 64 KiB: one segment
      const { p, o } = out[0];
      const hl = family === 4 ? 20 : 40;
      expect(o).toMatchObject({ family, csumStart: hl, csumOffset: 16, gsoSize: mss, hdrLen: hl + 20 });
      expect(p.length).toBe(hl + 20 + 10 * mss);
      const ip = family === 4 ? Ipv4View.checked(p) : Ipv6View.checked(p);
      if (isWireError(ip)) throw new Error(ip.message);
      expect(ip.packet.length).toBe(p.length); // IP length fields cover the whole super-packet
      // Finished like the kernel finishes it, the whole segment verifies (cutting is checked in socket/gso.test.ts).
      const seg = parse(finish(p.slice(), o!)).seg;
      expect(seg.seq).toBe(L(1));
      expect(seg.payload).toEqual(data.subarray(0, 10 * mss));
    });
  }

  it('without offload: complete checksums, no TxOffload, MSS-sized segments', () => {
    const h = harness();
    h.iface.receive(tcpPacket(SYN_SEG), 0);
    h.connects[0].socket.accept(0);
    h.iface.poll(0, () => {});
    h.iface.receive(tcpPacket({ seq: R(1), ack: L(1), flags: ACK, window: 65535 }), 1);
    h.connects[0].socket.send(new Uint8Array(5000));
    const got: Array<TxOffload | null> = [];
    const sizes: number[] = [];
    h.iface.poll(2, (p, o) => { got.push(o); sizes.push(parse(p).seg.payload.length); });
    expect(got.every((o) => o === null)).toBe(true);
    expect(sizes).toEqual([1460, 1460, 1460, 620]);
  });

  it('setOffload switches an interface (the driver does it for an offload TUN)', () => {
    const iface = new Interface();
    expect(iface.offload).toBe(false);
    iface.setOffload(true);
    expect(iface.offload).toBe(true);
  });
});

describe('poll visits only flows with work', () => {
  it('an idle flow is not dispatched; a segment, an application call or a due timer makes it so', () => {
    const h = harness();
    for (let i = 0; i < 50; i++) h.iface.receive(tcpPacket({ ...SYN_SEG, srcPort: 40000 + i }), 0);
    for (const f of h.connects) f.socket.accept(0);
    h.iface.poll(0, () => {});
    for (let i = 0; i < 50; i++) h.iface.receive(tcpPacket({ srcPort: 40000 + i, seq: R(1), ack: L(1), flags: ACK }), 1);
    h.iface.poll(1, () => {});
    const calls = new Map<number, number>();
    for (const f of h.connects) {
      const s = f.socket;
      const orig = s.dispatch.bind(s);
      s.dispatch = (t, emit) => { calls.set(f.id, (calls.get(f.id) ?? 0) + 1); orig(t, emit); };
    }
    expect(h.iface.poll(2, () => {})).toBeNull();
    expect(calls.size).toBe(0);
    const [a, b, c] = h.connects;
    h.iface.receive(tcpPacket({ srcPort: 40000, seq: R(1), ack: L(1), flags: ACK, payload: bytes('x') }), 3);
    b.socket.send(bytes('y'));
    const at = h.iface.poll(3, () => {});
    expect([...calls.keys()].sort()).toEqual([a.id, b.id].sort());
    expect(at).toBeGreaterThan(3); // b's retransmission timer
    calls.clear();
    h.iface.poll(at!, () => {});
    expect([...calls.keys()]).toEqual([b.id]); // only the flow whose timer is due
    expect(c.socket.state).toBe(TcpState.ESTABLISHED);
  });

  it('returns the earliest deadline across flows, exactly, and null once nothing is pending', () => {
    const h = harness();
    h.iface.receive(tcpPacket({ ...SYN_SEG, srcPort: 1 }), 0);
    h.iface.receive(tcpPacket({ ...SYN_SEG, srcPort: 2 }), 0);
    for (const f of h.connects) f.socket.accept(0);
    const first = h.iface.poll(0, () => {});
    expect(first).toBe(1000); // initial RTO of both SYN-ACKs
    h.iface.receive(tcpPacket({ srcPort: 1, seq: R(1), ack: L(1), flags: ACK }), 10);
    expect(h.iface.poll(10, () => {})).toBe(1000); // flow 2 still waits for its ACK
    h.iface.receive(tcpPacket({ srcPort: 2, seq: R(1), ack: L(1), flags: ACK }), 20);
    expect(h.iface.poll(20, () => {})).toBeNull();
  });
});
