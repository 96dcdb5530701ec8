// The exit's UDP NAT on real kernel sockets (loopback, IPv4 and IPv6): RFC 4787 endpoint-independent mapping and
// filtering, the LAN guard after resolution, the flow cap, idle expiry on a hand-driven clock, send errors, and
// that every socket is freed. The lookup function is injected: it is the DNS policy input, not a stand-in.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LookupFn } from '../../src/exit/connect';
import { MAX_PENDING_DATAGRAMS, UdpNat, type UdpNatOptions } from '../../src/exit/udp-nat';
import { datapathAddon } from '../../src/native/datapath';
import { DatagramClose } from '../../src/protocol/datagram-types';
import { ManualClock } from './manual-clock';
import { bytes, Inbox, openFds, UdpEcho } from './udp-peers';

const notFound = (name: string) => Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });

/** A resolver answering from a table; records the names it was asked. */
function tableLookup(table: Record<string, string[]>) {
  const calls: string[] = [];
  const lookup: LookupFn = async (name) => {
    calls.push(name);
    const answers = table[name];
    if (!answers) throw notFound(name);
    return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { calls, lookup };
}

let echo4: UdpEcho;
let echo4b: UdpEcho;
let echo6: UdpEcho;
const nats: UdpNat[] = [];

// Every case runs with both socket kinds: the data path addon's batched sockets and node:dgram (its fallback).
const SOCKET_KINDS = [...(datapathAddon() !== null ? (['batched'] as const) : []), 'dgram'] as const;
let sockets: 'batched' | 'dgram' = 'dgram';

function natWith(inbox: Inbox, opts: Partial<UdpNatOptions> = {}): UdpNat {
  const nat = new UdpNat({ allowLan: true, deliver: inbox.deliver, closed: inbox.close, sockets, ...opts });
  nats.push(nat);
  return nat;
}

beforeAll(async () => {
  // 127.0.0.2 is loopback too on Linux: replies from another address AND another port.
  echo4 = await UdpEcho.start('127.0.0.1', { alsoFrom: '127.0.0.2' });
  echo4b = await UdpEcho.start('127.0.0.1');
  echo6 = await UdpEcho.start('::1', { alsoFrom: '::1' });
});
afterEach(() => {
  for (const nat of nats.splice(0)) nat.closeAll();
});
afterAll(() => {
  for (const e of [echo4, echo4b, echo6]) e?.close();
});

describe.each(SOCKET_KINDS)('with %s sockets', (kind) => {
  beforeAll(() => {
    sockets = kind;
  });

  describe('UdpNat: relaying', () => {
    it('relays a datagram to an IPv4 target and delivers the reply with its source', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      nat.send(7, echo4.target, bytes('hello v4'));
      await inbox.untilDelivered(2);
      expect(inbox.delivered).toContainEqual({ flow: 7, source: echo4.target, payload: Buffer.from('hello v4') });
      expect(nat.size).toBe(1);
      expect(nat.stats()).toMatchObject({ flows: 1, flowsOpened: 1, datagramsOut: 1, bytesOut: 8, refused: 0, sendErrors: 0 });
    });

    it('relays over IPv6 (::1)', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      nat.send(1, echo6.target, bytes('hello v6'));
      await inbox.untilDelivered(2);
      expect(inbox.delivered).toContainEqual({ flow: 1, source: { host: '::1', port: echo6.port }, payload: Buffer.from('hello v6') });
      expect(echo6.received.at(-1)!.from.host).toBe('::1');
    });

    it('endpoint-independent filtering: replies from another port and another address reach the flow', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      nat.send(3, echo4.target, bytes('ping'));
      await inbox.untilDelivered(2);
      // echo4's second socket sits on 127.0.0.2 with its own port: the NAT never sent anything there.
      const other = echo4.otherSource!;
      expect(other.host).toBe('127.0.0.2');
      expect(inbox.delivered).toEqual(
        expect.arrayContaining([
          { flow: 3, source: echo4.target, payload: Buffer.from('ping') },
          { flow: 3, source: other, payload: Buffer.from('other:ping') },
        ]),
      );
      expect(nat.stats()).toMatchObject({ datagramsIn: 2, bytesIn: 4 + 10 });
    });

    it('endpoint-independent mapping: one flow keeps one local port for every destination; flows get their own', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      const before4 = echo4.received.length;
      const before4b = echo4b.received.length;
      nat.send(1, echo4.target, bytes('a'));
      nat.send(1, echo4b.target, bytes('b'));
      nat.send(2, echo4.target, bytes('c'));
      await Promise.all([echo4.untilReceived(before4 + 2), echo4b.untilReceived(before4b + 1)]);
      const fromA = echo4.received.slice(before4).find((r) => r.payload.toString() === 'a')!.from;
      const fromB = echo4b.received.slice(before4b).find((r) => r.payload.toString() === 'b')!.from;
      const fromC = echo4.received.slice(before4).find((r) => r.payload.toString() === 'c')!.from;
      expect(fromB.port).toBe(fromA.port);
      expect(fromC.port).not.toBe(fromA.port);
      expect(nat.size).toBe(2);
    });

    it('a flow that turns to the other family gets a second socket and keeps working in both', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      nat.send(5, echo4.target, bytes('four'));
      nat.send(5, echo6.target, bytes('six'));
      await inbox.untilDelivered(4);
      expect(inbox.texts(5)).toEqual(expect.arrayContaining(['four', 'six', 'other:four', 'other:six']));
      expect(nat.size).toBe(1);
    });

    it('an IPv4-mapped IPv6 target goes out as IPv4', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      nat.send(1, { host: '::ffff:127.0.0.1', port: echo4b.port }, bytes('mapped'));
      await inbox.untilDelivered(1);
      expect(inbox.delivered[0].source).toEqual(echo4b.target);
    });
  });

  describe('UdpNat: names', () => {
    it('resolves a name once per change of name and relays to the answer', async () => {
      const inbox = new Inbox();
      const { calls, lookup } = tableLookup({ 'echo.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
      const nat = natWith(inbox, { lookup });
      for (const text of ['1', '2', '3']) nat.send(1, { host: 'echo.test', port: echo4b.port }, bytes(text));
      await inbox.untilDelivered(3);
      expect(calls).toEqual(['echo.test']);
      nat.send(1, { host: 'other.test', port: echo4b.port }, bytes('4'));
      nat.send(1, { host: 'echo.test', port: echo4b.port }, bytes('5'));
      await inbox.untilDelivered(5);
      expect(calls).toEqual(['echo.test', 'other.test', 'echo.test']);
      expect(inbox.texts(1)).toEqual(['1', '2', '3', '4', '5']);
    });

    it('datagrams waiting for a lookup are bounded: the rest are dropped and counted', async () => {
      const inbox = new Inbox();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const lookup: LookupFn = async () => {
        await gate;
        return [{ address: '127.0.0.1', family: 4 }];
      };
      const nat = natWith(inbox, { lookup });
      const total = MAX_PENDING_DATAGRAMS + 5;
      for (let i = 0; i < total; i++) nat.send(1, { host: 'slow.test', port: echo4b.port }, bytes(`d${i}`));
      expect(nat.stats().dropped).toBe(5);
      expect(nat.stats().datagramsOut).toBe(0);
      release();
      await inbox.untilDelivered(MAX_PENDING_DATAGRAMS);
      expect(inbox.texts(1)).toEqual(Array.from({ length: MAX_PENDING_DATAGRAMS }, (_, i) => `d${i}`));
    });

    it('a name that does not resolve ends the flow with UNREACHABLE', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox, { lookup: tableLookup({}).lookup });
      nat.send(9, { host: 'nowhere.test', port: 53 }, bytes('q'));
      await inbox.untilClosed(1);
      expect(inbox.closed).toEqual([{ flow: 9, code: DatagramClose.UNREACHABLE, message: 'nowhere.test: no such host (ENOTFOUND)' }]);
      expect(nat.size).toBe(0);
      expect(nat.stats().refused).toBe(1);
    });

    it('a flow closed while its lookup runs ignores the answer', async () => {
      const inbox = new Inbox();
      const fds = openFds();
      const { calls, lookup } = tableLookup({ 'echo.test': ['127.0.0.1'] });
      const nat = natWith(inbox, { lookup });
      nat.send(1, { host: 'echo.test', port: echo4b.port }, bytes('late'));
      nat.close(1);
      await Promise.resolve();
      await Promise.resolve();
      expect(calls).toEqual(['echo.test']);
      expect(nat.size).toBe(0);
      expect(nat.stats().datagramsOut).toBe(0);
      expect(openFds()).toBe(fds);
    });
  });

  describe('UdpNat: LAN guard (without allowLan)', () => {
    it.each([['127.0.0.1'], ['::1'], ['::ffff:127.0.0.1'], ['10.1.2.3'], ['fe80::1'], ['255.255.255.255']])(
      'refuses %s with FORBIDDEN before opening a socket',
      (host) => {
        const inbox = new Inbox();
        const fds = openFds();
        const nat = natWith(inbox, { allowLan: false });
        nat.send(4, { host, port: 9 }, bytes('x'));
        expect(inbox.closed).toEqual([{ flow: 4, code: DatagramClose.FORBIDDEN, message: expect.stringMatching(/--allow-lan/) }]);
        expect(nat.size).toBe(0);
        expect(nat.stats()).toMatchObject({ datagramsOut: 0, refused: 1 });
        expect(openFds()).toBe(fds);
      },
    );

    it("refuses 'localhost' by name without asking the resolver", () => {
      const inbox = new Inbox();
      const { calls, lookup } = tableLookup({ localhost: ['127.0.0.1'] });
      const nat = natWith(inbox, { allowLan: false, lookup });
      nat.send(1, { host: 'localhost', port: echo4b.port }, bytes('x'));
      expect(inbox.closed[0]).toMatchObject({ flow: 1, code: DatagramClose.FORBIDDEN });
      expect(calls).toEqual([]);
    });

    it('refuses a public-looking name that resolves to loopback (checked after resolution)', async () => {
      const inbox = new Inbox();
      const { calls, lookup } = tableLookup({ 'rebind.example': ['127.0.0.1'], 'mixed.example': ['192.0.2.80', '10.0.0.1'] });
      const nat = natWith(inbox, { allowLan: false, lookup });
      const before = echo4b.received.length;
      nat.send(1, { host: 'rebind.example', port: echo4b.port }, bytes('x'));
      nat.send(2, { host: 'mixed.example', port: echo4b.port }, bytes('y'));
      await inbox.untilClosed(2);
      expect(calls).toEqual(['rebind.example', 'mixed.example']);
      expect(inbox.closed.map((c) => [c.flow, c.code])).toEqual([
        [1, DatagramClose.FORBIDDEN],
        [2, DatagramClose.FORBIDDEN],
      ]);
      expect(nat.stats()).toMatchObject({ datagramsOut: 0, refused: 2, flows: 0 });
      expect(echo4b.received.length).toBe(before);
    });

    it("with allowLan, 'localhost' resolves and relays", async () => {
      const inbox = new Inbox();
      const { calls, lookup } = tableLookup({ localhost: ['127.0.0.1'] });
      const nat = natWith(inbox, { allowLan: true, lookup });
      nat.send(1, { host: 'localhost', port: echo4b.port }, bytes('lan'));
      await inbox.untilDelivered(1);
      expect(calls).toEqual(['localhost']);
      expect(inbox.delivered[0]).toEqual({ flow: 1, source: echo4b.target, payload: Buffer.from('lan') });
    });
  });

  describe('UdpNat: limits and errors', () => {
    it('refuses the flow past maxFlows with LIMIT; closing one makes room', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox, { maxFlows: 3 });
      for (const flow of [1, 2, 3]) nat.send(flow, echo4b.target, bytes(`f${flow}`));
      nat.send(4, echo4b.target, bytes('f4'));
      expect(inbox.closed).toEqual([
        { flow: 4, code: DatagramClose.LIMIT, message: expect.stringMatching(/at most 3 UDP flows per session/) },
      ]);
      expect(nat.size).toBe(3);
      nat.send(2, echo4b.target, bytes('again')); // a live flow is not refused
      await inbox.untilDelivered(4);
      nat.close(2);
      nat.send(4, echo4b.target, bytes('f4 now'));
      await inbox.untilDelivered(5);
      expect(inbox.texts().sort()).toEqual(['again', 'f1', 'f2', 'f3', 'f4 now']);
      expect(nat.stats()).toMatchObject({ flows: 3, flowsOpened: 4, refused: 1 });
    });

    it('a flood of refused flows is counted in full but logged only at the 1st, 2nd, 4th, 8th... refusal', () => {
      const inbox = new Inbox();
      const logs: string[] = [];
      const nat = natWith(inbox, { maxFlows: 1, log: (line) => logs.push(line) });
      nat.send(0, echo4b.target, bytes('the one flow'));
      for (let flow = 1; flow <= 20; flow++) nat.send(flow, echo4b.target, bytes('one too many'));
      expect(inbox.closed.map((c) => c.code)).toEqual(new Array(20).fill(DatagramClose.LIMIT));
      expect(nat.stats().refused).toBe(20);
      expect(logs).toEqual([
        'udp flow 1 refused: 1 UDP flows already open in this session',
        'udp flow 2 refused: 1 UDP flows already open in this session (2 flows refused in this session so far)',
        'udp flow 4 refused: 1 UDP flows already open in this session (4 flows refused in this session so far)',
        'udp flow 8 refused: 1 UDP flows already open in this session (8 flows refused in this session so far)',
        'udp flow 16 refused: 1 UDP flows already open in this session (16 flows refused in this session so far)',
      ]);
    });

    it('counts send errors (EMSGSIZE, port 0) and keeps the flow', async () => {
      const inbox = new Inbox();
      const nat = natWith(inbox);
      nat.send(1, echo4b.target, new Uint8Array(65_510)); // above the IPv4 UDP maximum (65 507)
      nat.send(1, { host: '127.0.0.1', port: 0 }, bytes('nowhere'));
      nat.send(1, echo4b.target, bytes('still here'));
      await inbox.untilDelivered(1);
      expect(inbox.texts(1)).toEqual(['still here']);
      expect(nat.stats()).toMatchObject({ sendErrors: 2, flows: 1, refused: 0 });
      expect(inbox.closed).toEqual([]);
    });

    it('close() and closeAll() free every socket, with no closed() callback', async () => {
      const inbox = new Inbox();
      const fds = openFds();
      const nat = natWith(inbox);
      for (let flow = 0; flow < 40; flow++) nat.send(flow, flow % 2 ? echo6.target : echo4b.target, bytes('x'));
      nat.send(0, echo6.target, bytes('x')); // flow 0 now has both families
      expect(openFds()).toBe(fds + 41);
      nat.close(0);
      expect(openFds()).toBe(fds + 39);
      nat.closeAll();
      expect(openFds()).toBe(fds);
      expect(nat.size).toBe(0);
      expect(inbox.closed).toEqual([]);
      nat.send(1, echo4b.target, bytes('after')); // the NAT stays usable
      await inbox.until(() => inbox.texts(1).includes('after'));
      expect(nat.size).toBe(1);
    });
  });

  describe('UdpNat: idle timeout (hand-driven clock)', () => {
    it('ends a flow after idleMs without traffic (NORMAL), not a millisecond before', () => {
      const inbox = new Inbox();
      const clock = new ManualClock();
      const fds = openFds();
      const nat = natWith(inbox, { clock });
      nat.send(1, echo4b.target, bytes('x'));
      clock.advance(119_999);
      expect(inbox.closed).toEqual([]);
      clock.advance(1);
      expect(inbox.closed).toEqual([{ flow: 1, code: DatagramClose.NORMAL, message: 'idle for 120 s' }]);
      expect(nat.size).toBe(0);
      expect(openFds()).toBe(fds);
      expect(clock.pendingTimers).toBe(0);
    });

    it('traffic out resets the timer; flows expire independently', () => {
      const inbox = new Inbox();
      const clock = new ManualClock();
      const nat = natWith(inbox, { clock });
      nat.send(1, echo4b.target, bytes('x'));
      clock.advance(60_000);
      nat.send(2, echo4b.target, bytes('y'));
      clock.advance(50_000);
      nat.send(1, echo4b.target, bytes('x again')); // t = 110 s
      clock.advance(70_000); // t = 180 s: flow 2 (last 60 s) is due, flow 1 (last 110 s) is not
      expect(inbox.closed.map((c) => c.flow)).toEqual([2]);
      clock.advance(49_999);
      expect(nat.size).toBe(1);
      clock.advance(1);
      expect(inbox.closed.map((c) => c.flow)).toEqual([2, 1]);
    });

    it('traffic in resets the timer too', async () => {
      const inbox = new Inbox();
      const clock = new ManualClock();
      const nat = natWith(inbox, { clock });
      nat.send(1, echo4b.target, bytes('x'));
      clock.advance(100_000);
      // The echo comes back now (clock time 100 s): the reply counts as activity.
      await inbox.untilDelivered(1);
      clock.advance(100_000);
      expect(inbox.closed).toEqual([]);
      clock.advance(20_000);
      expect(inbox.closed.map((c) => c.flow)).toEqual([1]);
    });

    it('a flow whose last destination port is 53 idles out after dnsIdleMs; other traffic restores the long timeout', () => {
      const inbox = new Inbox();
      const clock = new ManualClock();
      const nat = natWith(inbox, { clock, idleMs: 120_000, dnsIdleMs: 30_000 });
      nat.send(1, echo4b.target, bytes('long')); // armed for 120 s
      nat.send(2, { host: '127.0.0.1', port: 53 }, bytes('dns'));
      nat.send(3, { host: '127.0.0.1', port: 53 }, bytes('dns'));
      nat.send(3, echo4b.target, bytes('not dns any more'));
      clock.advance(30_000);
      expect(inbox.closed).toEqual([{ flow: 2, code: DatagramClose.NORMAL, message: 'idle for 30 s' }]);
      clock.advance(90_000);
      expect(inbox.closed.map((c) => c.flow).sort()).toEqual([1, 2, 3]);
    });
  });
});
