// The SOCKS5 UDP request header (RFC 1928 §7): named cases as hex literals (every drop reason, each address type),
// and fast-check properties — encode → parse round-trips, random or mutated bytes never throw and only ever give a
// datagram or a SocksUdpError with a known reason.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SocksUdpDrop, SocksUdpError } from '../../src/socks/errors';
import {
  encodeUdpDatagram, MAX_UDP_PAYLOAD_IPV4, parseUdpDatagram, udpHeaderLength,
} from '../../src/socks/udp-header';
import { MAX_DATAGRAM_PAYLOAD } from '../../src/protocol/datagram-types';
import { formatIPv4, formatIPv6 } from '../../src/protocol/address';
import { ascii, concat, hex } from './helpers';

function reasonOf(input: Uint8Array, maxPayload?: number): string {
  const r = parseUdpDatagram(input, maxPayload);
  if (!(r instanceof SocksUdpError)) return 'ok';
  expect(r.code).toBe('ZKS_ERR_UDP');
  return r.reason;
}

describe('parseUdpDatagram: named cases', () => {
  it('IPv4 target with payload', () => {
    const r = parseUdpDatagram(hex('0000 00 01 0a090807 0035 abcdef'));
    expect(r).toEqual({ target: { host: '10.9.8.7', port: 53 }, payload: hex('abcdef') });
  });

  it('IPv6 target, canonical text, empty payload', () => {
    const r = parseUdpDatagram(hex('0000 00 04 20010db8000000000000000000000001 01bb'));
    expect(r).toEqual({ target: { host: '2001:db8::1', port: 443 }, payload: new Uint8Array(0) });
  });

  it('domain target is lower-cased; an IP literal in a domain is normalised', () => {
    const name = ascii('Example.TEST');
    expect(parseUdpDatagram(concat(hex('0000 00 03'), Uint8Array.of(name.length), name, hex('0035 01'))))
      .toEqual({ target: { host: 'example.test', port: 53 }, payload: hex('01') });
    const v6 = ascii('[::1]');
    expect(parseUdpDatagram(concat(hex('0000 00 03'), Uint8Array.of(v6.length), v6, hex('0007'))))
      .toEqual({ target: { host: '::1', port: 7 }, payload: new Uint8Array(0) });
  });

  it('the payload is a view, not a copy', () => {
    const buf = hex('0000 00 01 7f000001 0007 0102');
    const r = parseUdpDatagram(buf);
    if (r instanceof SocksUdpError) throw r;
    expect(r.payload.buffer).toBe(buf.buffer);
  });

  it.each([
    ['empty', '', SocksUdpDrop.TRUNCATED],
    ['three bytes', '000000', SocksUdpDrop.TRUNCATED],
    ['IPv4 without port', '0000 00 01 7f000001 00', SocksUdpDrop.TRUNCATED],
    ['IPv6 cut short', '0000 00 04 00000000000000000000000000000001', SocksUdpDrop.TRUNCATED],
    ['domain without length', '0000 00 03', SocksUdpDrop.TRUNCATED],
    ['domain longer than the datagram', '0000 00 03 05 6162 0035', SocksUdpDrop.TRUNCATED],
    ['RSV 0x0100', '0100 00 01 7f000001 0035', SocksUdpDrop.RESERVED],
    ['RSV 0x0001', '0001 00 01 7f000001 0035', SocksUdpDrop.RESERVED],
    ['FRAG 1', '0000 01 01 7f000001 0035 aa', SocksUdpDrop.FRAGMENTED],
    ['FRAG 0x81 (last fragment)', '0000 81 01 7f000001 0035 aa', SocksUdpDrop.FRAGMENTED],
    ['FRAG set, header otherwise garbage', '0000 02 ff', SocksUdpDrop.FRAGMENTED],
    ['ATYP 0', '0000 00 00 7f000001 0035', SocksUdpDrop.ADDRESS_TYPE],
    ['ATYP 2', '0000 00 02 7f000001 0035', SocksUdpDrop.ADDRESS_TYPE],
    ['ATYP 5', '0000 00 05 7f000001 0035', SocksUdpDrop.ADDRESS_TYPE],
    ['empty domain', '0000 00 03 00 0035', SocksUdpDrop.BAD_TARGET],
    ['domain with a space', '0000 00 03 03 612062 0035', SocksUdpDrop.BAD_TARGET],
    ['numeric last label (127.1 shorthand)', '0000 00 03 05 3132372e31 0035', SocksUdpDrop.BAD_TARGET],
    ['port 0', '0000 00 01 7f000001 0000 aa', SocksUdpDrop.BAD_TARGET],
  ])('%s → %s', (_name, input, reason) => {
    expect(reasonOf(hex(input))).toBe(reason);
  });

  it('oversize: more payload than the limit (default: what a datagram frame carries)', () => {
    const head = hex('0000 00 01 7f000001 0035');
    expect(reasonOf(concat(head, new Uint8Array(MAX_DATAGRAM_PAYLOAD)))).toBe('ok');
    expect(reasonOf(concat(head, new Uint8Array(MAX_DATAGRAM_PAYLOAD + 1)))).toBe(SocksUdpDrop.OVERSIZE);
    expect(reasonOf(concat(head, new Uint8Array(101)), 100)).toBe(SocksUdpDrop.OVERSIZE);
  });
});

describe('encodeUdpDatagram', () => {
  it('writes the source of a reply into the header', () => {
    expect(encodeUdpDatagram({ host: '10.9.8.7', port: 53 }, hex('beef'))).toEqual(hex('0000 00 01 0a090807 0035 beef'));
    expect(encodeUdpDatagram({ host: '::1', port: 7 }, new Uint8Array(0)))
      .toEqual(hex('0000 00 04 00000000000000000000000000000001 0007'));
    expect(encodeUdpDatagram({ host: 'a.test', port: 1 }, hex('01'))).toEqual(hex('0000 00 03 06 612e74657374 0001 01'));
  });

  it('refuses what a header cannot carry, and replies that do not fit the client\'s UDP', () => {
    const bad = encodeUdpDatagram({ host: 'not a host', port: 53 }, hex('00'));
    expect(bad).toBeInstanceOf(SocksUdpError);
    expect((bad as SocksUdpError).reason).toBe(SocksUdpDrop.BAD_TARGET);
    expect(encodeUdpDatagram({ host: '1.2.3.4', port: 70_000 }, hex('00'))).toBeInstanceOf(SocksUdpError);
    const fits = encodeUdpDatagram({ host: '1.2.3.4', port: 53 }, new Uint8Array(MAX_UDP_PAYLOAD_IPV4 - 10), MAX_UDP_PAYLOAD_IPV4);
    expect(fits).toBeInstanceOf(Uint8Array);
    const big = encodeUdpDatagram({ host: '1.2.3.4', port: 53 }, new Uint8Array(MAX_UDP_PAYLOAD_IPV4 - 9), MAX_UDP_PAYLOAD_IPV4);
    expect((big as SocksUdpError).reason).toBe(SocksUdpDrop.OVERSIZE);
  });
});

const KNOWN_REASONS = new Set<string>(Object.values(SocksUdpDrop));

const targets: fc.Arbitrary<{ host: string; port: number }> = fc.record({
  host: fc.oneof(
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIPv4),
    fc.uint8Array({ minLength: 16, maxLength: 16 }).map(formatIPv6),
    fc.domain().filter((d) => udpHeaderLength({ host: d, port: 1 }) !== null),
  ),
  port: fc.integer({ min: 1, max: 0xffff }),
});

describe('properties (fast-check)', () => {
  it('encode → parse round-trips every address type and payload', () => {
    fc.assert(fc.property(targets, fc.uint8Array({ maxLength: 600 }), (target, payload) => {
      const wire = encodeUdpDatagram(target, payload);
      if (wire instanceof SocksUdpError) throw wire;
      expect(wire.length).toBe(udpHeaderLength(target)! + payload.length);
      expect(parseUdpDatagram(wire)).toEqual({ target: { host: target.host.toLowerCase(), port: target.port }, payload });
    }), { numRuns: 500 });
  });

  it('random and mutated bytes never throw: a datagram or a SocksUdpError with a known reason', () => {
    const valid = [hex('0000 00 01 7f000001 0035 aabb'), hex('0000 00 03 04 612e6263 01bb'), hex('0000 00 04 00000000000000000000000000000001 0007 01')];
    const mutated = fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat())
      .map(([base, edits, cut]) => {
        const b = base.slice();
        for (const [pos, val] of edits) b[pos % b.length] = val;
        return b.subarray(0, b.length - (cut % 6));
      });
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), fc.integer({ min: 0, max: 400 }), (input, max) => {
      const r = parseUdpDatagram(input, max);
      if (r instanceof SocksUdpError) {
        expect(r.code).toBe('ZKS_ERR_UDP');
        expect(KNOWN_REASONS.has(r.reason)).toBe(true);
      } else {
        expect(r.target.port).toBeGreaterThan(0);
        expect(r.payload.length).toBeLessThanOrEqual(max);
        // what parsed re-encodes to a header of the same length (the host is canonical)
        expect(udpHeaderLength(r.target)).not.toBeNull();
      }
    }), { numRuns: 3000 });
  });
});
