// WebSocket upgrades through an HTTP tunnel (docs/PROTOCOL.md §12.5), with real parts: the Worker in workerd,
// `zks expose http://…` as a process, a `ws` server as the local application and a `ws` client (neither written
// here). Checked: the subprotocol and end-to-end headers reach the local server, text and binary messages (up to
// 4 MB) cross both ways intact and in order, close codes and reasons pass in either direction, a refused upgrade
// comes back as the local server's own answer, other upgrades get 501.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { run, startCli, until, type CliProcess } from '../integration/harness';
import { generateKey } from '../../src/cli/args';

const procs: CliProcess[] = [];
let app: WebSocketServer;
let base = '';
const key = generateKey();
const secret = generateKey();
const closes: Array<{ code: number; reason: string }> = [];

beforeAll(async () => {
  app = new WebSocketServer({
    host: '127.0.0.1', port: 0,
    handleProtocols: (offered) => (offered.has('chat.v2') ? 'chat.v2' : false),
    verifyClient: (info: { req: { url?: string } }) => info.req.url !== '/forbidden',
  });
  await new Promise<void>((r) => app.once('listening', () => r()));
  app.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ url: req.url, origin: req.headers.origin, cookie: req.headers.cookie, extensions: req.headers['sec-websocket-extensions'] ?? null }));
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'close-please') return ws.close(4321, 'the app says bye');
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  const worker = await startCli(['worker', '--listen', '127.0.0.1:0', '--key', key]);
  procs.push(worker);
  const relay = /ws:\/\/\S+/.exec(worker.readyLine)![0];
  base = relay;
  const port = (app.address() as { port: number }).port;
  procs.push(await startCli(['expose', `http://127.0.0.1:${port}`, '--id', 'live', '--secret', secret, '--public', '--relay', relay, '--key', key]));
  procs.push(await startCli(['expose', `http://127.0.0.1:${port}`, '--id', 'tight', '--secret', secret, '--public', '--max-concurrent', '1', '--relay', relay, '--key', key]));
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  app.close();
});

/** Opens a client WebSocket through the tunnel and collects what it receives. */
function client(path: string, protocols: string[] = [], id = 'live') {
  const ws = new WebSocket(`${base}/tunnel/${id}${path}`, protocols, { headers: { origin: 'https://app.example', cookie: 'session=abc' } });
  const messages: Array<{ data: Buffer; binary: boolean }> = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data: Buffer, binary: boolean) => {
    messages.push({ data, binary });
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (n: number) => {
    while (messages.length < n) await new Promise<void>((r) => waiters.push(r));
    return messages[n - 1];
  };
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  return { ws, opened, closed, next };
}

describe('WebSocket through zks expose http://', () => {
  it('opens with the chosen subprotocol; the local server sees the path, query, Origin and cookies, no extensions', async () => {
    const c = client('/socket?room=7', ['chat.v2', 'chat.v1']);
    await c.opened;
    expect(c.ws.protocol).toBe('chat.v2');
    const hello = JSON.parse((await c.next(1)).data.toString()) as Record<string, unknown>;
    expect(hello).toEqual({ url: '/socket?room=7', origin: 'https://app.example', cookie: 'session=abc', extensions: null });
    c.ws.close(1000, 'done');
    expect(await c.closed).toEqual({ code: 1000, reason: 'done' });
  });

  it('carries text and binary messages both ways, in order and intact (up to 4 MB)', async () => {
    const c = client('/echo');
    await c.opened;
    await c.next(1);
    const sent: Array<Buffer | string> = ['one', randomBytes(1), 'ünïcødé ✓', randomBytes(4 * 1024 * 1024), randomBytes(70_000), 'last'];
    for (const m of sent) c.ws.send(m);
    for (let i = 0; i < sent.length; i++) {
      const got = await c.next(i + 2);
      const want = sent[i];
      if (typeof want === 'string') {
        expect(got.binary).toBe(false);
        expect(got.data.toString()).toBe(want);
      } else {
        expect(got.binary).toBe(true);
        expect(got.data.equals(want)).toBe(true);
      }
    }
    c.ws.close(4000, 'client bye');
    await c.closed;
  });

  it('close codes and reasons pass both ways', async () => {
    const a = client('/a');
    await a.opened;
    await a.next(1);
    const before = closes.length;
    a.ws.close(4100, 'from the client');
    await a.closed;
    // The app's own close event is the proof that the code crossed the tunnel.
    await until(() => closes.length > before, 'the app seeing the close');
    expect(closes[before]).toEqual({ code: 4100, reason: 'from the client' });

    const b = client('/b');
    await b.opened;
    await b.next(1);
    b.ws.send('close-please');
    expect(await b.closed).toEqual({ code: 4321, reason: 'the app says bye' });
  });

  it('an open WebSocket holds a slot of --max-concurrent; a refused upgrade gives its slot back', async () => {
    const tight = `${base.replace(/^ws/, 'http')}/tunnel/tight/`;
    const code = async () => (await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', tight])).stdout.toString();
    for (let i = 0; i < 3; i++) await expect(client('/forbidden', [], 'tight').opened).rejects.toThrow(/HTTP 401/);
    expect(await code()).toBe('426'); // the ws server's answer to plain HTTP: the slot was free
    const c = client('/held', [], 'tight');
    await c.opened;
    expect(await code()).toBe('429');
    c.ws.close(1000, 'done');
    await c.closed;
    let after = '';
    for (let i = 0; i < 100 && after !== '426'; i++) after = await code(); // the slot comes back once the tunnel saw the close
    expect(after).toBe('426');
  });

  it('an upgrade the local server refuses comes back as its answer; other upgrades get 501', async () => {
    const c = client('/forbidden');
    await expect(c.opened).rejects.toThrow(/HTTP 401/);
    const h2c = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Connection: Upgrade', '-H', 'Upgrade: h2c',
      `${base.replace(/^ws/, 'http')}/tunnel/live/`]);
    expect(h2c.stdout.toString()).toBe('501');
  });
});
