// SOCKS5 UDP ASSOCIATE in relay mode, end to end: Debian's PySocks → `zks p2p-client` → a room in the Worker
// (workerd) → `zks exit-peer` (--allow-lan) → a UDP echo server and dnsmasq on loopback. Real UDP leaves at the
// exit; the answers come back with their source in the SOCKS header, and the association ends with its TCP
// connection, closing its datagram flow. An exit started with --no-udp still gets DNS through (over TCP) and the
// rest is refused with a line that says why.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startStack, until } from '../integration/harness';
import { UdpEcho } from '../exit/udp-peers';
import { ExitPeer } from '../../src/exit';
import { startSocksClient } from '../../src/proxy/socks-client';
import { generateKey, parseKey } from '../../src/cli/args';
import { deriveRoomKeys } from '../../src/crypto/room';
import { nodeCrypto } from '../../src/crypto/node';
import { dnsQuery, pysocksDnsQuery, pysocksExchange, rawAssociate, startDnsmasq, udpHeader, type Dnsmasq } from './udp-fixtures';

let stack: Awaited<ReturnType<typeof startStack>>;
let echo: UdpEcho;
let dnsmasq: Dnsmasq;

beforeAll(async () => {
  // Each assigned as it comes up, so afterAll stops whatever started even when another part failed.
  await Promise.all([
    startStack({ mode: 'relay' }).then((s) => (stack = s)),
    UdpEcho.start('127.0.0.1').then((e) => (echo = e)),
    startDnsmasq().then((d) => (dnsmasq = d)),
  ]);
}, 60_000);
afterAll(async () => {
  echo?.close();
  await Promise.all([stack?.close(), dnsmasq?.close()]);
});

/** An exit peer on a fresh room of the stack's Worker and a p2p-client for it; both closed by the returned close(). */
async function roomWith(exitOpts: { udp?: boolean; allowLan?: boolean }, logs: string[]) {
  const roomSecret = generateKey();
  const exit = await ExitPeer.start({ relay: stack.worker.url, key: parseKey(stack.key), roomSecret, ...exitOpts });
  try {
    const client = await startSocksClient({
      relay: stack.worker.url, key: parseKey(stack.key), room: await deriveRoomKeys(nodeCrypto, roomSecret),
      listenPort: 0, log: (l) => logs.push(l),
    });
    return { client, close: async () => { await client.close(); await exit.close(); } };
  } catch (err) {
    await exit.close();
    throw err;
  }
}

describe('SOCKS5 UDP ASSOCIATE through a room and an exit peer', () => {
  it('PySocks datagrams reach a UDP echo server and come back with their source', async () => {
    const payloads = [randomBytes(1), randomBytes(1200), randomBytes(8000)];
    const r = await pysocksExchange(stack.socks.port, '127.0.0.1', echo.port, payloads);
    expect(r.error).toBeUndefined();
    expect(r.answers.map((a) => a.payload)).toEqual(payloads.map((p) => p.toString('hex')));
    for (const a of r.answers) expect(a.source).toEqual(['127.0.0.1', echo.port]);
    expect(echo.received.map((x) => x.payload.toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
    // the datagrams left at the exit, not from this proxy: the echo server saw the exit's NAT socket
    expect(stack.socks.udp.datagramsUp).toBeGreaterThanOrEqual(3);
    expect(stack.socks.udp.refusedNoUdp).toBe(0);
    await until(() => stack.socks.udp.active === 0, 'the association to end with PySocks\' TCP connection');
    // ... and its datagram flow with it: the exit freed the NAT socket it held for the flow
    await until(() => stack.exit!.datagrams.stats().flows === 0, 'the exit to close the flow\'s NAT socket');
    expect(stack.exit!.datagrams.stats().flowsOpened).toBeGreaterThanOrEqual(1);
  });

  it('DNS goes as a real UDP query from the exit to dnsmasq', async () => {
    const before = stack.socks.udp.dnsOverTcp;
    const r = await pysocksDnsQuery(stack.socks.port, dnsmasq.host, 53, 'example.test');
    expect(r).toMatchObject({ id: 0x4242, rcode: 0, last4: '10.9.8.7', source: [dnsmasq.host, 53] });
    expect(stack.socks.udp.dnsOverTcp).toBe(before); // a datagram flow, not the TCP fallback
  });
});

describe('through an exit peer that relays no UDP (--no-udp)', () => {
  it('answers DNS over TCP through the exit and refuses other UDP, naming the exit', async () => {
    const logs: string[] = [];
    const { client, close } = await roomWith({ allowLan: true, udp: false }, logs);
    try {
      const r = await pysocksDnsQuery(client.port, dnsmasq.host, 53, 'example.test');
      expect(r).toMatchObject({ id: 0x4242, rcode: 0, last4: '10.9.8.7', source: [dnsmasq.host, 53] });
      expect(client.udp.dnsOverTcp).toBe(1);
      const a = await rawAssociate(client.port);
      try {
        a.udp.send(udpHeader('127.0.0.1', echo.port, Buffer.from('hello?')), a.relay.port, '127.0.0.1');
        await until(() => client.udp.refusedNoUdp === 1, 'the refusal to be counted');
        expect(logs.join('\n')).toContain(`UDP to 127.0.0.1:${echo.port} cannot go through this room: its exit peer does not relay UDP`);
        a.udp.send(udpHeader(dnsmasq.host, 53, dnsQuery(5, 'example.test')), a.relay.port, '127.0.0.1');
        expect((await a.next()).readUInt16BE(10)).toBe(5); // the first (and only) thing that came back
      } finally {
        a.close();
      }
    } finally {
      await close();
    }
  });
});

describe('when the exit ends the flow', () => {
  it('a LAN target at an exit without --allow-lan: the reason is logged, the association stays and the next datagram opens a new flow', async () => {
    const logs: string[] = [];
    // Each log line wakes the waiter: it waits for the line itself, with a deadline only for failure.
    let wake: (() => void) | null = null;
    const push = logs.push.bind(logs);
    logs.push = (...lines: string[]) => {
      const n = push(...lines);
      wake?.();
      return n;
    };
    const { client, close } = await roomWith({}, logs);
    const logged = async (re: RegExp, times: number) => {
      const count = () => logs.filter((l) => re.test(l)).length;
      const deadline = Date.now() + 10_000;
      while (count() < times && Date.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, deadline - Date.now()).unref();
        });
      }
      expect(count(), logs.join('\n')).toBeGreaterThanOrEqual(times);
    };
    try {
      const a = await rawAssociate(client.port);
      let controlClosed = false;
      a.control.once('close', () => (controlClosed = true));
      const refused = /UDP association 127\.0\.0\.1:\d+: tunnel flow ended \(.*(forbidden|allow-lan).*\); the next datagram opens a new one/i;
      a.udp.send(udpHeader('127.0.0.1', echo.port, Buffer.from('to the LAN')), a.relay.port, '127.0.0.1');
      await logged(refused, 1);
      expect(controlClosed).toBe(false);
      expect(client.udp.active).toBe(1);
      a.udp.send(udpHeader('127.0.0.1', echo.port, Buffer.from('again')), a.relay.port, '127.0.0.1');
      await logged(refused, 2); // a second flow was opened, and refused in turn
      expect(controlClosed).toBe(false);
      a.close();
    } finally {
      await close();
    }
  });
});
