// HTTP CONNECT head decoder (RFC 9112 §2-3, RFC 9110 §9.3.6) and Basic proxy credentials (RFC 7617): inputs fed
// whole, split at every byte boundary and byte by byte must agree; errors asserted by code and status.

import { describe, expect, it } from 'vitest';
import { MAX_HEAD_BYTES, parseAuthority, parseBasicCredentials } from '../../src/socks/http-connect-parser';
import { ascii, everySplit, runHttp } from './helpers';

function http(text: string) {
  const input = ascii(text);
  const whole = runHttp([input]);
  for (const chunks of everySplit(input)) expect(runHttp(chunks)).toEqual(whole);
  return whole;
}

function httpError(text: string) {
  const { events } = http(text);
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ type: 'error', code: 'ZKS_ERR_HTTP_PROXY' });
  return events[0];
}

describe('CONNECT request heads', () => {
  it('decodes a CONNECT with Host header', () => {
    expect(http('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/8\r\n\r\n')).toEqual({
      events: [{ type: 'request', target: { host: 'example.com', port: 443 }, version: 'HTTP/1.1', proxyAuthorization: undefined }],
      rest: [],
    });
  });

  it('accepts bracketed IPv6, IPv4 and upper-case names, HTTP/1.0 and bare-LF line ends', () => {
    expect(http('CONNECT [0:0::1]:8080 HTTP/1.1\r\n\r\n').events[0]).toMatchObject({ target: { host: '::1', port: 8080 } });
    expect(http('CONNECT 10.0.0.1:22 HTTP/1.0\n\n').events[0]).toMatchObject({ target: { host: '10.0.0.1', port: 22 }, version: 'HTTP/1.0' });
    expect(http('CONNECT WWW.Example.ORG:443 HTTP/1.1\r\n\r\n').events[0]).toMatchObject({ target: { host: 'www.example.org' } });
  });

  it('captures Proxy-Authorization case-insensitively', () => {
    const ev = http('CONNECT a.b:1 HTTP/1.1\r\nproxy-AUTHORIZATION:   Basic dTpw  \r\n\r\n').events[0];
    expect(ev).toMatchObject({ proxyAuthorization: 'Basic dTpw' });
  });

  it('leaves bytes after the head as the rest (early data)', () => {
    expect(http('CONNECT a.b:1 HTTP/1.1\r\n\r\n\x16\x03\x01hello').rest).toEqual(Array.from(ascii('\x16\x03\x01hello')));
  });

  it('accepts a head of exactly MAX_HEAD_BYTES', () => {
    const start = 'CONNECT a.b:1 HTTP/1.1\r\nX-Pad: ';
    const pad = 'x'.repeat(MAX_HEAD_BYTES - start.length - 4);
    const text = `${start}${pad}\r\n\r\n`;
    expect(text.length).toBe(MAX_HEAD_BYTES);
    expect(runHttp([ascii(text)]).events[0]).toMatchObject({ type: 'request' });
  });
});

describe('refused requests', () => {
  it('answers 405 to other methods: this is not an open forward proxy', () => {
    const err = httpError('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(err).toMatchObject({ status: 405 });
    expect(err.message).toContain('only CONNECT is supported; use the SOCKS5 port or an HTTPS_PROXY');
  });

  it('answers 431 once the head exceeds 8 KiB without an end', () => {
    const text = `CONNECT a.b:1 HTTP/1.1\r\nX-Pad: ${'x'.repeat(MAX_HEAD_BYTES)}`;
    expect(runHttp([ascii(text)]).events[0]).toMatchObject({ type: 'error', status: 431 });
    // also when it trickles in
    const chunks = Array.from({ length: 100 }, () => ascii('y'.repeat(100)));
    expect(runHttp([ascii('CONNECT a.b:1 HTTP/1.1\r\nX: '), ...chunks]).events[0]).toMatchObject({ status: 431 });
  });

  const bad: [string, string, number][] = [
    ['missing port', 'CONNECT example.com HTTP/1.1\r\n\r\n', 400],
    ['port 0', 'CONNECT example.com:0 HTTP/1.1\r\n\r\n', 400],
    ['port 65536', 'CONNECT example.com:65536 HTTP/1.1\r\n\r\n', 400],
    ['non-numeric port', 'CONNECT example.com:https HTTP/1.1\r\n\r\n', 400],
    ['unbracketed IPv6', 'CONNECT ::1:443 HTTP/1.1\r\n\r\n', 400],
    ['bad bracketed IPv6', 'CONNECT [::g]:443 HTTP/1.1\r\n\r\n', 400],
    ['invalid host name', 'CONNECT exa_mple..com:443 HTTP/1.1\r\n\r\n', 400],
    ['extra request-line field', 'CONNECT a.b:1 HTTP/1.1 x\r\n\r\n', 400],
    ['HTTP/2.0', 'CONNECT a.b:1 HTTP/2.0\r\n\r\n', 505],
    ['header without colon', 'CONNECT a.b:1 HTTP/1.1\r\nNoColon\r\n\r\n', 400],
    ['obsolete line folding', 'CONNECT a.b:1 HTTP/1.1\r\nX: a\r\n  b\r\n\r\n', 400],
    ['bare CR', 'CONNECT a.b:1 HTTP/1.1\r\nX: a\rb\r\n\r\n', 400],
    ['empty request line', '\r\n\r\n', 400],
  ];
  it.each(bad)('%s → %i', (_name, text, status) => {
    expect(httpError(text)).toMatchObject({ status });
  });
});

describe('parseAuthority', () => {
  it('splits host and port at the last colon', () => {
    expect(parseAuthority('[2001:DB8::1]:443')).toEqual({ host: '2001:db8::1', port: 443 });
    expect(typeof parseAuthority(':443')).toBe('string');
  });
});

describe('parseBasicCredentials (RFC 7617)', () => {
  const dec = (c: ReturnType<typeof parseBasicCredentials>) =>
    c && { username: new TextDecoder().decode(c.username), password: new TextDecoder().decode(c.password) };

  it('decodes user:pass, keeping colons inside the password', () => {
    expect(dec(parseBasicCredentials(`Basic ${btoa('alice:s3:cret')}`))).toEqual({ username: 'alice', password: 's3:cret' });
    expect(dec(parseBasicCredentials(`basic ${btoa('u:')}`))).toEqual({ username: 'u', password: '' });
  });

  it('returns null for absent, non-Basic, non-base64 or colon-less credentials', () => {
    expect(parseBasicCredentials(undefined)).toBeNull();
    expect(parseBasicCredentials(`Bearer ${btoa('u:p')}`)).toBeNull();
    expect(parseBasicCredentials('Basic !!!')).toBeNull();
    expect(parseBasicCredentials('Basic A')).toBeNull();
    expect(parseBasicCredentials(`Basic ${btoa('nocolon')}`)).toBeNull();
  });
});
