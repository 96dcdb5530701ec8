// Addresses: IPv4/IPv6 text <-> bytes (RFC 4291 §2.2 input forms, RFC 5952 canonical output), CONNECT host
// encoding, and the local/private policy table the Worker uses to refuse targets.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AddressType, encodeHost, formatIPv4, formatIPv6, formatTarget, hostKind, isLocalOrPrivate, isValidDomain,
  parseIPv4, parseIPv6,
} from '../../src/protocol/index';
import { expectZksError, h, hex } from './helpers';

describe('parseIPv4', () => {
  it.each([
    ['0.0.0.0', '00000000'],
    ['127.0.0.1', '7f000001'],
    ['255.255.255.255', 'ffffffff'],
    ['93.184.215.14', '5db8d70e'],
  ])('%s', (text, bytes) => {
    expect(hex(parseIPv4(text)!)).toBe(bytes);
    expect(formatIPv4(h(bytes))).toBe(text);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.04', '1.2.3.-4', '1.2.3.a', '1..3.4', ' 1.2.3.4', '1.2.3.4 ', '0x7f.0.0.1', '1234.0.0.1', '2130706433'])(
    'rejects %j',
    (text) => expect(parseIPv4(text)).toBeNull(),
  );
});

describe('parseIPv6', () => {
  it.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['2001:DB8:0:0:0:0:0:1', '20010db8000000000000000000000001'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
    ['::10.0.0.1', '0000000000000000000000000a000001'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
    ['fe80::1:2', 'fe800000000000000000000000010002'],
  ])('%s', (text, bytes) => expect(hex(parseIPv6(text)!)).toBe(bytes));

  it.each([
    '', ':', ':::', '1:::2', '1::2::3', ':1::', '1::2:', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8',
    '12345::', 'g::', '::1.2.3', '::256.0.0.1', '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0', '[::1]', '::ffff:01.2.3.4',
    // Regression: the dotted quad was accepted in any half, so these parsed as 0102:0304:: and 0102:0304::5.
    '1.2.3.4::', '1.2.3.4::5', '1.2.3.4:1::',
  ])('rejects %j', (text) => expect(parseIPv6(text)).toBeNull());
});

describe('formatIPv6 (RFC 5952 §4)', () => {
  it.each([
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    // §4.2.2: a single zero group is not compressed.
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3: the longest run is compressed; on a tie, the first.
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['20010000000000010000000000000001', '2001:0:0:1::1'],
    ['20010db80000000000000000000a000b', '2001:db8::a:b'],
    // §4.3: lower case; §4.1: no leading zeros.
    ['20010DB800AB00CD00EF000000000000'.toLowerCase(), '2001:db8:ab:cd:ef::'],
    ['fe800000000000000000000000000001', 'fe80::1'],
    ['00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    // Not §5's mixed notation: IPv4-mapped addresses come out in plain hex (still parseable, still canonical).
    ['00000000000000000000ffff0a000001', '::ffff:a00:1'],
  ])('%s → %s', (bytes, text) => {
    expect(formatIPv6(h(bytes))).toBe(text);
    expect(hex(parseIPv6(text)!)).toBe(bytes);
  });

  it('parseIPv6(formatIPv6(bytes)) round-trips, and the text is stable', () => {
    // Bias towards zero groups so that "::" placement is exercised hard.
    const word = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
        const bytes = new Uint8Array(16);
        words.forEach((w, i) => ((bytes[2 * i] = w >> 8), (bytes[2 * i + 1] = w & 0xff)));
        const text = formatIPv6(bytes);
        expect(parseIPv6(text)).toEqual(bytes);
        expect(formatIPv6(parseIPv6(text.toUpperCase())!)).toBe(text);
        expect(text).not.toMatch(/(^|:)0[0-9a-f]/); // §4.1: no leading zeros
        // §4.2: "::" replaces the first of the longest runs of zero groups, and only if that run is 2+ long.
        let best = 0;
        let bestAt = -1;
        for (let i = 0; i < 8; i++) {
          let j = i;
          while (j < 8 && words[j] === 0) j++;
          if (j - i > best) [best, bestAt] = [j - i, i];
        }
        if (best < 2) {
          expect(text).not.toContain('::');
        } else {
          const [head] = text.split('::');
          expect(text.split('::')).toHaveLength(2);
          expect(head === '' ? 0 : head.split(':').length).toBe(bestAt);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('encodeHost', () => {
  it.each([
    ['93.184.215.14', AddressType.IPV4, '5db8d70e'],
    ['::1', AddressType.IPV6, '00000000000000000000000000000001'],
    ['[2001:db8::1]', AddressType.IPV6, '20010db8000000000000000000000001'],
    ['Example.COM', AddressType.DOMAIN, hex(new TextEncoder().encode('example.com'))],
    ['_srv.example.', AddressType.DOMAIN, hex(new TextEncoder().encode('_srv.example.'))],
    ['localhost', AddressType.DOMAIN, hex(new TextEncoder().encode('localhost'))],
  ])('%s', (host, type, bytes) => {
    const e = encodeHost(host);
    expect(e.type).toBe(type);
    expect(hex(e.bytes)).toBe(bytes);
  });

  it.each([
    ['1::2::3', /not a valid IPv6 address/],
    ['[::1', /not a valid IPv6 address/],
    ['exa mple.com', /not a valid host name/],
    ['a..b', /not a valid host name/],
    ['-a.example', /not a valid host name/],
    ['', /not a valid host name/],
    ['bücher.example', /not a valid host name/],
    [`${'a'.repeat(64)}.example`, /not a valid host name/],
    [`${'a.'.repeat(127)}ab`, /not a valid host name/], // 256 characters
  ])('rejects %j with ZKS_ERR_BAD_ADDRESS', (host, message) => {
    let err: unknown;
    try {
      encodeHost(host);
    } catch (e) {
      err = e;
    }
    expectZksError(err, 'ZKS_ERR_BAD_ADDRESS', message);
  });

  it('isValidDomain: 63-byte labels and 253-byte names are the limits', () => {
    expect(isValidDomain(`${'a'.repeat(63)}.example`)).toBe(true);
    const name253 = `${'a'.repeat(61)}.`.repeat(4) + 'a'.repeat(5);
    expect(name253.length).toBe(253);
    expect(isValidDomain(name253)).toBe(true);
    expect(isValidDomain(name253 + '.')).toBe(true);
    expect(isValidDomain(name253 + 'a')).toBe(false);
  });

  it('hostKind and formatTarget', () => {
    expect(hostKind('10.0.0.1')).toBe('ipv4');
    expect(hostKind('fe80::1')).toBe('ipv6');
    expect(hostKind('example.com')).toBe('domain');
    expect(formatTarget({ host: '2001:db8::1', port: 443 })).toBe('[2001:db8::1]:443');
    expect(formatTarget({ host: 'example.com', port: 80 })).toBe('example.com:80');
  });
});

describe('isLocalOrPrivate', () => {
  it.each([
    // IPv4: unspecified, loopback, RFC 1918, CGNAT (RFC 6598), link-local, benchmarking (RFC 2544), multicast, broadcast
    '0.0.0.0', '0.1.2.3', '127.0.0.1', '127.255.255.254', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255',
    '192.168.0.1', '192.168.255.255', '100.64.0.1', '100.127.255.255', '169.254.169.254', '198.18.0.1', '198.19.255.255',
    '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    // IPv6: unspecified, loopback, ULA, link-local, multicast, IPv4-mapped private/loopback (both spellings), bracketed
    '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'febf::1', 'ff02::1', 'ff05::1:3',
    '::ffff:10.0.0.1', '::ffff:a00:1', '::ffff:127.0.0.1', '::ffff:192.168.1.1', '[::1]', '[fe80::1]',
    // names that mean this host
    'localhost', 'LOCALHOST', 'localhost.', 'foo.localhost', 'a.b.localhost.',
  ])('%s is local or private', (host) => expect(isLocalOrPrivate(host)).toBe(true));

  it.each([
    '1.1.1.1', '8.8.8.8', '93.184.215.14', '9.255.255.255', '11.0.0.1', '100.63.255.255', '100.128.0.1', '169.253.0.1',
    '172.15.255.255', '172.32.0.1', '192.167.0.1', '192.169.0.1', '198.17.0.1', '198.20.0.1', '223.255.255.255',
    '2001:db8::1', '2606:4700:4700::1111', 'fbff::1', '::ffff:1.1.1.1', '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8', '64:ff9b::101:101', '2002:808:808::1', '192.0.1.1', '191.255.255.255', 'fe00::1',
    'example.com', 'localhost.example.com', 'mylocalhost', 'not-an-ip::', '1.2.3.4::',
  ])('%s is public (or not an address)', (host) => expect(isLocalOrPrivate(host)).toBe(false));
});

describe('regression: IPv6 forms that embed a local IPv4, and other reserved ranges, passed the target guard', () => {
  it.each([
    '::127.0.0.1', '::7f00:1', '::2', '::10.0.0.1', '::1.1.1.1', // ::/96 IPv4-compatible (deprecated): all of it
    '64:ff9b::7f00:1', '64:ff9b::127.0.0.1', '64:ff9b::10.1.2.3', '64:ff9b::a9fe:a9fe', '64:FF9B:0:0:0:0:C0A8:0101',
    '64:ff9b:1::8.8.8.8', // local-use NAT64 prefix (RFC 8215)
    '2002:7f00:1::', '2002:0a00:0001::1', '2002:c0a8:101::1', '2002:a9fe:a9fe:1:2:3:4:5', // 6to4 of private space
    '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo, client 127.0.0.1 (inverted)
    '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', // IPv4-translated (RFC 2765)
    '0:0:0:0:0:ffff:7f00:1', '::FFFF:7F00:0001', '0000:0000:0000:0000:0000:ffff:127.0.0.1', '[::ffff:7f00:1]',
    'fec0::1', 'feff:ffff::1', // fec0::/10 site-local
    '192.0.0.1', '192.0.0.8', '192.0.0.170', '192.0.0.255', // 192.0.0.0/24
  ])('%s is refused', (host) => expect(isLocalOrPrivate(host)).toBe(true));

  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  const hex16 = (a: number, b: number) => ((a << 8) | b).toString(16);
  it('every IPv6 spelling that embeds an IPv4 (mapped, translated, NAT64, 6to4) is judged like that IPv4', () => {
    fc.assert(
      fc.property(v4, fc.boolean(), ([a, b, c, d], upper) => {
        const dotted = `${a}.${b}.${c}.${d}`;
        const hi = hex16(a, b);
        const lo = hex16(c, d);
        const forms = [
          `::ffff:${dotted}`, `::ffff:${hi}:${lo}`, `0:0:0:0:0:ffff:${hi}:${lo}`,
          `::ffff:0:${dotted}`, `0:0:0:0:ffff:0:${hi}:${lo}`,
          `64:ff9b::${dotted}`, `64:ff9b::${hi}:${lo}`, `64:ff9b:0:0:0:0:${hi}:${lo}`,
          `2002:${hi}:${lo}::1`, `2002:${hi}:${lo}:ffff:1:2:3:4`,
        ].map((f) => (upper ? f.toUpperCase() : f));
        const expected = isLocalOrPrivate(dotted);
        for (const f of forms) expect([f, isLocalOrPrivate(f)]).toEqual([f, expected]);
        for (const f of [`::${dotted}`, `::${hi}:${lo}`]) expect([f, isLocalOrPrivate(f)]).toEqual([f, true]);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('regression: numeric host names that resolvers read as IPv4 shorthand', () => {
  it.each(['2130706433', '127.1', '0x7f.1', '10.1', 'foo.123', '0x7f000001'])('%s is not a valid domain', (name) => {
    expect(isValidDomain(name)).toBe(false);
  });
  it.each(['example.com', '1password.com', '123.example.org', 'x0.io'])('%s still is', (name) => {
    expect(isValidDomain(name)).toBe(true);
  });
});
