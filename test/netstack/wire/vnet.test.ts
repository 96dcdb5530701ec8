// The virtio-net header: a hand-written legacy header (host byte order: little-endian on the hosts we run on, the
// same bytes Linux's virtio_net_hdr_from_skb writes), encode/parse round trips (fast-check), and the bounds.
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4, VNET_HDR_LEN, emitVnetHeader, encodeVnetHeaders,
  parseVnetHeader, type VnetHeader,
} from '../../../src/netstack/wire/index';
import { hex, toHex } from './helpers';

// A TSO IPv4 super-packet: IP 20 + TCP 32 header bytes, 1448-byte segments, checksum at 20 + 16.
const TSO: VnetHeader = { flags: VNET_HDR_F_NEEDS_CSUM, gsoType: VNET_HDR_GSO_TCPV4, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 };
const TSO_LE = '01 01 34 00 a8 05 14 00 10 00';

const header = fc.record({
  flags: fc.integer({ min: 0, max: 0xff }),
  gsoType: fc.integer({ min: 0, max: 0xff }),
  hdrLen: fc.integer({ min: 0, max: 0xffff }),
  gsoSize: fc.integer({ min: 0, max: 0xffff }),
  csumStart: fc.integer({ min: 0, max: 0xffff }),
  csumOffset: fc.integer({ min: 0, max: 0xffff }),
});

describe('virtio-net header', () => {
  it.runIf(endianness() === 'LE')('encodes a TSO header field by field, 16-bit fields little-endian (host order)', () => {
    const buf = new Uint8Array(VNET_HDR_LEN);
    expect(emitVnetHeader(TSO, buf)).toBe(VNET_HDR_LEN);
    expect(toHex(buf)).toBe(TSO_LE);
    expect(parseVnetHeader(hex(TSO_LE))).toEqual(TSO);
  });

  it('the zero header means: complete checksum, one packet', () => {
    expect(parseVnetHeader(new Uint8Array(VNET_HDR_LEN))).toEqual({
      flags: 0, gsoType: VNET_HDR_GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0,
    });
  });

  it('emit then parse gives the header back, at any offset', () => {
    fc.assert(fc.property(header, fc.integer({ min: 0, max: 20 }), (h, off) => {
      const buf = new Uint8Array(off + VNET_HDR_LEN + 3).fill(0xee);
      emitVnetHeader(h, buf, off);
      expect(parseVnetHeader(buf, off)).toEqual(h);
      expect(buf.subarray(0, off).every((b) => b === 0xee)).toBe(true); // nothing written outside the header
      expect(buf.subarray(off + VNET_HDR_LEN).every((b) => b === 0xee)).toBe(true);
    }));
  });

  it('encodeVnetHeaders puts one header per packet back to back', () => {
    fc.assert(fc.property(fc.array(header, { maxLength: 8 }), (hs) => {
      const out = encodeVnetHeaders(hs);
      expect(out.length).toBe(hs.length * VNET_HDR_LEN);
      hs.forEach((h, i) => expect(parseVnetHeader(out, i * VNET_HDR_LEN)).toEqual(h));
    }));
  });

  it('a header that does not fit: emit throws RangeError (caller bug), parse returns null', () => {
    expect(() => emitVnetHeader(TSO, new Uint8Array(VNET_HDR_LEN - 1))).toThrow(RangeError);
    expect(() => emitVnetHeader(TSO, new Uint8Array(VNET_HDR_LEN), 1)).toThrow(RangeError);
    expect(parseVnetHeader(new Uint8Array(VNET_HDR_LEN - 1))).toBeNull();
    expect(parseVnetHeader(new Uint8Array(VNET_HDR_LEN + 2), 3)).toBeNull();
  });
});
