// SOCKS5 decoder (RFC 1928 / RFC 1929): hex-literal messages, each also fed split at every byte boundary and one
// byte at a time; errors asserted by code, phase and reply byte.

import { describe, expect, it } from 'vitest';
import {
  Socks5Parser, encodeAuthStatus, encodeErrorReply, encodeMethodSelection, encodeReply,
} from '../../src/socks/socks5-parser';
import { Socks5Error } from '../../src/socks/errors';
import { concat, everySplit, hex, runSocks } from './helpers';

const GREET_NOAUTH = hex('05 01 00');
const GREET_BOTH = hex('05 02 00 02');
const AUTH_U_P = hex('01 01 75 01 70'); // user "u", password "p"
const CONNECT_V4 = hex('05 01 00 01 7f000001 0050'); // 127.0.0.1:80

/** Runs `input` whole, then at every split, and checks all runs agree; returns the whole-input run. */
function socks(input: Uint8Array, authRequired = false) {
  const whole = runSocks([input], authRequired);
  for (const chunks of everySplit(input)) expect(runSocks(chunks, authRequired)).toEqual(whole);
  return whole;
}

function lastError(input: Uint8Array, authRequired = false) {
  const { events } = socks(input, authRequired);
  const last = events[events.length - 1];
  expect(last.type).toBe('error');
  expect(last.code).toBe('ZKS_ERR_SOCKS');
  return last;
}

describe('SOCKS5 greeting and CONNECT requests (RFC 1928 §3-5)', () => {
  it('decodes a no-auth greeting and an IPv4 CONNECT', () => {
    expect(socks(concat(GREET_NOAUTH, CONNECT_V4))).toEqual({
      events: [
        { type: 'greeting', methods: [0], method: 0 },
        { type: 'request', command: 1, addressType: 1, target: { host: '127.0.0.1', port: 80 } },
      ],
      rest: [],
    });
  });

  it('lower-cases domain names', () => {
    const req = hex('05 01 00 03 0b 4558414d504c452e434f4d 01bb'); // EXAMPLE.COM:443
    expect(socks(concat(GREET_NOAUTH, req)).events[1]).toEqual(
      { type: 'request', command: 1, addressType: 3, target: { host: 'example.com', port: 443 } });
  });

  it('formats IPv6 targets per RFC 5952', () => {
    const req = hex('05 01 00 04 00000000000000000000000000000001 0016'); // [::1]:22
    expect(socks(concat(GREET_NOAUTH, req)).events[1]).toMatchObject({ addressType: 4, target: { host: '::1', port: 22 } });
    const req2 = hex('05 01 00 04 20010db8000000000000000000000001 ffff');
    expect(socks(concat(GREET_NOAUTH, req2)).events[1]).toMatchObject({ target: { host: '2001:db8::1', port: 65535 } });
  });

  it('canonicalises IP literals sent as domain names', () => {
    const v4 = hex('05 01 00 03 07 312e322e332e34 0050'); // "1.2.3.4"
    expect(socks(concat(GREET_NOAUTH, v4)).events[1]).toMatchObject({ addressType: 3, target: { host: '1.2.3.4' } });
    const v6 = hex('05 01 00 03 0a 5b303a303a303a3a315d 0050'); // "[0:0:0::1]"
    expect(socks(concat(GREET_NOAUTH, v6)).events[1]).toMatchObject({ target: { host: '::1' } });
  });

  it('returns bytes pipelined after the request as the rest (early data)', () => {
    const run = socks(concat(GREET_NOAUTH, CONNECT_V4, hex('474554200d0a')));
    expect(run.rest).toEqual([0x47, 0x45, 0x54, 0x20, 0x0d, 0x0a]);
  });

  it('passes BIND and UDP ASSOCIATE through as requests (the server answers 0x07)', () => {
    expect(socks(concat(GREET_NOAUTH, hex('05 02 00 01 7f000001 0050'))).events[1]).toMatchObject({ command: 2 });
    // UDP ASSOCIATE: 0.0.0.0:0 is legitimate (RFC 1928 §7)
    expect(socks(concat(GREET_NOAUTH, hex('05 03 00 01 00000000 0000'))).events[1])
      .toMatchObject({ command: 3, target: { host: '0.0.0.0', port: 0 } });
  });

  it('reads a UDP ASSOCIATE address hint it cannot use as unspecified (PySocks sends the domain "0")', () => {
    expect(socks(concat(GREET_NOAUTH, hex('05 03 00 03 01 30 d431'))).events[1])
      .toMatchObject({ type: 'request', command: 3, target: { host: '0.0.0.0', port: 0xd431 } });
    // the same host in a CONNECT is still refused
    expect(socks(concat(GREET_NOAUTH, hex('05 01 00 03 01 30 d431'))).events[1])
      .toMatchObject({ type: 'error', replyCode: 0x04 });
  });

  it('keeps returning the final event once done', () => {
    const p = new Socks5Parser({ authRequired: false });
    p.feed(GREET_NOAUTH);
    expect(p.feed(CONNECT_V4).type).toBe('request');
    expect(p.next().type).toBe('request');
    expect(p.feed(hex('aa')).type).toBe('request');
    expect(Array.from(p.takeRest())).toEqual([0xaa]);
  });
});

describe('method selection and RFC 1929 username/password', () => {
  it('requires USER_PASS when credentials are configured', () => {
    expect(socks(concat(GREET_BOTH, AUTH_U_P, CONNECT_V4), true).events).toEqual([
      { type: 'greeting', methods: [0, 2], method: 2 },
      { type: 'auth', username: [0x75], password: [0x70] },
      { type: 'request', command: 1, addressType: 1, target: { host: '127.0.0.1', port: 80 } },
    ]);
  });

  it('answers NO ACCEPTABLE METHODS (0xFF) when auth is required but not offered, and stops', () => {
    const run = socks(concat(GREET_NOAUTH, CONNECT_V4), true);
    expect(run.events).toEqual([{ type: 'greeting', methods: [0], method: 0xff }]);
  });

  it('answers 0xFF for an empty or unknown method list', () => {
    expect(socks(hex('05 00')).events).toEqual([{ type: 'greeting', methods: [], method: 0xff }]);
    expect(socks(hex('05 02 01 80')).events).toEqual([{ type: 'greeting', methods: [1, 0x80], method: 0xff }]);
  });

  it('prefers NO_AUTH without credentials, but accepts USER_PASS-only clients', () => {
    expect(socks(GREET_BOTH).events).toEqual([{ type: 'greeting', methods: [0, 2], method: 0 }]);
    expect(socks(concat(hex('05 01 02'), AUTH_U_P, CONNECT_V4)).events.map((e) => e.type))
      .toEqual(['greeting', 'auth', 'request']);
  });

  it('tolerates empty username and password fields', () => {
    expect(socks(concat(hex('05 01 02 01 00 00'), CONNECT_V4), true).events[1])
      .toEqual({ type: 'auth', username: [], password: [] });
  });

  it('rejects an auth sub-negotiation with the wrong version (status 0x01)', () => {
    const err = lastError(concat(GREET_BOTH, hex('05 01 75 01 70')), true);
    expect(err).toMatchObject({ phase: 'auth', replyCode: 0x01 });
  });
});

describe('malformed input', () => {
  const cases: [string, string, string, number][] = [
    ['SOCKS4 greeting', '04 01 0050 7f000001 00', 'greeting', 0xff],
    ['request with version 4', '05 01 00  04 01 00 01 7f000001 0050', 'request', 0x01],
    ['non-zero reserved byte', '05 01 00  05 01 01 01 7f000001 0050', 'request', 0x01],
    ['unknown address type 2', '05 01 00  05 01 00 02 7f000001 0050', 'request', 0x08],
    ['zero-length domain', '05 01 00  05 01 00 03 00 0050', 'request', 0x01],
    ['domain with a space', '05 01 00  05 01 00 03 03 612062 0050', 'request', 0x04],
    ['domain with a non-ASCII byte', '05 01 00  05 01 00 03 03 61c362 0050', 'request', 0x04],
    ['domain with a bad label', '05 01 00  05 01 00 03 04 2d612e62 0050', 'request', 0x04],
    ['malformed IPv6 literal as domain', '05 01 00  05 01 00 03 04 3a3a3a31 0050', 'request', 0x04],
    ['CONNECT to port 0', '05 01 00  05 01 00 01 7f000001 0000', 'request', 0x01],
    ['unknown command 9', '05 01 00  05 09 00 01 7f000001 0050', 'request', 0x07],
  ];
  it.each(cases)('%s → %s reply 0x%s', (_name, input, phase, replyCode) => {
    expect(lastError(hex(input))).toMatchObject({ phase, replyCode });
  });

  it('fails fast on a bad version before the rest of the message arrives', () => {
    const p = new Socks5Parser({ authRequired: false });
    const ev = p.feed(hex('04'));
    expect(ev.type).toBe('error');
    if (ev.type === 'error') expect(ev.error).toBeInstanceOf(Socks5Error);
  });
});

describe('reply encoders (RFC 1928 §6, RFC 1929 §2)', () => {
  it('encodes method selection, auth status and replies with BND 0.0.0.0:0', () => {
    expect(encodeMethodSelection(0x02)).toEqual(hex('05 02'));
    expect(encodeAuthStatus(true)).toEqual(hex('01 00'));
    expect(encodeAuthStatus(false)).toEqual(hex('01 01'));
    expect(encodeReply(0x05)).toEqual(hex('05 05 00 01 00000000 0000'));
  });

  it('encodes an error reply in the shape of its phase', () => {
    expect(encodeErrorReply(new Socks5Error(0xff, 'x', 'greeting'))).toEqual(hex('05 ff'));
    expect(encodeErrorReply(new Socks5Error(0x01, 'x', 'auth'))).toEqual(hex('01 01'));
    expect(encodeErrorReply(new Socks5Error(0x08, 'x', 'request'))).toEqual(hex('05 08 00 01 00000000 0000'));
  });
});
