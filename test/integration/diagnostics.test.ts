// Observability (docs/OBSERVABILITY.md): a subscriber to the zks:* diagnostics channels sees the links and
// the streams of a real relay-mode stack (client → Worker room in workerd → in-process exit peer → echo
// server): link up for both ends, stream open at the client and at the exit peer with the target, stream close
// with the bytes moved and no error after a clean half-close both ways, link down when the stack closes.
// And NODE_DEBUG=zks:mux,zks:link prints the same events on stderr of a child process.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINK_DOWN_CHANNEL, LINK_UP_CHANNEL, STREAM_CLOSE_CHANNEL, STREAM_OPEN_CHANNEL } from '../../src/link/diagnostics';
import type { LinkDownInfo, LinkInfo, StreamCloseInfo, StreamInfo } from '../../src/link/observer';
import { socksConnect, startStack } from './harness';

type Event = { channel: string; info: LinkInfo | LinkDownInfo | StreamInfo | StreamCloseInfo };
const CHANNELS = [LINK_UP_CHANNEL, LINK_DOWN_CHANNEL, STREAM_OPEN_CHANNEL, STREAM_CLOSE_CHANNEL];

/** Collects events from the channels; `until(pred)` resolves once an event (already seen or later) matches. */
function recorder() {
  const events: Event[] = [];
  const waiters: Array<{ pred: (e: Event) => boolean; resolve: (e: Event) => void }> = [];
  const handlers = CHANNELS.map((channel) => {
    const h = (info: unknown) => {
      const e = { channel, info: info as Event['info'] };
      events.push(e);
      for (const w of [...waiters]) if (w.pred(e)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(e));
    };
    subscribe(channel, h);
    return [channel, h] as const;
  });
  return {
    events,
    until(pred: (e: Event) => boolean): Promise<Event> {
      const seen = events.find(pred);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    stop: () => handlers.forEach(([c, h]) => unsubscribe(c, h)),
  };
}

describe('diagnostics channels on a real relay-mode stream', () => {
  let echo: Server;
  let echoPort: number;
  beforeAll(async () => {
    echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => echo.close(() => r())));

  it('publishes link up/down and stream open/close with targets, bytes and errors', async () => {
    const rec = recorder();
    const stack = await startStack({ mode: 'relay' });
    try {
      const { socket, rep } = await socksConnect(stack.socks.port, '127.0.0.1', echoPort);
      expect(rep).toBe(0);
      const clientUp = await rec.until((e) => e.channel === LINK_UP_CHANNEL && (e.info as LinkInfo).role === 'client');
      const exitUp = await rec.until((e) => e.channel === LINK_UP_CHANNEL && (e.info as LinkInfo).role === 'server');
      const opened = (link: number) => (e: Event) => e.channel === STREAM_OPEN_CHANNEL && e.info.link === link;
      for (const up of [clientUp, exitUp]) {
        const open = (await rec.until(opened(up.info.link))).info as StreamInfo;
        expect(open).toMatchObject({ host: '127.0.0.1', port: echoPort });
      }

      const payload = Buffer.alloc(100_000, 7);
      let echoed = 0;
      socket.on('data', (c: Buffer) => (echoed += c.length));
      socket.resume();
      socket.end(payload); // half-close: the echo server ends after echoing, so the stream closes cleanly
      await new Promise<void>((r) => socket.once('end', () => r()));
      expect(echoed).toBe(payload.length);

      const closed = (link: number) => (e: Event) => e.channel === STREAM_CLOSE_CHANNEL && e.info.link === link;
      const atClient = (await rec.until(closed(clientUp.info.link))).info as StreamCloseInfo;
      const atExit = (await rec.until(closed(exitUp.info.link))).info as StreamCloseInfo;
      expect(atClient).toMatchObject({ error: null, bytesSent: payload.length, bytesReceived: payload.length, port: echoPort });
      expect(atExit).toMatchObject({ error: null, bytesSent: payload.length, bytesReceived: payload.length, port: echoPort });
      socket.destroy();
    } finally {
      await stack.close();
    }
    const down = (await rec.until((e) => e.channel === LINK_DOWN_CHANNEL && (e.info as LinkInfo).role === 'client')).info as LinkDownInfo;
    expect(down.reason).toEqual(expect.any(String));
    rec.stop();
  });
});

describe('debuglog sections', () => {
  it('NODE_DEBUG=zks:link,zks:mux prints link and stream events; without it nothing is printed', async () => {
    const script = fileURLToPath(new URL('./fixtures/link-pair.ts', import.meta.url));
    const runWith = (nodeDebug: string | undefined) =>
      new Promise<string>((resolve, reject) => {
        const env = { ...process.env };
        if (nodeDebug) env.NODE_DEBUG = nodeDebug;
        else delete env.NODE_DEBUG;
        const child = spawn(process.execPath, ['--import', 'tsx', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(stderr) : reject(new Error(`exit ${code}: ${stderr}`))));
      });
    const on = await runWith('zks:link,zks:mux');
    expect(on).toMatch(/ZKS:LINK \d+: link \d+ up \(client\)/);
    expect(on).toMatch(/ZKS:MUX \d+: link \d+ stream 1 open to example\.com:443/);
    expect(on).toMatch(/ZKS:MUX \d+: link \d+ stream 1 closed: clean, 5 bytes sent, 5 received/);
    expect(on).toMatch(/ZKS:LINK \d+: link \d+ down/);
    expect(await runWith(undefined)).not.toMatch(/ZKS:/);
  });
});
