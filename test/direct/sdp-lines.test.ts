// What the direct path reads from WebRTC's text and from a datagram batch: the SDP fingerprint, a candidate's
// address, and where a run of whole frames ends. Any input gives a value or null, never an exception (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { candidateAddress, fingerprintOf, relayedCandidateAddress, unusableCandidateAddress } from '../../src/direct/sdp-lines';
import { groupEnd, unreliableEligible } from '../../src/direct/datagram-records';
import { encodeFrames, FrameType, type Frame } from '../../src/protocol/index';

describe('fingerprintOf / candidateAddress', () => {
  it('reads the fingerprint line and UDP candidates; refuses the rest', () => {
    expect(fingerprintOf('v=0\r\na=fingerprint:SHA-256 ab:CD:01\r\na=setup:actpass\r\n')).toBe('sha-256 AB:CD:01');
    expect(fingerprintOf('v=0\r\n')).toBeNull();
    expect(candidateAddress('candidate:1 1 UDP 2122317823 10.9.0.2 50000 typ host')).toEqual({ address: '10.9.0.2', port: 50000 });
    expect(candidateAddress('a=candidate:2 1 udp 1 2001:db8::1 3478 typ relay raddr 0.0.0.0 rport 0')).toEqual({ address: '2001:db8::1', port: 3478 });
    expect(candidateAddress('candidate:1 1 TCP 1 10.9.0.2 50000 typ host')).toBeNull(); // TCP: not ours
    expect(candidateAddress('candidate:1 1 UDP 1 abc.local 50000 typ host')).toBeNull(); // mDNS name: no IP
    expect(candidateAddress('candidate:1 1 UDP 1 10.9.0.2 0 typ host')).toBeNull();
    expect(relayedCandidateAddress('a=candidate:2 1 udp 1 10.80.1.1 50213 typ relay raddr 10.80.2.2 rport 41327')).toEqual({ address: '10.80.1.1', port: 50213 });
    expect(relayedCandidateAddress('candidate:1 1 UDP 2122317823 10.9.0.2 50000 typ host')).toBeNull();
    expect(relayedCandidateAddress('candidate:1 1 UDP 1 10.9.0.2 50000 typ srflx raddr 0.0.0.0 rport 0')).toBeNull();
  });

  it('any text: a value or null', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => {
      const f = fingerprintOf(text);
      expect(f === null || /^\S+ [0-9A-F:]+$/.test(f)).toBe(true);
      const c = candidateAddress(text);
      if (c) expect(c.port).toBeGreaterThanOrEqual(1);
      const r = relayedCandidateAddress(text);
      if (r) expect(r).toEqual(c);
    }));
  });
});

describe('what may travel unreliably', () => {
  it('only UDP datagrams that name their address and close nothing; loopback candidates are no peers', () => {
    const to = { host: '10.0.0.53', port: 53 };
    const data = new Uint8Array(10);
    expect(unreliableEligible(encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: 1, address: to, data }, { type: FrameType.UDP_DATAGRAM, stream: 3, address: to, data }]))).toBe(true);
    expect(unreliableEligible(encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: 1, address: to, data }, { type: FrameType.UDP_DATAGRAM, stream: 1, address: null, data }]))).toBe(false);
    expect(unreliableEligible(encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: 1, address: null, data: new Uint8Array(0), close: { code: 0, message: '' } }]))).toBe(false);
    expect(unreliableEligible(encodeFrames([{ type: FrameType.PING, stream: 0, opaque: new Uint8Array(8) }]))).toBe(false);
    expect(unreliableEligible(new Uint8Array(0))).toBe(false);
    for (const a of ['127.0.0.1', '127.9.9.9', '0.0.0.0', '224.0.0.251', '255.255.255.255', '::1', '::', 'ff02::fb',
      // other spellings of the same: long form, IPv4-mapped, IPv4-compatible
      '0:0:0:0:0:0:0:1', '::ffff:7f00:1', '::ffff:127.0.0.1', '::127.0.0.1', '::0', '::ffff:0.0.0.0', 'not an address']) {
      expect(unusableCandidateAddress(a), a).toBe(true);
    }
    for (const a of ['10.80.1.2', '192.168.1.5', '2001:db8::1', 'fd79::2', '::ffff:10.0.0.1']) expect(unusableCandidateAddress(a), a).toBe(false);
  });
});

describe('groupEnd (datagram records of about one packet)', () => {
  const udp = (n: number, flow = 1): Frame => ({ type: FrameType.UDP_DATAGRAM, stream: flow, address: null, data: new Uint8Array(n) });

  it('groups whole frames up to the target; a frame larger than it goes alone', () => {
    const record = encodeFrames([udp(400), udp(400), udp(400), udp(2000), udp(10)]);
    const cuts: number[] = [];
    for (let off = 0; off < record.length; off = groupEnd(record, off, 1100)) cuts.push(groupEnd(record, off, 1100) - off);
    const f = 9 + 1 + 400; // header, flags, payload
    expect(cuts).toEqual([2 * f, f, 9 + 1 + 2000, 9 + 1 + 10]);
  });

  it('always advances and splits only between frames, whatever the frames', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 4000 }), (sizes, target) => {
      const record = encodeFrames(sizes.map((n) => udp(n)));
      const bounds = new Set<number>([0]);
      for (let off = 0, i = 0; i < sizes.length; i++) bounds.add((off += 9 + 1 + sizes[i]!));
      for (let off = 0; off < record.length; ) {
        const end = groupEnd(record, off, target);
        expect(end).toBeGreaterThan(off);
        expect(bounds.has(end)).toBe(true);
        off = end;
      }
    }));
  });
});
