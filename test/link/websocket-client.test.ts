// WsClient against the `ws` package's server (a WebSocket implementation nobody here wrote), on loopback: records of
// every length form both ways (our zero-masked frames must satisfy a strict server), fragmented messages, pings,
// both closing handshakes, an oversized message, a dropped connection, and the upgrade's failure modes; wss: with a
// throwaway certificate made by openssl, whose name and trust are checked.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { WsClient, WsState, type WsClientOptions } from '../../src/link/websocket/client';
import { acceptFor } from '../../src/link/websocket/upgrade';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(http: Server, onConnection: (ws: WebSocket) => void, maxPayload = 1 << 24): Promise<number> {
  const wss = new WebSocketServer({ server: http, maxPayload, handleProtocols: (p) => (p.has('zks1') ? 'zks1' : false) });
  wss.on('connection', onConnection);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const c of wss.clients) c.terminate();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  });
  return (http.address() as AddressInfo).port;
}

function client(url: string, extra: Partial<WsClientOptions> = {}): WsClient {
  const c = new WsClient({ url, protocols: ['other', 'zks1'], maxPayload: 1 << 22, ...extra });
  c.on('error', () => {}); // each test awaits the events it expects
  cleanups.push(() => c.terminate());
  return c;
}

const once = <T extends unknown[]>(c: WsClient, event: string) => new Promise<T>((r) => c.once(event, (...a: unknown[]) => r(a as T)));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('WsClient with a ws server', () => {
  it('binary messages of every length form, both ways, and text; the server sees our zero-masked frames as sent', async () => {
    const port = await serve(createServer(), (ws) => ws.on('message', (data, binary) => ws.send(data as Buffer, { binary })));
    const c = client(`ws://127.0.0.1:${port}/some/path?x=1`);
    await once(c, 'open');
    const sizes = [0, 1, 125, 126, 65535, 65536, 300_000];
    const got: string[] = [];
    c.on('message', (data: Buffer, binary: boolean) => got.push(binary ? sha(data) : `text:${data.toString()}`));
    const sent = sizes.map((n) => Buffer.alloc(n, n & 0xff));
    for (const b of sent) c.send(b);
    c.send('héllo');
    while (got.length < sent.length + 1) await once(c, 'message');
    expect(got).toEqual([...sent.map(sha), 'text:héllo']);
  });

  it('a fragmented message from the server arrives whole; a server ping is answered with its payload', async () => {
    let server!: WebSocket;
    const port = await serve(createServer(), (ws) => (server = ws));
    const c = client(`ws://127.0.0.1:${port}`);
    await once(c, 'open');
    const pong = new Promise<Buffer>((r) => server.once('pong', r));
    server.ping(Buffer.from('are you there'));
    expect((await pong).toString()).toBe('are you there');
    const message = once<[Buffer, boolean]>(c, 'message');
    server.send(Buffer.alloc(70_000, 1), { fin: false });
    server.send(Buffer.alloc(10, 2), { fin: true });
    const [data, binary] = await message;
    expect(binary).toBe(true);
    expect(data.length).toBe(70_010);
    expect(data.subarray(69_999, 70_001)).toEqual(Buffer.from([1, 2]));
  });

  it('closing handshake we begin: the server gets our code and reason, we get its echo', async () => {
    let serverClosed!: Promise<[number, string]>;
    const port = await serve(createServer(), (ws) => (serverClosed = new Promise((r) => ws.once('close', (code, reason) => r([code, reason.toString()])))));
    const c = client(`ws://127.0.0.1:${port}`);
    await once(c, 'open');
    const closed = once<[number, string]>(c, 'close');
    c.close(4000, 'done here');
    expect(c.readyState).toBe(WsState.CLOSING);
    expect(await serverClosed).toEqual([4000, 'done here']);
    expect(await closed).toEqual([4000, 'done here']); // ws echoes both
    expect(c.readyState).toBe(WsState.CLOSED);
    c.send(Buffer.from('late')); // dropped, not thrown
  });

  it('an over-long close reason is cut to 123 bytes on a character boundary (a control frame holds 125)', async () => {
    let serverClosed!: Promise<string>;
    const port = await serve(createServer(), (ws) => (serverClosed = new Promise((r) => ws.once('close', (_code, reason) => r(reason.toString())))));
    const c = client(`ws://127.0.0.1:${port}`);
    await once(c, 'open');
    c.close(4000, 'é'.repeat(100));
    expect(await serverClosed).toBe('é'.repeat(61));
  });

  it('closing handshake the server begins: its code and reason reach us', async () => {
    const port = await serve(createServer(), (ws) => ws.close(4001, 'ZKS_ERR_MALFORMED_FRAME'));
    const c = client(`ws://127.0.0.1:${port}`);
    expect(await once(c, 'close')).toEqual([4001, 'ZKS_ERR_MALFORMED_FRAME']);
  });

  it('a message over maxPayload: close 1009 to the server, an error and a close with 1009 here', async () => {
    let serverClosed!: Promise<number>;
    const port = await serve(createServer(), (ws) => {
      serverClosed = new Promise((r) => ws.once('close', (code) => r(code)));
      ws.send(Buffer.alloc(5000));
    });
    const c = client(`ws://127.0.0.1:${port}`, { maxPayload: 4096 });
    const error = once<[Error]>(c, 'error');
    const [code] = await once<[number, string]>(c, 'close');
    expect(code).toBe(1009);
    expect((await error)[0].message).toBe('the server sent a message of more than 4096 bytes');
    expect(await serverClosed).toBe(1009);
  });

  it('a connection dropped without a close frame: 1006', async () => {
    const port = await serve(createServer(), (ws) => ws.terminate());
    const c = client(`ws://127.0.0.1:${port}`);
    expect(await once(c, 'close')).toEqual([1006, '']);
  });

  it('terminate(): 1006 at once, and the server sees the connection go', async () => {
    let serverClosed!: Promise<number>;
    const port = await serve(createServer(), (ws) => (serverClosed = new Promise((r) => ws.once('close', (code) => r(code)))));
    const c = client(`ws://127.0.0.1:${port}`);
    await once(c, 'open');
    const closed = once(c, 'close');
    c.terminate();
    expect(await closed).toEqual([1006, '']);
    expect(await serverClosed).toBe(1006);
  });
});

/** A TCP server that answers the upgrade with `answer(key)`. */
async function answering(answer: (key: string) => string): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    let head = '';
    s.on('data', (d) => {
      head += d.toString('latin1');
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1];
      if (head.includes('\r\n\r\n') && key) s.write(answer(key), 'latin1');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

const upgraded = (key: string, extra = '') =>
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${extra}\r\n`;

describe('WsClient: the upgrade', () => {
  it('an HTTP answer instead of an upgrade: refused with its status', async () => {
    const port = await answering(() => 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    expect(await once(client(`ws://127.0.0.1:${port}`), 'refused')).toEqual([401]);
  });

  it.each([
    ['a wrong accept hash', () => 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\nSec-WebSocket-Protocol: zks1\r\n\r\n', /wrong Sec-WebSocket-Accept/],
    ['no subprotocol', (k: string) => upgraded(k), /chose no subprotocol/],
    ['a subprotocol we did not offer', (k: string) => upgraded(k, 'Sec-WebSocket-Protocol: evil\r\n'), /"evil", which we did not offer/],
    ['an extension', (k: string) => upgraded(k, 'Sec-WebSocket-Protocol: zks1\r\nSec-WebSocket-Extensions: permessage-deflate\r\n'), /extension/],
    ['no HTTP at all', () => 'SSH-2.0-OpenSSH_9.2\r\n\r\n', /did not answer the upgrade with HTTP/],
    ['an endless head', () => `HTTP/1.1 101 OK\r\n${'X-Pad: y\r\n'.repeat(2000)}`, /longer than 16384 bytes/],
  ])('%s: an error, and never open', async (_name, answer, message) => {
    const c = client(`ws://127.0.0.1:${await answering(answer)}`);
    let opened = false;
    c.on('open', () => (opened = true));
    const [err] = await once<[Error]>(c, 'error');
    expect(err.message).toMatch(message);
    expect(opened).toBe(false);
    expect(c.readyState).toBe(WsState.CLOSED);
  });

  it('frames that arrive in the same read as the 101 are delivered', async () => {
    const port = await answering((k) => `${upgraded(k, 'Sec-WebSocket-Protocol: zks1\r\n')}\x82\x03abc`);
    const c = client(`ws://127.0.0.1:${port}`);
    const [data] = await once<[Buffer]>(c, 'message');
    expect(data.toString()).toBe('abc');
  });

  it('wss: trusts only what it is told to, checks the name, and then carries messages', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zks-wss-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'));
    const port = await serve(createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }), (ws) => ws.on('message', (d) => ws.send(d)));

    const untrusted = client(`wss://localhost:${port}`);
    expect((await once<[Error]>(untrusted, 'error'))[0].message).toMatch(/self[- ]signed/);
    const wrongName = client(`wss://127.0.0.1:${port}`, { ca: cert });
    expect((await once<[Error]>(wrongName, 'error'))[0].message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);

    const c = client(`wss://localhost:${port}`, { ca: cert });
    await once(c, 'open');
    const echoed = once<[Buffer]>(c, 'message');
    c.send(Buffer.alloc(200_000, 9));
    expect(sha((await echoed)[0])).toBe(sha(Buffer.alloc(200_000, 9)));
  });
});
