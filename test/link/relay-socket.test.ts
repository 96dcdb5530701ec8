// RelaySocket on loopback servers: each way an open fails gets its own code and a message that names the relay;
// after open, the close reason is the relay's code and reason, or ours when we ended the socket.
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { RelaySocket, type RelaySocketOptions } from '../../src/link/relay-socket';
import { WsState } from '../../src/link/websocket/client';
import { ZksError } from '../../src/errors/zks-error';
import { freePort } from '../net-helpers';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Events { messages: string[]; closed: Promise<{ why: string; code: number }> }

function socketTo(url: string, extra: Partial<RelaySocketOptions> = {}): { socket: RelaySocket; events: Events } {
  const messages: string[] = [];
  let report!: (c: { why: string; code: number }) => void;
  const closed = new Promise<{ why: string; code: number }>((r) => (report = r));
  const socket = new RelaySocket({
    url,
    protocols: ['zks1'],
    relayName: 'test-relay',
    openTimeoutMs: 10_000,
    maxPayload: 1 << 20,
    refused: (status) => new ZksError('ZKS_ERR_AUTH', `refused with HTTP ${status}`),
    onMessage: (data) => messages.push(data.toString()),
    onClose: (why, code) => report({ why, code }),
    ...extra,
  });
  cleanups.push(() => socket.terminate('test over'));
  return { socket, events: { messages, closed } };
}

async function wsServer(onConnection: (ws: WebSocket) => void): Promise<string> {
  const http: Server = createServer((_q, s) => s.writeHead(401).end());
  const wss = new WebSocketServer({ server: http, handleProtocols: () => 'zks1' });
  wss.on('connection', onConnection);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const c of wss.clients) c.terminate();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  });
  return `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

async function tcpServer(onSocket: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((s) => {
    sockets.add(s);
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

describe('RelaySocket: opening', () => {
  it('nothing listening: ZKS_ERR_RELAY_UNREACHABLE naming the relay', async () => {
    const { socket } = socketTo(`ws://127.0.0.1:${await freePort()}`);
    await expect(socket.opened).rejects.toMatchObject({ code: 'ZKS_ERR_RELAY_UNREACHABLE', message: expect.stringMatching(/^cannot reach relay test-relay: .*ECONNREFUSED/) });
  });

  it('a server that never answers the upgrade: ZKS_ERR_TIMEOUT after openTimeoutMs', async () => {
    const port = await tcpServer(() => {});
    const { socket } = socketTo(`ws://127.0.0.1:${port}`, { openTimeoutMs: 200 });
    await expect(socket.opened).rejects.toMatchObject({ code: 'ZKS_ERR_TIMEOUT', message: 'relay test-relay did not accept the WebSocket within 200 ms' });
  });

  it('an HTTP answer instead of an upgrade: the caller’s error for that status', async () => {
    const port = await tcpServer((s) => s.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    const { socket } = socketTo(`ws://127.0.0.1:${port}`);
    await expect(socket.opened).rejects.toMatchObject({ code: 'ZKS_ERR_AUTH', message: 'refused with HTTP 401' });
  });

  it('a connection dropped before the upgrade: ZKS_ERR_RELAY_UNREACHABLE, and no onClose', async () => {
    const port = await tcpServer((s) => s.destroy());
    const { socket, events } = socketTo(`ws://127.0.0.1:${port}`);
    await expect(socket.opened).rejects.toMatchObject({ code: 'ZKS_ERR_RELAY_UNREACHABLE' });
    if (socket.ws.readyState !== WsState.CLOSED) await new Promise<void>((r) => socket.ws.once('close', () => r()));
    expect(await Promise.race([events.closed, Promise.resolve('no close reported')])).toBe('no close reported');
  });

  it('a message sent together with the upgrade is delivered (listeners exist before open)', async () => {
    const url = await wsServer((ws) => ws.send('hello'));
    const { socket, events } = socketTo(url);
    await socket.opened;
    // Often already delivered by now: the message may be parsed before the caller's await resumes.
    if (events.messages.length === 0) await new Promise<void>((r) => socket.ws.once('message', () => r()));
    expect(events.messages).toEqual(['hello']);
  });
});

/** What zksd's openTcp gives: a socket once connected (its relay-connector connects marked sockets the same way). */
function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s)).once('error', reject);
  });
}

describe('RelaySocket: openTcp (zksd: marked sockets to pinned addresses)', () => {
  it('the WebSocket runs over the socket openTcp returns; it gets the URL\'s host and port, and no lookup happens', async () => {
    const base = await wsServer((ws) => ws.send('over your socket'));
    const port = Number(new URL(base).port);
    const asked: string[] = [];
    const { socket, events } = socketTo(`ws://relay.invalid:${port}/path`, {
      openTcp: (host, p) => {
        asked.push(`${host}:${p}`);
        return connected(p);
      },
    });
    await socket.opened;
    while (events.messages.length === 0) await new Promise((r) => setImmediate(r));
    expect(events.messages).toEqual(['over your socket']);
    expect(asked).toEqual([`relay.invalid:${port}`]);
  });

  it('a socket that fails to connect: ZKS_ERR_RELAY_UNREACHABLE as without openTcp', async () => {
    const port = await freePort();
    const { socket } = socketTo(`ws://relay.invalid:${port}`, { openTcp: (_h, p) => connected(p) });
    await expect(socket.opened).rejects.toMatchObject({ code: 'ZKS_ERR_RELAY_UNREACHABLE', message: expect.stringMatching(/ECONNREFUSED/) });
  });
});

describe('RelaySocket: why it closed', () => {
  it("the relay's code and reason", async () => {
    const url = await wsServer((ws) => ws.close(4001, 'ZKS_ERR_MALFORMED_FRAME'));
    const { socket, events } = socketTo(url);
    await socket.opened;
    expect(await events.closed).toEqual({ why: 'relay closed the WebSocket (4001 ZKS_ERR_MALFORMED_FRAME)', code: 4001 });
  });

  it('ours when we terminated it (code 1006)', async () => {
    const url = await wsServer(() => {});
    const { socket, events } = socketTo(url);
    await socket.opened;
    socket.terminate('nothing received from the relay for 55000 ms');
    expect(await events.closed).toEqual({ why: 'nothing received from the relay for 55000 ms', code: 1006 });
  });

  it('ours when we closed it with a reason; an over-long close reason is cut to 123 bytes, not thrown', async () => {
    let serverSaw!: (r: string) => void;
    const reason = new Promise<string>((r) => (serverSaw = r));
    const url = await wsServer((ws) => ws.on('close', (_c, r) => serverSaw(r.toString())));
    const { socket, events } = socketTo(url);
    await socket.opened;
    socket.close(4000, 'é'.repeat(100), 'the relay sent a bad message');
    expect(await events.closed).toEqual({ why: 'the relay sent a bad message', code: 4000 });
    expect(await reason).toBe('é'.repeat(61));
  });
});
