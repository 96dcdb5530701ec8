// The proxy front on real sockets: curl (SOCKS5, SOCKS5 with auth, HTTP CONNECT via --proxytunnel) and raw clients
// against createProxyServer on 127.0.0.1:0, with a test connect() that splices onto real local upstream servers.
// curl 7.73+ reports SOCKS failures as exit 97 (CURLE_PROXY) and a failed CONNECT tunnel as exit 56.

import { randomBytes } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectResult } from '../../src/protocol/constants';
import { createProxyServer, type ConnectOutcome, type ProxyServerOptions } from '../../src/socks/server';
import { hex as hexBytes } from './helpers';
import {
  close, curl, directConnect, listen, rawClient, upstreamEcho, upstreamHttp, type RawClient, type Recorded,
} from './net-fixtures';

const hex = (text: string): Buffer => Buffer.from(hexBytes(text));
const AUTH = { username: 'u', password: 's3cret' };
const REPLY_OK = hex('05 00 00 01 00000000 0000');

let http4: HttpServer;
let http6: HttpServer;
let echo: Server;
let HTTP4: number;
let HTTP6: number;
let ECHO: number;

beforeAll(async () => {
  http4 = upstreamHttp();
  http6 = upstreamHttp();
  echo = upstreamEcho();
  HTTP4 = await listen(http4);
  HTTP6 = await listen(http6, '::1');
  ECHO = await listen(echo);
});
afterAll(async () => {
  await Promise.all([close(http4), close(http6), close(echo)]);
});

interface Proxy { port: number; calls: Recorded[]; logs: string[] }
const proxies: Server[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => close(p)));
});

async function startProxy(
  opts: Partial<ProxyServerOptions> = {},
  override?: Parameters<typeof directConnect>[1],
): Promise<Proxy> {
  const calls: Recorded[] = [];
  const logs: string[] = [];
  const server = createProxyServer({ connect: directConnect(calls, override), log: (l) => logs.push(l), ...opts });
  proxies.push(server);
  return { port: await listen(server), calls, logs };
}

const refuse = (code: number, message = 'test') => () =>
  Promise.resolve({ ok: false, code, message } as ConnectOutcome);

/** Connects, performs a no-auth greeting + `request` in one write, and returns the client. */
async function socksRequest(port: number, request: Uint8Array): Promise<RawClient> {
  const c = await rawClient(port);
  c.write(Buffer.concat([hex('05 01 00'), request]));
  return c;
}

const connectV4 = (port: number) => Buffer.concat([hex('05 01 00 01 7f000001'), Buffer.from([port >> 8, port & 0xff])]);

describe('SOCKS5 through curl', () => {
  it('tunnels curl --socks5-hostname with a domain target', async () => {
    const p = await startProxy();
    const r = await curl(['--socks5-hostname', `127.0.0.1:${p.port}`, `http://localhost:${HTTP4}/a`]);
    expect(r).toMatchObject({ code: 0, stdout: 'hello via GET /a\n' });
    expect(p.calls).toHaveLength(1);
    expect(p.calls[0].target).toEqual({ host: 'localhost', port: HTTP4 });
    expect(p.calls[0].info).toMatchObject({ protocol: 'socks5', remoteAddress: '127.0.0.1' });
    expect(p.calls[0].info.username).toBeUndefined();
  });

  it('tunnels curl --socks5 with an IPv4 literal', async () => {
    const p = await startProxy();
    const r = await curl(['--socks5', `127.0.0.1:${p.port}`, `http://127.0.0.1:${HTTP4}/`]);
    expect(r).toMatchObject({ code: 0, stdout: 'hello via GET /\n' });
    expect(p.calls[0].target).toEqual({ host: '127.0.0.1', port: HTTP4 });
  });

  it('tunnels to an IPv6 target [::1]', async () => {
    const p = await startProxy();
    const r = await curl(['--socks5', `127.0.0.1:${p.port}`, `http://[::1]:${HTTP6}/v6`]);
    expect(r).toMatchObject({ code: 0, stdout: 'hello via GET /v6\n' });
    expect(p.calls[0].target).toEqual({ host: '::1', port: HTTP6 });
  });

  it('accepts the right username/password (RFC 1929), via --proxy-user and via the URL', async () => {
    const p = await startProxy({ auth: AUTH });
    const a = await curl(['--socks5-hostname', `127.0.0.1:${p.port}`, '--proxy-user', 'u:s3cret', `http://localhost:${HTTP4}/`]);
    expect(a.code).toBe(0);
    const b = await curl(['-x', `socks5h://u:s3cret@127.0.0.1:${p.port}`, `http://localhost:${HTTP4}/`]);
    expect(b).toMatchObject({ code: 0, stdout: 'hello via GET /\n' });
    expect(p.calls.map((c) => c.info.username)).toEqual(['u', 'u']);
  });

  it('rejects a wrong password: curl fails, the log names the user but never the password', async () => {
    const p = await startProxy({ auth: AUTH });
    const r = await curl(['-x', `socks5h://u:wrongpass@127.0.0.1:${p.port}`, `http://localhost:${HTTP4}/`]);
    expect(r.code).toBe(97);
    expect(r.stderr).toMatch(/rejected/i);
    expect(p.calls).toHaveLength(0);
    expect(p.logs.join('\n')).toContain('SOCKS5 authentication failed for user "u"');
    expect(p.logs.join('\n')).not.toMatch(/wrongpass|s3cret/);
  });

  it('answers NO ACCEPTABLE METHODS when credentials are required but not offered', async () => {
    const p = await startProxy({ auth: AUTH });
    const r = await curl(['--socks5-hostname', `127.0.0.1:${p.port}`, `http://localhost:${HTTP4}/`]);
    expect(r.code).toBe(97);
    expect(r.stderr).toMatch(/no authentication method was acceptable/i);
  });

  it('reports a refused target as SOCKS reply 5 (curl exit 97, "(5)")', async () => {
    const closed = upstreamHttp();
    const deadPort = await listen(closed);
    await close(closed);
    const p = await startProxy();
    const r = await curl(['--socks5', `127.0.0.1:${p.port}`, `http://127.0.0.1:${deadPort}/`]);
    expect(r.code).toBe(97);
    expect(r.stderr).toMatch(/Can't complete SOCKS5 connection.*\(5\)/);
  });
});

describe('SOCKS5 on raw sockets', () => {
  it.each([
    ['REFUSED', ConnectResult.REFUSED],
    ['FORBIDDEN', ConnectResult.FORBIDDEN],
    ['TIMEOUT', ConnectResult.TIMEOUT],
    ['HOST_UNREACHABLE', ConnectResult.HOST_UNREACHABLE],
  ])('maps ConnectResult.%s onto the same REP byte, then closes', async (_n, code) => {
    const p = await startProxy({}, refuse(code));
    const c = await socksRequest(p.port, connectV4(ECHO));
    await c.closed;
    expect(c.received).toEqual(Buffer.concat([hex('05 00'), hex(`05 0${code} 00 01 00000000 0000`)]));
  });

  it('answers 0x01 when connect() throws, and logs it', async () => {
    const p = await startProxy({}, () => Promise.reject(new Error('boom')));
    const c = await socksRequest(p.port, connectV4(ECHO));
    await c.closed;
    expect(c.received.subarray(2, 4)).toEqual(hex('05 01'));
    expect(p.logs.join('\n')).toContain('threw: boom');
  });

  it.each([['BIND', '02'], ['UDP ASSOCIATE', '03']])('answers %s with 0x07 command not supported', async (name, cmd) => {
    const p = await startProxy();
    const c = await socksRequest(p.port, hex(`05 ${cmd} 00 01 00000000 0000`));
    await c.closed;
    expect(c.received).toEqual(Buffer.concat([hex('05 00'), hex('05 07 00 01 00000000 0000')]));
    expect(p.calls).toHaveLength(0);
    expect(p.logs.join('\n')).toContain(`SOCKS5 ${name} is not supported`);
  });

  it('answers UDP ASSOCIATE with the tunnel\'s refusal code when no datagram flow can be opened', async () => {
    const p = await startProxy({
      udpAssociate: () => Promise.resolve({ ok: false, code: ConnectResult.NETWORK_UNREACHABLE, message: 'exit peer offline' }),
    });
    const c = await socksRequest(p.port, hex('05 03 00 01 00000000 0000'));
    await c.closed;
    expect(c.received).toEqual(Buffer.concat([hex('05 00'), hex('05 03 00 01 00000000 0000')]));
    expect(p.logs.join('\n')).toContain('UDP ASSOCIATE refused: exit peer offline');
  });

  it('answers 0x01 when udpAssociate() throws', async () => {
    const p = await startProxy({ udpAssociate: () => Promise.reject(new Error('boom')) });
    const c = await socksRequest(p.port, hex('05 03 00 01 00000000 0000'));
    await c.closed;
    expect(c.received.subarray(2, 4)).toEqual(hex('05 01'));
    expect(p.logs.join('\n')).toContain('UDP ASSOCIATE threw: boom');
  });

  it('asks for credentials before UDP ASSOCIATE as before CONNECT: no method, no association', async () => {
    let asked = 0;
    const p = await startProxy({ auth: AUTH, udpAssociate: () => { asked++; return Promise.reject(new Error('unreachable')); } });
    const c = await socksRequest(p.port, hex('05 03 00 01 00000000 0000'));
    await c.closed;
    expect(c.received).toEqual(hex('05 ff'));
    expect(asked).toBe(0);
  });

  it('answers an unknown address type with 0x08 and closes', async () => {
    const p = await startProxy();
    const c = await socksRequest(p.port, hex('05 01 00 09 7f000001 0050'));
    await c.closed;
    expect(c.received).toEqual(Buffer.concat([hex('05 00'), hex('05 08 00 01 00000000 0000')]));
  });

  it('delivers early data sent in the same write as the request (head)', async () => {
    const p = await startProxy();
    const c = await socksRequest(p.port, Buffer.concat([connectV4(ECHO), Buffer.from('early bytes')]));
    const got = await c.readAtLeast(2 + 10 + 11);
    expect(got.subarray(0, 12)).toEqual(Buffer.concat([hex('05 00'), REPLY_OK]));
    expect(got.subarray(12).toString()).toBe('early bytes');
    c.destroy();
  });

  it('keeps bytes that arrive while connect() is pending (socket is paused, nothing lost)', async () => {
    const calls: Recorded[] = [];
    const slow = directConnect(calls);
    let connectCalled!: () => void;
    const called = new Promise<void>((r) => (connectCalled = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const p = await startProxy({}, async (t, i) => {
      connectCalled();
      await released;
      return slow(t, i);
    });
    const c = await socksRequest(p.port, Buffer.concat([connectV4(ECHO), Buffer.from('one,')]));
    await called;
    // On loopback the write callback means the bytes sit in the proxy's socket while its connect() is pending.
    await new Promise<void>((r) => c.socket.write('two', () => r()));
    release();
    const got = await c.readAtLeast(12 + 7);
    expect(got.subarray(12).toString()).toBe('one,two');
    c.destroy();
  });

  it('closes a client that does not finish its request within handshakeTimeoutMs', async () => {
    const p = await startProxy({ handshakeTimeoutMs: 100 });
    const c = await rawClient(p.port);
    c.write(hex('05 01'));
    await c.closed; // by the handshake timer: the log line says so
    expect(p.logs.join('\n')).toContain('handshake not completed in time');
  });

  it('aborts info.signal and still calls attach (with a destroyed socket) when the client leaves early', async () => {
    let aborted = false;
    let attached!: (destroyed: boolean) => void;
    const attachedDestroyed = new Promise<boolean>((r) => (attached = r));
    const p = await startProxy({}, (_t, info) => new Promise((resolve) => {
      info.signal?.addEventListener('abort', () => {
        aborted = true;
        resolve({ ok: true, attach: (s) => attached(s.destroyed) });
      });
    }));
    const c = await socksRequest(p.port, connectV4(ECHO));
    await c.readAtLeast(2);
    // A FIN here would be a legitimate half-close (the proxy is allowHalfOpen), so "leaving" is a reset.
    c.reset();
    expect(await attachedDestroyed).toBe(true);
    expect(aborted).toBe(true);
  });

  it('refuses SOCKS4 with a SOCKS4 reject and a clear log line', async () => {
    const p = await startProxy();
    const c = await rawClient(p.port);
    c.write(hex('04 01 0050 7f000001 00'));
    await c.closed;
    expect(c.received).toEqual(hex('00 5b 0000 00000000'));
    expect(p.logs.join('\n')).toContain('SOCKS4 is not supported, use SOCKS5');
  });

  it('closes on an unrecognised first byte (e.g. a TLS ClientHello)', async () => {
    const p = await startProxy();
    const c = await rawClient(p.port);
    c.write(hex('16 03 01 00 05'));
    await c.closed;
    expect(c.received.length).toBe(0);
    expect(p.logs.join('\n')).toContain('first byte 0x16');
  });
});

describe('HTTP CONNECT', () => {
  it('tunnels curl --proxytunnel (-p -x http://...)', async () => {
    const p = await startProxy();
    const r = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, `http://127.0.0.1:${HTTP4}/t`]);
    expect(r).toMatchObject({ code: 0, stdout: 'hello via GET /t\n' });
    expect(p.calls[0]).toMatchObject({ target: { host: '127.0.0.1', port: HTTP4 }, info: { protocol: 'http-connect' } });
  });

  it('tunnels to [::1] with the IPv6 literal in brackets', async () => {
    const p = await startProxy();
    const r = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, `http://[::1]:${HTTP6}/`]);
    expect(r.code).toBe(0);
    expect(p.calls[0].target).toEqual({ host: '::1', port: HTTP6 });
  });

  it('answers a plain forward-proxy GET with 405 (not an open proxy)', async () => {
    const p = await startProxy();
    const r = await curl(['-x', `http://127.0.0.1:${p.port}`, '-w', '%{http_code}', `http://127.0.0.1:${HTTP4}/`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('only CONNECT is supported; use the SOCKS5 port or an HTTPS_PROXY');
    expect(r.stdout.endsWith('405')).toBe(true);
    expect(p.calls).toHaveLength(0);
  });

  it('requires Proxy-Authorization: Basic when auth is configured', async () => {
    const p = await startProxy({ auth: AUTH });
    const ok = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, '--proxy-user', 'u:s3cret', `http://127.0.0.1:${HTTP4}/`]);
    expect(ok).toMatchObject({ code: 0, stdout: 'hello via GET /\n' });
    expect(p.calls[0].info.username).toBe('u');
    const wrong = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, '--proxy-user', 'u:nope', `http://127.0.0.1:${HTTP4}/`]);
    expect(wrong.code).toBe(56);
    expect(wrong.stderr).toContain('response 407');
    const none = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, `http://127.0.0.1:${HTTP4}/`]);
    expect(none.code).toBe(56);
    expect(p.logs.join('\n')).toContain('HTTP proxy authentication failed for user "u"');
    expect(p.logs.join('\n')).not.toMatch(/nope|s3cret/);

    const c = await rawClient(p.port);
    c.write('CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n');
    await c.closed;
    const text = c.received.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 407 /);
    expect(text).toContain('\r\nProxy-Authenticate: Basic realm="zks"\r\n');
  });

  it('maps failures: refused → 502 (curl exit 56), forbidden → 403, timeout → 504', async () => {
    const closed = upstreamHttp();
    const deadPort = await listen(closed);
    await close(closed);
    const p = await startProxy();
    const r = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, `http://127.0.0.1:${deadPort}/`]);
    expect(r.code).toBe(56);
    expect(r.stderr).toContain('response 502');

    for (const [code, status, reason] of [
      [ConnectResult.REFUSED, 502, 'connection refused'],
      [ConnectResult.FORBIDDEN, 403, 'forbidden'],
      [ConnectResult.TIMEOUT, 504, 'timeout'],
      [ConnectResult.NETWORK_UNREACHABLE, 502, 'network unreachable'],
    ] as const) {
      const q = await startProxy({}, refuse(code, 'why'));
      const c = await rawClient(q.port);
      c.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      await c.closed;
      const text = c.received.toString('latin1');
      expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(text).toContain(`CONNECT example.com:443 failed: ${reason} (why)`);
    }
  });

  it('escapes control characters from client input in log lines', async () => {
    const p = await startProxy();
    const c = await rawClient(p.port);
    c.write('CONNECT evil\x1b[2J.example:1x HTTP/1.1\r\n\r\n');
    await c.closed;
    expect(c.received.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    const log = p.logs.join('\n');
    expect(log).toContain('evil\\x1b[2J');
    expect(log).not.toContain('\x1b');
  });

  it('answers 431 when the head exceeds 8 KiB', async () => {
    const p = await startProxy();
    const c = await rawClient(p.port);
    c.write(`CONNECT a.b:1 HTTP/1.1\r\nX-Pad: ${'x'.repeat(9000)}\r\n\r\n`);
    await c.closed;
    expect(c.received.toString('latin1')).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('delivers early data sent in the same write as the CONNECT head', async () => {
    const p = await startProxy();
    const c = await rawClient(p.port);
    c.write(`CONNECT 127.0.0.1:${ECHO} HTTP/1.1\r\n\r\nping`);
    const established = 'HTTP/1.1 200 Connection Established\r\n\r\n';
    const got = await c.readAtLeast(established.length + 4);
    expect(got.toString('latin1')).toBe(`${established}ping`);
    c.destroy();
  });
});

describe('isolation and concurrency', () => {
  it('serves 50 concurrent clients (SOCKS5 and HTTP CONNECT mixed), each with its own 64 KiB payload', async () => {
    const p = await startProxy();
    const one = async (i: number) => {
      const payload = randomBytes(64 * 1024);
      const c = await rawClient(p.port);
      let skip: number;
      if (i % 2 === 0) {
        c.write(Buffer.concat([hex('05 01 00'), connectV4(ECHO)]));
        skip = 12;
      } else {
        c.write(`CONNECT 127.0.0.1:${ECHO} HTTP/1.1\r\n\r\n`);
        skip = 'HTTP/1.1 200 Connection Established\r\n\r\n'.length;
      }
      await c.readAtLeast(skip);
      c.write(payload);
      const got = await c.readAtLeast(skip + payload.length, 10_000);
      c.destroy();
      return got.subarray(skip).equals(payload);
    };
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => one(i)));
    expect(results.every(Boolean)).toBe(true);
    expect(p.calls).toHaveLength(50);
  });

  it('a misbehaving client (garbage, reset mid-handshake) does not disturb an open tunnel', async () => {
    const p = await startProxy();
    const good = await socksRequest(p.port, connectV4(ECHO));
    await good.readAtLeast(12);

    const bad = await rawClient(p.port);
    await new Promise<void>((r) => bad.socket.write(hex('05 01'), () => r())); // in the proxy's socket: mid-handshake
    bad.socket.resetAndDestroy();
    const garbage = await rawClient(p.port);
    garbage.write(hex('ff ff ff'));
    await garbage.closed;

    good.write('still here');
    const got = await good.readAtLeast(12 + 10);
    expect(got.subarray(12).toString()).toBe('still here');
    good.destroy();
  });
});
