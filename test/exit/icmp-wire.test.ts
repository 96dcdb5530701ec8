// The exit's ICMP parser and encoder (src/exit/icmp-wire.ts): real packets captured with tcpdump in the test
// topology (test/exit/ping-topology.ts), hand-built errors for what that topology cannot produce, and random bytes:
// parseIcmp classifies or returns ZKS_ERR_MALFORMED_PACKET, never throws.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZksError } from '../../src/errors/zks-error';
import { describeIcmpError, encodeEchoRequest, internetChecksum, parseIcmp, type IcmpParsed } from '../../src/exit/icmp-wire';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const V4_RAW = { family: 4, ipHeader: true } as const;
const V4_DGRAM = { family: 4, ipHeader: false } as const;
const V6 = { family: 6, ipHeader: false } as const;

// tcpdump -x of `ping -s 4 -p ab` in the test topology (the IPv4 ones as a raw socket sees them: IP header first).
const V4_REPLY = hex('4500 0020 f004 0000 4001 24a1 cb00 7101 c633 6402 0000 da03 7afa 0001 ab00 0000');
const V4_HOST_UNREACHABLE = hex(`45c0 003c ff9e 0000 4001 25f8 c633 6401 c633 6402 0301 fcfe 0000 0000 4500 0020
  660c 4000 4001 e893 c633 6402 c000 0207 0800 d211 7aec 0001 ab00 0000`);
const V4_REQUEST = hex('0800 d211 7aec 0001 ab00 0000');
const V6_REPLY = hex('8100 fd43 7afb 0001 ab00 0000');
const V6_NO_ROUTE = hex(`0100 17e7 0000 0000 600d f117 000c 3a40 2001 0db8 0001 0000 0000 0000 0000 0002
  2001 0db8 0004 0000 0000 0000 0000 0007 8000 fe49 7aed 0001 ab00 0000`);

describe('parseIcmp: captured packets', () => {
  it('an IPv4 echo reply with its IP header: identifier, sequence, payload, TTL and source', () => {
    expect(parseIcmp(V4_REPLY, V4_RAW)).toEqual({
      kind: 'echo-reply', ident: 0x7afa, seq: 1, payload: hex('ab000000'), ttl: 64, source: '203.0.113.1',
    });
  });

  it('the same reply as a ping socket hands it over (no IP header): TTL comes from the socket instead', () => {
    expect(parseIcmp(V4_REPLY.subarray(20), V4_DGRAM)).toEqual({
      kind: 'echo-reply', ident: 0x7afa, seq: 1, payload: hex('ab000000'), ttl: -1, source: '',
    });
  });

  it('host unreachable from the router names the echo it quotes and where it was going', () => {
    expect(parseIcmp(V4_HOST_UNREACHABLE, V4_RAW)).toEqual({
      kind: 'error', failure: 'unreachable', type: 3, code: 1, ident: 0x7aec, seq: 1, destination: '192.0.2.7', source: '198.51.100.1',
    });
  });

  it("our own request, as a ping socket's error queue returns it", () => {
    expect(parseIcmp(V4_REQUEST, V4_DGRAM)).toMatchObject({ kind: 'echo-request', ident: 0x7aec, seq: 1 });
  });

  it('ICMPv6 echo reply and "no route" destination unreachable', () => {
    expect(parseIcmp(V6_REPLY, V6)).toEqual({ kind: 'echo-reply', ident: 0x7afb, seq: 1, payload: hex('ab000000'), ttl: -1, source: '' });
    expect(parseIcmp(V6_NO_ROUTE, V6)).toEqual({
      kind: 'error', failure: 'unreachable', type: 1, code: 0, ident: 0x7aed, seq: 1, destination: '2001:db8:4::7', source: '',
    });
  });
});

/** An IPv4 time-exceeded error quoting an echo (the test topology has one hop, so it cannot produce one). */
function v4TimeExceeded(ident: number, seq: number): Uint8Array {
  const quoted = hex(`4500 0020 0000 4000 0101 0000 c633 6402 cb00 7101`);
  const echo = encodeEchoRequest(4, ident, seq, new Uint8Array(4));
  const icmp = new Uint8Array([11, 0, 0, 0, 0, 0, 0, 0, ...quoted, ...echo.subarray(0, 8)]);
  const outer = hex('4500 0000 0000 0000 4001 0000 0a00 0001 c633 6402');
  outer[3] = outer.length + icmp.length;
  return new Uint8Array([...outer, ...icmp]);
}

describe('parseIcmp: named cases', () => {
  it('time exceeded → ttl-exceeded, with the echo it quotes', () => {
    expect(parseIcmp(v4TimeExceeded(0x1234, 0xfffe), V4_RAW)).toEqual({
      kind: 'error', failure: 'ttl-exceeded', type: 11, code: 0, ident: 0x1234, seq: 0xfffe, destination: '203.0.113.1', source: '10.0.0.1',
    });
  });

  it('an error about a UDP datagram (not an echo) is not ours', () => {
    const udp = v4TimeExceeded(1, 2);
    udp[20 + 8 + 9] = 17; // the quoted header's protocol
    expect(parseIcmp(udp, V4_RAW)).toEqual({ kind: 'other', type: 11 });
  });

  it('other ICMP types are passed over', () => {
    expect(parseIcmp(hex('0d00 0000 0000 0000'), V4_DGRAM)).toEqual({ kind: 'other', type: 13 });
    expect(parseIcmp(hex('8700 0000 0000 0000'), V6)).toEqual({ kind: 'other', type: 135 });
  });

  it.each([
    ['empty', new Uint8Array(0), V4_DGRAM, /shorter than its header/],
    ['7 bytes', hex('0000 0000 0000 00'), V6, /shorter than its header/],
    ['an IPv6 header on an IPv4 raw socket', hex(`6000 0000 0008 3a40 ${'00'.repeat(32)} 8100 0000 0000 0000`), V4_RAW, /not an IPv4 header/],
    ['IHL below 5', hex('4400 0020 0000 0000 4001 0000 0000 0000 0000 0000 0000 0000 0000 0000'), V4_RAW, /bad IPv4 header length/],
    ['IHL past the end', hex('4f00 0020 0000 0000 4001 0000 0000 0000 0000 0000'), V4_RAW, /bad IPv4 header length/],
    ['TCP on an ICMP socket', hex('4500 0020 0000 0000 4006 0000 0000 0000 0000 0000 0000 0000 0000 0000'), V4_RAW, /IP protocol 6/],
    ['an error cut inside the quoted header', V4_HOST_UNREACHABLE.subarray(0, 40), V4_RAW, /truncated IPv4 header/],
    ['an error cut inside the quoted echo', V4_HOST_UNREACHABLE.subarray(0, 50), V4_RAW, /shorter than an ICMP header/],
    ['an ICMPv6 error cut inside the quoted header', V6_NO_ROUTE.subarray(0, 30), V6, /truncated IPv6 header/],
    ['an ICMPv6 error quoting an IPv4 header', hex(`0100 0000 0000 0000 4500 ${'00'.repeat(46)}`), V6, /not an IPv6 header/],
  ])('%s → ZKS_ERR_MALFORMED_PACKET', (_name, bytes, opts, message) => {
    const r = parseIcmp(bytes, opts);
    expect(r).toBeInstanceOf(ZksError);
    expect((r as ZksError).code).toBe('ZKS_ERR_MALFORMED_PACKET');
    expect((r as ZksError).message).toMatch(message);
  });

  it('every prefix of a captured error is either malformed or the full parse, never a throw', () => {
    for (const [bytes, opts] of [[V4_HOST_UNREACHABLE, V4_RAW], [V6_NO_ROUTE, V6]] as const) {
      for (let n = 0; n < bytes.length; n++) {
        const r = parseIcmp(bytes.subarray(0, n), opts);
        expect(r instanceof ZksError || r.kind === 'error', `prefix ${n}`).toBe(true);
      }
    }
  });
});

describe('encodeEchoRequest', () => {
  it('builds the request ping(8) sent, checksum included (IPv4)', () => {
    expect(encodeEchoRequest(4, 0x7aec, 1, hex('ab000000'))).toEqual(V4_REQUEST);
    expect(internetChecksum(V4_REQUEST)).toBe(0);
  });

  it('IPv6: type 128 and no checksum (the kernel computes it over the pseudo-header)', () => {
    expect(encodeEchoRequest(6, 0x7aed, 1, hex('ab000000'))).toEqual(hex('8000 0000 7aed 0001 ab00 0000'));
  });
});

describe('describeIcmpError: the texts iputils ping prints', () => {
  it.each([
    [4, 3, 1, 'Destination Host Unreachable'],
    [4, 3, 0, 'Destination Net Unreachable'],
    [4, 3, 13, 'Packet filtered'],
    [4, 3, 99, 'Dest Unreachable, Bad Code: 99'],
    [4, 11, 0, 'Time to live exceeded'],
    [6, 1, 0, 'Destination unreachable: No route'],
    [6, 1, 3, 'Destination unreachable: Address unreachable'],
    [6, 3, 0, 'Time exceeded: Hop limit'],
  ] as const)('IPv%i type %i code %i', (family, type, code, text) => {
    expect(describeIcmpError(family, type, code)).toBe(text);
  });
});

describe('properties', () => {
  const opts = fc.constantFrom(V4_RAW, V4_DGRAM, V6);

  it('random bytes: a classification or ZKS_ERR_MALFORMED_PACKET, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), opts, (bytes, o) => {
      const r = parseIcmp(bytes, o);
      if (r instanceof ZksError) expect(r.code).toBe('ZKS_ERR_MALFORMED_PACKET');
      else expect(['echo-reply', 'echo-request', 'error', 'other']).toContain(r.kind);
    }), { numRuns: 3000 });
  });

  it('random bytes after a valid IPv4 header and error prefix: still no throw', () => {
    const prefix = V4_HOST_UNREACHABLE.subarray(0, 28);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (tail) => {
      const r = parseIcmp(new Uint8Array([...prefix, ...tail]), V4_RAW);
      expect(r instanceof ZksError || r.kind === 'error' || r.kind === 'other').toBe(true);
    }), { numRuns: 2000 });
  });

  it('an encoded request round-trips: identifier, sequence and payload (and the IPv4 checksum verifies)', () => {
    fc.assert(fc.property(fc.constantFrom(4 as const, 6 as const), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 1472 }), (family, ident, seq, payload) => {
        const req = encodeEchoRequest(family, ident, seq, payload);
        if (family === 4) expect(internetChecksum(req)).toBe(0);
        const parsed = parseIcmp(req, { family, ipHeader: false }) as Extract<IcmpParsed, { payload: Uint8Array }>;
        expect(parsed).toMatchObject({ kind: 'echo-request', ident, seq });
        expect(parsed.payload).toEqual(payload);
      }));
  });
});
