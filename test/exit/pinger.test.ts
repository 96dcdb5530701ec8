// The pinger in this process, on loopback only (the real network cases are in pinger-netns.test.ts): the LAN guard
// before and after name resolution, request checks, TCP timing (accepted and refused), real ICMP to 127.0.0.1 with
// --allow-lan, and timeouts driven by injected timers, including a reply that arrives after its echo timed out.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { EchoFailure, type EchoRequest } from '../../src/protocol/datagram-types';
import { FORBIDDEN_MESSAGE, type LookupFn } from '../../src/exit/connect';
import { Pinger, type PingerOptions, type Timers } from '../../src/exit/pinger';
import { freePort } from '../net-helpers';

/** Timers that fire only when the test says so; nextTimer() resolves once the code under test has armed one. */
function manualTimers() {
  const due = new Map<number, () => void>();
  let id = 0;
  let armed: (() => void) | null = null;
  const timers: Timers = {
    setTimeout: (fn) => {
      due.set(++id, fn);
      armed?.();
      return id;
    },
    clearTimeout: (h) => void due.delete(h as number),
    now: () => performance.now(),
  };
  return {
    timers,
    get armed() {
      return due.size;
    },
    nextTimer: () => new Promise<void>((r) => (due.size > 0 ? r() : (armed = r))),
    fireAll() {
      for (const [k, fn] of [...due]) {
        due.delete(k);
        fn();
      }
    },
  };
}

const pingers: Pinger[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const p of pingers.splice(0)) p.close();
  for (const s of servers.splice(0)) s.close();
});
function pinger(opts: Partial<PingerOptions> = {}): Pinger {
  const p = new Pinger({ allowLan: false, ...opts });
  pingers.push(p);
  return p;
}
const req = (host: string, extra: Partial<EchoRequest> = {}): EchoRequest => ({ host, seq: 1, timeoutMs: 5_000, ...extra });
const errno = (code: string) => Object.assign(new Error(`getaddrinfo ${code}`), { code });

describe('LAN guard (as for TCP CONNECT)', () => {
  it.each(['127.0.0.1', '::1', '[::1]', '10.1.2.3', '192.168.0.1', 'fe80::1', 'localhost', '::ffff:127.0.0.1'])('%s is refused without --allow-lan', async (host) => {
    const p = pinger();
    expect(await p.echo(req(host))).toEqual({ ok: false, code: EchoFailure.FORBIDDEN, message: FORBIDDEN_MESSAGE });
    expect(p.counters).toMatchObject({ forbidden: 1, icmpEchoes: 0, tcpEchoes: 0, icmpSockets: 0 });
  });

  it('a name with ANY private address among its answers is refused (DNS rebinding)', async () => {
    const lookup: LookupFn = async () => [{ address: '203.0.113.9', family: 4 }, { address: '127.0.0.1', family: 4 }];
    expect(await pinger({ lookup }).echo(req('rebind.zks.test'))).toEqual({ ok: false, code: EchoFailure.FORBIDDEN, message: FORBIDDEN_MESSAGE });
  });

  it('names that do not resolve are UNREACHABLE, a resolver that never answers is a TIMEOUT', async () => {
    expect(await pinger({ lookup: async () => Promise.reject(errno('ENOTFOUND')) }).echo(req('nx.zks.test')))
      .toEqual({ ok: false, code: EchoFailure.UNREACHABLE, message: 'nx.zks.test: no such host' });
    expect(await pinger({ lookup: async () => [] }).echo(req('empty.zks.test')))
      .toEqual({ ok: false, code: EchoFailure.UNREACHABLE, message: 'empty.zks.test: no such host' });
    const m = manualTimers();
    const pending = pinger({ lookup: () => new Promise(() => {}), timers: m.timers }).echo(req('slow.zks.test'));
    await m.nextTimer();
    m.fireAll();
    expect(await pending).toMatchObject({ ok: false, code: EchoFailure.TIMEOUT, message: expect.stringMatching(/^slow\.zks\.test: no answer from the resolver/) });
  });

  it('with --allow-lan a name resolving to loopback is pinged at that address', async () => {
    const r = await pinger({ allowLan: true, lookup: async () => [{ address: '127.0.0.1', family: 4 }] }).echo(req('me.zks.test', { tcpOnly: true, tcpPort: await freePort() }));
    expect(r).toMatchObject({ ok: true, method: 'tcp', address: '127.0.0.1' });
  });
});

describe('request checks', () => {
  it('a payload over 1 472 bytes and a bad TCP port are refused before anything is sent', async () => {
    const p = pinger({ allowLan: true });
    expect(await p.echo(req('127.0.0.1', { payload: new Uint8Array(1473) }))).toMatchObject({ ok: false, code: EchoFailure.UNSUPPORTED, message: expect.stringMatching(/1473 bytes; at most 1472/) });
    expect(await p.echo(req('127.0.0.1', { tcpOnly: true, tcpPort: 70_000 }))).toMatchObject({ ok: false, code: EchoFailure.UNSUPPORTED, message: 'bad TCP port 70000' });
    expect(p.counters).toMatchObject({ icmpEchoes: 0, tcpEchoes: 0 });
  });

  it('after close() every echo is refused', async () => {
    const p = pinger({ allowLan: true });
    p.close();
    expect(await p.echo(req('127.0.0.1'))).toMatchObject({ ok: false, code: EchoFailure.UNSUPPORTED });
  });

  it('close() while a name is being resolved: the echo is refused and no socket is opened afterwards', async () => {
    let answer!: (a: Array<{ address: string; family: number }>) => void;
    const p = pinger({ allowLan: true, lookup: () => new Promise((r) => (answer = r)) });
    const pending = p.echo(req('me.zks.test'));
    p.close();
    answer([{ address: '127.0.0.1', family: 4 }]);
    expect(await pending).toMatchObject({ ok: false, code: EchoFailure.UNSUPPORTED, message: 'the exit is shutting down' });
    expect(p.counters.icmpSockets).toBe(0);
  });
});

describe('TCP timing', () => {
  it('an accepted connect and a refused one (RST) both mean the host is up; nothing is echoed', async () => {
    const server = createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const open = (server.address() as { port: number }).port;
    const p = pinger({ allowLan: true });
    const accepted = await p.echo(req('127.0.0.1', { tcpOnly: true, tcpPort: open, payload: new Uint8Array(8) }));
    expect(accepted).toMatchObject({ ok: true, method: 'tcp', tcpPort: open, address: '127.0.0.1', ttl: 0, payload: new Uint8Array(0) });
    const refused = await p.echo(req('127.0.0.1', { tcpOnly: true, tcpPort: await freePort() }));
    expect(refused).toMatchObject({ ok: true, method: 'tcp', ttl: 0 });
    expect(p.counters).toMatchObject({ tcpEchoes: 2, icmpFallbacks: 0, icmpSockets: 0 });
  });

  it('a connect still pending when its timer fires is a TIMEOUT', async () => {
    const m = manualTimers();
    const pending = pinger({ allowLan: true, timers: m.timers }).echo(req('127.0.0.1', { tcpOnly: true, tcpPort: await freePort(), timeoutMs: 250 }));
    await m.nextTimer();
    m.fireAll(); // before the loopback RST can be read: the event loop has not turned since connect()
    expect(await pending).toEqual({ ok: false, code: EchoFailure.TIMEOUT, message: expect.stringMatching(/^no answer from 127\.0\.0\.1 port \d+ within 250 ms$/) });
  });
});

describe('ICMP on loopback (--allow-lan)', () => {
  it('a real echo reply: payload back, TTL 64, one socket for many concurrent echoes', async () => {
    const p = pinger({ allowLan: true });
    const payloads = Array.from({ length: 100 }, (_, i) => Uint8Array.from({ length: 16 }, (_, j) => (i * 7 + j) & 0xff));
    const results = await Promise.all(payloads.map((payload, seq) => p.echo(req('127.0.0.1', { seq, payload }))));
    results.forEach((r, i) => expect(r, `echo ${i}`).toMatchObject({ ok: true, method: 'icmp', address: '127.0.0.1', ttl: 64, payload: payloads[i] }));
    expect(p.counters).toMatchObject({ icmpEchoes: 100, icmpSockets: 1 });
  });

  it('an echo whose timer fires first is a TIMEOUT; its late reply is ignored and the socket keeps working', async () => {
    const m = manualTimers();
    const p = pinger({ allowLan: true, timers: m.timers });
    const first = p.echo(req('127.0.0.1', { payload: Uint8Array.of(1) }));
    await m.nextTimer();
    m.fireAll();
    expect(await first).toMatchObject({ ok: false, code: EchoFailure.TIMEOUT });
    // The first echo's reply is on its way; the second echo must get its own (payload 2), not that one.
    const second = await p.echo(req('127.0.0.1', { payload: Uint8Array.of(2) }));
    expect(second).toMatchObject({ ok: true, method: 'icmp', payload: Uint8Array.of(2) });
    expect(m.armed).toBe(0);
  });
});
