// RelaySet (several --relay): turns over the relays that are up, leaves a dead one, health-checks it with the
// probe until it answers, prefers another relay for a resume. The probe is injected; timers are vitest's fake ones.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RelaySet, httpProbe, probeOver } from '../../src/client/relay-set';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('RelaySet', () => {
  it('takes the relays that are up in turn, leaves one that is down, and takes it back once its probe answers', async () => {
    const logs: string[] = [];
    let answers = false;
    const probed: string[] = [];
    const set = new RelaySet(['ws://a', 'ws://b', 'ws://a'], {
      log: (l) => logs.push(l),
      probe: async (url) => (probed.push(url), answers),
    });
    expect(set.urls).toEqual(['ws://a', 'ws://b']); // duplicates dropped
    expect([set.pick(), set.pick(), set.pick(), set.pick()]).toEqual(['ws://a', 'ws://b', 'ws://a', 'ws://b']);
    set.down('ws://a', 'connect ECONNREFUSED');
    expect(logs).toEqual(['relay ws://a left: connect ECONNREFUSED (health-checked until it answers)']);
    expect([set.pick(), set.pick()]).toEqual(['ws://b', 'ws://b']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(probed).toEqual(['ws://a']); // first check after 1 s, then 2 s, 4 s…
    await vi.advanceTimersByTimeAsync(2_000);
    expect(probed).toHaveLength(2);
    answers = true;
    await vi.advanceTimersByTimeAsync(4_000);
    expect(set.isUp('ws://a')).toBe(true);
    expect(logs.at(-1)).toBe('relay ws://a is back');
    expect(set.snapshot()).toEqual([{ url: 'ws://a', up: true, lastError: 'connect ECONNREFUSED' }, { url: 'ws://b', up: true, lastError: null }]);
    set.stop();
  });

  it('a resume avoids the relay it lost when another is up; with none up, it still names one', () => {
    const set = new RelaySet(['ws://a', 'ws://b'], { probe: async () => false });
    for (let i = 0; i < 4; i++) expect(set.pick('ws://a')).toBe('ws://b');
    set.down('ws://b', 'lost');
    expect(set.pick('ws://a')).toBe('ws://a'); // the only one up
    set.down('ws://a', 'lost');
    expect(set.anyUp).toBe(false);
    expect(['ws://a', 'ws://b']).toContain(set.pick());
    set.stop();
  });

  it('one relay: no health checks (its next dial is the check), no log lines', async () => {
    const logs: string[] = [];
    const probe = vi.fn(async () => true);
    const set = new RelaySet(['ws://only'], { probe, log: (l) => logs.push(l) });
    set.down('ws://only', 'lost');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(probe).not.toHaveBeenCalled();
    expect(set.pick()).toBe('ws://only');
    set.up('ws://only');
    expect(logs).toEqual([]);
    set.stop();
  });

  it('stop() ends the health checks', async () => {
    const probe = vi.fn(async () => false);
    const set = new RelaySet(['ws://a', 'ws://b'], { probe });
    set.down('ws://a', 'lost');
    set.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(probe).not.toHaveBeenCalled();
  });
});

describe('httpProbe', () => {
  it('any HTTP answer is up (a Worker answers 401 to a plain GET); nothing listening is down', async () => {
    vi.useRealTimers();
    const server: Server = createServer((_req, res) => {
      res.statusCode = 401;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    expect(await httpProbe(`ws://127.0.0.1:${port}`)).toBe(true);
    await new Promise<void>((r) => server.close(() => r()));
    expect(await httpProbe(`ws://127.0.0.1:${port}`)).toBe(false);
  });
});

describe('probeOver: the health check over the pool own TCP connections (zksd: marked, pinned)', () => {
  it('true for any HTTP answer through openTcp, false for a refused connection; the URL host goes to openTcp as is', async () => {
    const { createServer } = await import('node:http');
    const { connect, createServer: tcpServer } = await import('node:net');
    const http = createServer((_req, res) => res.writeHead(401).end('Unauthorized'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const port = (http.address() as { port: number }).port;
    const closed = tcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const asked: string[] = [];
    const openTcp = (host: string, p: number) => new Promise<import('node:net').Socket>((resolve, reject) => {
      asked.push(`${host}:${p}`);
      const s = connect({ host: '127.0.0.1', port: p });
      s.once('connect', () => resolve(s)).once('error', reject);
    });
    try {
      expect(await probeOver(openTcp)(`ws://relay.example:${port}`)).toBe(true);
      expect(await probeOver(openTcp)(`ws://relay.example:${closedPort}`)).toBe(false);
      expect(asked).toEqual([`relay.example:${port}`, `relay.example:${closedPort}`]);
    } finally {
      await new Promise<void>((r) => http.close(() => r()));
    }
  });
});
