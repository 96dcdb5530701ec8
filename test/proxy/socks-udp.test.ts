// SOCKS5 UDP ASSOCIATE in `zks socks5` (direct mode: the Worker in workerd carries no UDP), end to end with parts
// nobody here wrote: Debian's PySocks as the client and dnsmasq as the DNS server. DNS (port 53) is answered
// through the tunnel as DNS-over-TCP; other UDP is refused with a line naming relay mode and counted. Bad input —
// malformed headers, FRAG ≠ 0, foreign senders, replies too big for UDP, no credentials — is dropped, counted and
// hurts neither the association nor a CONNECT stream running beside it. The association ends with its TCP
// connection.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { startSocksClient, type SocksClient } from '../../src/proxy/socks-client';
import { parseKey } from '../../src/cli/args';
import { socksConnect, startStack, until } from '../integration/harness';
import { upstreamEcho, listen, close } from '../socks/net-fixtures';
import {
  dnsQuery, loopbackAddress, pysocksDnsQuery, rawAssociate, startBigAnswerDns, startDnsmasq, udpHeader, type Dnsmasq,
} from './udp-fixtures';

let stack: Awaited<ReturnType<typeof startStack>>;
let dnsmasq: Dnsmasq;
let proxy: SocksClient;

beforeAll(async () => {
  // Each assigned as it comes up, so afterAll stops whatever started even when the other failed.
  await Promise.all([startStack().then((s) => (stack = s)), startDnsmasq().then((d) => (dnsmasq = d))]);
  proxy = stack.socks;
}, 60_000);
afterAll(async () => {
  await Promise.all([stack?.close(), dnsmasq?.close()]);
});

describe('SOCKS5 UDP ASSOCIATE, direct mode (the Worker)', () => {
  it('PySocks resolves a name through dnsmasq: the query crosses the tunnel as DNS-over-TCP', async () => {
    const before = { ...proxy.udp };
    const r = await pysocksDnsQuery(proxy.port, dnsmasq.host, 53, 'example.test');
    expect(r).toMatchObject({ id: 0x4242, rcode: 0, ancount: 1, last4: '10.9.8.7', source: [dnsmasq.host, 53] });
    expect(proxy.udp.dnsOverTcp).toBe(before.dnsOverTcp + 1);
    expect(proxy.udp.datagramsUp).toBe(before.datagramsUp + 1);
    expect(proxy.udp.datagramsDown).toBe(before.datagramsDown + 1);
    expect(proxy.udp.associations).toBe(before.associations + 1);
    // PySocks closed its TCP connection: the association (and its flow) ended with it
    await until(() => proxy.udp.active === 0, 'the association to end with its TCP connection');
  });

  it('refuses other UDP with a log line naming relay mode, counted — never silently', async () => {
    const a = await rawAssociate(proxy.port);
    try {
      const before = proxy.udp.refusedNoUdp;
      a.udp.send(udpHeader('127.0.0.1', 9, Buffer.from('not dns')), a.relay.port, '127.0.0.1');
      await until(() => proxy.udp.refusedNoUdp === before + 1, 'the refusal to be counted');
      expect(stack.logs.join('\n')).toContain(
        'UDP to 127.0.0.1:9 needs an exit peer (relay mode: zks p2p-client --room …); the Worker cannot send UDP');
      // the same association still answers DNS, and that answer is the first thing that came back
      a.udp.send(udpHeader(dnsmasq.host, 53, dnsQuery(8, 'example.test')), a.relay.port, '127.0.0.1');
      expect((await a.next()).readUInt16BE(10)).toBe(8);
    } finally {
      a.close();
    }
  });

  it('answers with BND.ADDR = the control connection\'s local address and a live port', async () => {
    const a = await rawAssociate(proxy.port, { namePort: true });
    try {
      expect(a.rep).toBe(0);
      expect(a.relay.host).toBe('127.0.0.1');
      expect(a.relay.port).toBeGreaterThan(0);
      a.udp.send(udpHeader(dnsmasq.host, 53, dnsQuery(7, 'example.test')), a.relay.port, '127.0.0.1');
      const answer = await a.next();
      expect([...answer.subarray(0, 10)]).toEqual([0, 0, 0, 1, ...dnsmasq.host.split('.').map(Number), 0, 53]);
      expect(answer.readUInt16BE(10)).toBe(7);
      expect([...answer.subarray(-4)]).toEqual([10, 9, 8, 7]);
    } finally {
      a.close();
    }
  });

  it('bad input is dropped and counted; the association and a CONNECT beside it keep working', async () => {
    const echo = upstreamEcho();
    const echoPort = await listen(echo);
    const { socket: stream, rep } = await socksConnect(proxy.port, '127.0.0.1', echoPort);
    expect(rep).toBe(0);
    const a = await rawAssociate(proxy.port, { namePort: true });
    const foreignIp = createSocket('udp4');
    const foreignPort = createSocket('udp4');
    await Promise.all([
      new Promise<void>((r) => foreignIp.bind(0, '127.0.0.2', r)),
      new Promise<void>((r) => foreignPort.bind(0, '127.0.0.1', r)),
    ]);
    const foreignGot: Buffer[] = [];
    foreignIp.on('message', (m) => foreignGot.push(m));
    foreignPort.on('message', (m) => foreignGot.push(m));
    try {
      const d = proxy.udp.dropped;
      const before = { ...d };
      const send = (b: Uint8Array, from = a.udp) => from.send(b, a.relay.port, '127.0.0.1');
      const query = dnsQuery(9, 'example.test');
      send(Buffer.from([0, 0, 0]));
      send(Buffer.from([1, 0, 0, 1, 127, 0, 0, 1, 0, 53]));
      send(udpHeader(dnsmasq.host, 53, query, 1));
      send(udpHeader(dnsmasq.host, 53, query, 0x81));
      send(Buffer.from([0, 0, 0, 7, 1, 2, 3, 4, 0, 53]));
      send(Buffer.from([0, 0, 0, 3, 0, 0, 53]));
      send(udpHeader(dnsmasq.host, 0, query));
      send(udpHeader(dnsmasq.host, 53, query), foreignIp); // another IP than the control connection's
      send(udpHeader(dnsmasq.host, 53, query), foreignPort); // the right IP, but not the port the request named
      await until(() => d['foreign-source'] === before['foreign-source'] + 2 && d.fragmented === before.fragmented + 2
        && d.truncated === before.truncated + 1 && d.reserved === before.reserved + 1
        && d['address-type'] === before['address-type'] + 1 && d['bad-target'] === before['bad-target'] + 2,
      'every bad datagram to be counted');
      // still working: a good query is answered, on the client's socket only
      send(udpHeader(dnsmasq.host, 53, dnsQuery(10, 'example.test')));
      const answer = await a.next();
      expect(answer.readUInt16BE(10)).toBe(10);
      expect(foreignGot).toHaveLength(0);
      const log = stack.logs.join('\n');
      expect(log).toMatch(/dropped \(fragmented\): fragment 1 dropped: SOCKS5 UDP fragmentation is not supported/);
      expect(log).toMatch(/dropped \(foreign-source\): datagram from 127\.0\.0\.2:\d+, expected 127\.0\.0\.1:\d+/);
      // and the CONNECT stream beside it carries data both ways
      stream.resume();
      const echoed = new Promise<string>((r) => stream.once('data', (c: Buffer) => r(c.toString())));
      stream.write('still here');
      expect(await echoed).toBe('still here');
    } finally {
      a.close();
      foreignIp.close();
      foreignPort.close();
      stream.destroy();
      await close(echo);
    }
  });

  it('a reply too big for the client\'s UDP is dropped and counted (oversize), not truncated', async () => {
    const host = loopbackAddress();
    const big = await startBigAnswerDns(host, 65_500); // + a 10-byte SOCKS header > 65 507, IPv4's UDP maximum
    const a = await rawAssociate(proxy.port);
    try {
      const before = proxy.udp.dropped.oversize;
      a.udp.send(udpHeader(host, 53, dnsQuery(11, 'big.test')), a.relay.port, '127.0.0.1');
      await until(() => proxy.udp.dropped.oversize === before + 1, 'the oversized reply to be counted');
      expect(big.queries()).toBe(1);
      expect(a.received).toHaveLength(0);
      expect(stack.logs.join('\n')).toMatch(/dropped \(oversize\): reply from [\d.]+:53: 65500-byte reply/);
    } finally {
      a.close();
      await big.close();
    }
  });

  it('ends with its TCP connection: the relay socket is closed, the counters say so', async () => {
    await until(() => proxy.udp.active === 0, 'earlier associations to end');
    const a = await rawAssociate(proxy.port, { namePort: true });
    await until(() => proxy.udp.active === 1, 'the association to start');
    a.control.destroy();
    await until(() => proxy.udp.active === 0, 'the association to end');
    // the relay port is free again: we can bind it ourselves
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(a.relay.port, '127.0.0.1', () => resolve());
    });
    probe.close();
    a.udp.close();
  });
});

describe('SOCKS5 UDP ASSOCIATE over IPv6', () => {
  it('a proxy on [::1] binds its relay on ::1, answers BND.ADDR as IPv6 and relays', async () => {
    const v6 = await startSocksClient({ relay: stack.worker.url, key: parseKey(stack.key), listenHost: '::1', listenPort: 0 });
    const a = await rawAssociate(v6.port, { host: '::1', namePort: true });
    try {
      expect(a.rep).toBe(0);
      expect(a.relay.host).toBe('::1');
      a.udp.send(udpHeader(dnsmasq.host, 53, dnsQuery(6, 'example.test')), a.relay.port, '::1');
      const answer = await a.next();
      expect(answer.readUInt16BE(10)).toBe(6);
      expect([...answer.subarray(-4)]).toEqual([10, 9, 8, 7]);
    } finally {
      a.close();
      await v6.close();
    }
  });
});

describe('SOCKS5 UDP ASSOCIATE with username/password (RFC 1929)', () => {
  const auth = { username: 'udp-user', password: 'udp-secret' };
  let authed: SocksClient;
  beforeAll(async () => {
    authed = await startSocksClient({ relay: stack.worker.url, key: parseKey(stack.key), listenPort: 0, auth, log: (l) => stack.logs.push(l) });
  }, 30_000);
  afterAll(async () => {
    await authed?.close();
  });

  it('refuses an association without credentials; PySocks with them resolves', async () => {
    await expect(rawAssociate(authed.port)).rejects.toThrow(/none of our methods/);
    const denied = await pysocksDnsQuery(authed.port, dnsmasq.host, 53, 'example.test', { auth: { username: 'udp-user', password: 'wrong' } });
    expect(denied.error).toMatch(/SOCKS5AuthError|GeneralProxyError/);
    expect(authed.udp.associations).toBe(0);
    const r = await pysocksDnsQuery(authed.port, dnsmasq.host, 53, 'example.test', { auth });
    expect(r).toMatchObject({ id: 0x4242, rcode: 0, last4: '10.9.8.7' });
    expect(authed.udp.associations).toBe(1);
  });
});
