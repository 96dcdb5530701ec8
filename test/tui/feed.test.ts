// The TUI's data layer against the daemon's real control server on a real unix socket: first snapshot, events,
// commands and their refusals, socket fallback, and the waiting → reconnect cycle when the daemon restarts.
import { afterEach, describe, expect, it } from 'vitest';
import { ControlFeed } from '../../src/tui/feed';
import { flow, scriptedDaemon, zksdStatus, type ScriptedDaemon } from './scripted-daemon';
import { ZksError } from '../../src/errors/zks-error';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function daemon(name?: string): Promise<ScriptedDaemon> {
  const d = await scriptedDaemon(name);
  cleanup.push(() => d.destroy());
  return d;
}

function feedOn(sockets: string[]): ControlFeed {
  const feed = new ControlFeed({ sockets, retryMaxMs: 200 });
  cleanup.push(() => feed.stop());
  feed.start();
  return feed;
}

describe('ControlFeed', () => {
  it('waits (and keeps trying) while nothing listens', async () => {
    const d = await daemon();
    await d.stop();
    const feed = feedOn([d.path]);
    const s = await feed.until((st) => st.failedRounds >= 2, 3_000);
    expect(s).toMatchObject({ phase: 'waiting', socket: null, status: null, problem: null, candidates: [d.path] });
  });

  it('takes a snapshot, subscribes, then follows flows/status/log events', async () => {
    const d = await daemon();
    d.flows = [flow(7)];
    const feed = feedOn([d.path]);
    const s = await feed.whenConnected(3_000);
    expect(s.socket).toBe(d.path);
    expect(s.status).toMatchObject({ mode: 'direct', killSwitch: true, bypass: ['192.168.0.0/16'], rateDown: 2_450_000 });
    const noPath = { path: '', pathRttMs: -1, pathRoute: null, pathError: null }; // the scripted daemon sends none
    expect(s.status!.connections).toEqual([
      { id: 1, streams: 3, rttMs: 21.4, carries: [], udpFlows: 0, datagrams: { sent: 0, received: 0, dropped: 0, late: 0, malformed: 0 }, ...noPath },
      { id: 2, streams: 0, rttMs: -1, carries: [], udpFlows: 0, datagrams: { sent: 0, received: 0, dropped: 0, late: 0, malformed: 0 }, ...noPath },
    ]);
    expect(s.flows.map((f) => f.id)).toEqual([7]);
    expect(d.requests).toEqual([{ cmd: 'status', args: {} }, { cmd: 'flows', args: { closed: true } }]);
    // subscribe is answered by the control server itself (per connection)
    for (const topic of ['flows', 'status', 'log'] as const) expect(d.server!.subscribers(topic)).toBe(1);

    d.flows = [flow(7), flow(8, { destination: '10.79.1.1:80', bytesDown: 5_000 })];
    d.status = zksdStatus({ killSwitch: false });
    d.publish();
    const next = await feed.until((st) => st.flows.length === 2 && st.status?.killSwitch === false, 2_000);
    expect(next.flows[1]).toMatchObject({ id: 8, destination: '10.79.1.1:80', bytesDown: 5_000 });
    d.log('bypass added: 10.0.0.0/8');
    const logged = await feed.until((st) => st.log.some((l) => l.message === 'bypass added: 10.0.0.0/8'), 2_000);
    expect(logged.log[0].message).toBe(`connected to zksd at ${d.path}`);
  });

  it('prefers the first socket (zksd) and falls back to the next (a zks client)', async () => {
    const zksd = await daemon('zksd.sock');
    const client = await daemon('client.sock');
    client.status = { mode: 'socks5', relay: 'wss://r.example', killSwitch: null, connections: [], flows: 0 };
    const both = feedOn([zksd.path, client.path]);
    expect((await both.whenConnected(3_000)).socket).toBe(zksd.path);
    both.stop();

    await zksd.stop();
    const fallback = feedOn([zksd.path, client.path]);
    const s = await fallback.whenConnected(3_000);
    expect(s.socket).toBe(client.path);
    expect(s.status).toMatchObject({ mode: 'socks5', killSwitch: null, bypass: null });
  });

  it('a daemon restart: waiting with a log line, then reconnected by itself', async () => {
    const d = await daemon();
    d.flows = [flow(1)];
    const feed = feedOn([d.path]);
    await feed.whenConnected(3_000);
    await d.stop();
    const lost = await feed.until((st) => st.phase === 'waiting', 2_000);
    expect(lost.status).toBeNull();
    expect(lost.flows).toEqual([]); // no stale rows that look live
    expect(lost.log.at(-1)!.message).toBe(`lost the connection to ${d.path}; reconnecting`);
    // The backoff is bounded (here 200 ms; 1 s by default): ten failed rounds take about 2 s; doubling from 250 ms
    // without the bound they would take over 4 minutes, far past this failure deadline.
    const down = await feed.until((st) => st.failedRounds >= 10, 30_000, 'ten failed rounds');
    expect(down.phase).toBe('waiting');
    await d.start();
    const back = await feed.whenConnected(30_000);
    expect(back.flows.map((f) => f.id)).toEqual([1]);
  });

  it('commands reach the daemon; its answers update the view, its refusals come back as ZksError', async () => {
    const d = await daemon();
    d.flows = [flow(3), flow(4)];
    const feed = feedOn([d.path]);
    await feed.whenConnected(3_000);

    expect(await feed.setKillSwitch(false)).toBe(false);
    expect(feed.getState().status!.killSwitch).toBe(false); // at once, not at the next status event
    expect(await feed.addBypass('10.0.0.0/8')).toEqual(['192.168.0.0/16', '10.0.0.0/8']);
    expect(feed.getState().status!.bypass).toEqual(['192.168.0.0/16', '10.0.0.0/8']);
    await feed.closeFlow(4);
    expect(d.requests.slice(2)).toEqual([
      { cmd: 'killswitch', args: { on: false } },
      { cmd: 'route.add', args: { cidr: '10.0.0.0/8' } },
      { cmd: 'flow.close', args: { id: 4 } },
    ]);

    const refused = await feed.addBypass('nonsense').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ZksError);
    expect(refused).toMatchObject({ code: 'ZKS_ERR_CONFIG', message: 'bad CIDR "nonsense" (expected e.g. 10.0.0.0/8)' });
    await expect(feed.closeFlow(99)).rejects.toMatchObject({ code: 'ZKS_ERR_CONTROL_REQUEST' });
  });

  it('commands while waiting fail with ZKS_ERR_NOT_RUNNING instead of hanging', async () => {
    const d = await daemon();
    await d.stop();
    const feed = feedOn([d.path]);
    await expect(feed.setKillSwitch(true)).rejects.toMatchObject({ code: 'ZKS_ERR_NOT_RUNNING' });
  });

  it('a socket that accepts but never answers is dropped and retried; stop() leaves no connection open', async () => {
    const { createServer } = await import('node:net');
    const d = await daemon();
    await d.stop();
    const open = new Set<import('node:net').Socket>();
    const silent = createServer((s) => {
      open.add(s);
      s.resume(); // read (and ignore) requests, so the client's FIN is seen
      s.on('close', () => open.delete(s));
    });
    await new Promise<void>((r) => silent.listen(d.path, r));
    cleanup.push(() => new Promise((r) => silent.close(r)));
    const feed = new ControlFeed({ sockets: [d.path], retryMaxMs: 100, connectTimeoutMs: 100 });
    cleanup.push(() => feed.stop());
    feed.start();
    const s = await feed.until((st) => st.failedRounds >= 2, 3_000);
    expect(s.phase).toBe('waiting');
    feed.stop();
    const deadline = Date.now() + 30_000; // only a failure deadline
    while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(open.size).toBe(0);
  });
});
