// parseCidr and friends: examples (normalisation, must-reject), then fast-check — random text only ever yields a
// Cidr or ZksError('ZKS_ERR_CONFIG'); valid prefixes in any spelling round-trip to one canonical text that agrees
// with node:net and the WHATWG IPv6 serialiser (RFC 5952); outermost() never leaves nested prefixes.
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZksError } from '../../../src/errors/zks-error';
import { cidrContains, formatIp, outermost, parseCidr, parseIp } from '../../../src/daemon/system/cidr';
import { parseBypass } from '../../../src/daemon/system/index';

const configError = (f: () => unknown): void => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ZksError);
    expect((e as ZksError).code).toBe('ZKS_ERR_CONFIG');
    return;
  }
  throw new Error('expected ZKS_ERR_CONFIG');
};

describe('parseCidr examples', () => {
  it.each([
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['10.80.7.0/24', '10.80.7.0/24'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255/31', '255.255.255.254/31'],
    ['2001:DB8::1/32', '2001:db8::/32'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1/128'],
    ['fd80:7::/64', 'fd80:7::/64'],
    ['::', '::/128'],
    ['::ffff:10.1.2.3/128', '::ffff:a01:203/128'],
    ['1:0:0:2:0:0:0:3/128', '1:0:0:2::3/128'], // the longest zero run is compressed
    ['1:0:0:2:0:0:3:4/128', '1::2:0:0:3:4/128'], // ties: the first one
    ['1:2:3:4:5:6:0:8/128', '1:2:3:4:5:6:0:8/128'], // a single zero group stays
  ])('%s → %s', (input, text) => {
    expect(parseCidr(input).text).toBe(text);
  });

  it('reports family, address and prefix', () => {
    expect(parseCidr('192.168.1.77/26')).toEqual({ family: 4, address: '192.168.1.64', prefix: 26, text: '192.168.1.64/26' });
    expect(parseCidr('fe80::1/10')).toEqual({ family: 6, address: 'fe80::', prefix: 10, text: 'fe80::/10' });
  });

  it.each([
    '', '/8', '10.0.0.0/', '10.0.0.0/33', '::/129', '10.0.0.0/08', '10.0.0.0/-1', '010.1.1.1/8', '1.2.3', '1.2.3.4.5',
    '256.1.1.1', ' 10.0.0.0/8', '10.0.0.0/8 ', 'fe80::1%eth0', '1::2::3', ':1::', '1:2:3:4:5:6:7:8:9', '12345::',
    '1.2.3.4::', '::1.2.3', 'g::1', '10.0.0.0/8/8', 'example.com/24', '1:2:3:4:5:6:7:8::',
  ])('rejects %j with ZKS_ERR_CONFIG', (input) => {
    configError(() => parseCidr(input));
  });

  it('bypass prefixes must be /2 or longer', () => {
    configError(() => parseBypass('0.0.0.0/1'));
    configError(() => parseBypass('::/0'));
    expect(parseBypass('64.0.0.0/2').text).toBe('64.0.0.0/2');
  });
});

// Any spelling of an address: full or compressed IPv6, random case, optional leading zeros in groups.
const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const v6 = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  // Mostly-zero addresses exercise "::" placement.
  fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff), { minLength: 8, maxLength: 8 }).map((g) =>
    new Uint8Array(g.flatMap((x) => [x >> 8, x & 0xff]))),
);
const spell6 = (b: Uint8Array, style: number): string => {
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  if (style === 0) return formatIp({ family: 6, bytes: b });
  if (style === 1) return g.map((x) => x.toString(16).padStart(4, '0')).join(':').toUpperCase();
  return g.map((x) => x.toString(16)).join(':');
};

describe('parseCidr properties', () => {
  it('random text yields a Cidr or ZKS_ERR_CONFIG, nothing else', () => {
    const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF:./%- x'.split(''));
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 50 }), fc.string({ unit: 'binary' })), (s) => {
      try {
        const c = parseCidr(s);
        expect(parseCidr(c.text)).toEqual(c);
      } catch (e) {
        if (!(e instanceof ZksError) || e.code !== 'ZKS_ERR_CONFIG') throw e;
      }
    }), { numRuns: 3000 });
  });

  it('valid IPv4 prefixes round-trip, host bits cleared', () => {
    fc.assert(fc.property(v4, fc.integer({ min: 0, max: 32 }), (b, p) => {
      const text = `${b.join('.')}/${p}`;
      const c = parseCidr(text);
      const n = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      const net = p === 0 ? 0 : (n & (~0 << (32 - p))) >>> 0;
      expect(c.address).toBe([24, 16, 8, 0].map((s) => (net >>> s) & 0xff).join('.'));
      expect(c).toMatchObject({ family: 4, prefix: p, text: `${c.address}/${p}` });
      expect(parseCidr(c.text)).toEqual(c);
      expect(isIP(c.address)).toBe(4);
    }), { numRuns: 2000 });
  });

  it('valid IPv6 prefixes in any spelling round-trip to the RFC 5952 text', () => {
    fc.assert(fc.property(v6, fc.integer({ min: 0, max: 128 }), fc.integer({ min: 0, max: 2 }), (b, p, style) => {
      const c = parseCidr(`${spell6(b, style)}/${p}`);
      expect(c.family).toBe(6);
      expect(parseCidr(c.text)).toEqual(c);
      expect(isIP(c.address)).toBe(6);
      expect(new URL(`http://[${c.address}]/`).hostname).toBe(`[${c.address}]`); // WHATWG = RFC 5952 text
      const masked = parseIp(c.address)!.bytes;
      for (let bit = 0; bit < 128; bit++) {
        const m = 0x80 >> (bit & 7);
        expect(masked[bit >> 3]! & m).toBe(bit < p ? b[bit >> 3]! & m : 0);
      }
    }), { numRuns: 2000 });
  });

  it('parseIp agrees with node:net on what is an address (except leading zeros and zones, refused here)', () => {
    const alphabet = fc.constantFrom(...'0123456789abcdef:.'.split(''));
    fc.assert(fc.property(fc.string({ unit: alphabet, maxLength: 40 }), (s) => {
      const ip = parseIp(s);
      if (ip) expect(isIP(s)).toBe(ip.family);
      else if (isIP(s) !== 0) expect(/(^|[.:])0\d/.test(s)).toBe(true);
    }), { numRuns: 5000 });
  });

  it('outermost() keeps exactly the prefixes not nested in another, covering every input', () => {
    const cidr = fc.oneof(
      fc.tuple(v4, fc.integer({ min: 2, max: 32 })).map(([b, p]) => parseCidr(`${b.join('.')}/${p}`)),
      fc.tuple(fc.constantFrom(10, 10, 192), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 8, max: 26 }))
        .map(([a, b, p]) => parseCidr(`${a}.${b}.0.0/${p}`)),
      fc.tuple(v6, fc.integer({ min: 2, max: 128 })).map(([b, p]) => parseCidr(`${spell6(b, 0)}/${p}`)),
    );
    fc.assert(fc.property(fc.array(cidr, { maxLength: 12 }), (list) => {
      const top = outermost(list);
      for (const c of list) expect(top.some((t) => cidrContains(t, c))).toBe(true);
      for (const a of top) for (const b of top) if (a !== b) expect(cidrContains(a, b)).toBe(false);
      expect(new Set(top.map((t) => t.text)).size).toBe(top.length);
    }), { numRuns: 1000 });
  });
});
