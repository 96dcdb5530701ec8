// Failure paths through the real stack: refused and unknown targets, missing or wrong keys, a WebSocket that
// sends garbage, a WebSocket killed mid-transfer, and the pool under a 2-streams-per-WebSocket limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { curlViaSocks, idPayload, sha256, socksConnect, startOrigin, startStack, type Origin, freePort, tunnelBytesIn, until } from './harness';
import type { LocalStack } from '../../src/cli/start';
import { TunnelConnection } from '../../src/client/connection';
import { createClientHello, encodeBase64Url } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { encodeFrames } from '../../src/protocol/frames';
import { ConnectResult, FrameType } from '../../src/protocol/constants';
import { parseKey } from '../../src/cli/args';

let stack: LocalStack & { logs: string[] };
let origin: Origin;

beforeAll(async () => {
  [stack, origin] = await Promise.all([startStack(), startOrigin(64 * 1024 * 1024)]);
});
afterAll(async () => {
  await stack?.close();
  await origin?.close();
});


function upgradeStatus(url: string, protocols: string[]): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols);
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('open', () => { resolve(101); ws.terminate(); });
    ws.on('error', () => resolve(-1));
  });
}

describe('connect failures reach the application with the right SOCKS5 reply', () => {
  it('target refuses → reply 0x05 "connection refused"', async () => {
    const port = await freePort();
    const { socket, rep } = await socksConnect(stack.socks.port, '127.0.0.1', port);
    socket.destroy();
    expect(rep).toBe(ConnectResult.REFUSED); // from the RST: a timeout would answer TIMEOUT
  });

  it('unknown host → reply 0x04 "host unreachable"', async () => {
    const { socket, rep } = await socksConnect(stack.socks.port, 'no-such-host.invalid', 80);
    socket.destroy();
    expect(rep).toBe(ConnectResult.HOST_UNREACHABLE);
    const r = await curlViaSocks(stack.socks.port, 'http://no-such-host.invalid/');
    expect(r.code).toBe(97); // curl: "Can't complete SOCKS5 connection ... (4)"
    expect(r.stderr).toContain('(4)');
  });
});

describe('the Worker refuses everyone without the key', () => {
  it('plain HTTP and a WebSocket without or with a wrong key proof all get 401', async () => {
    const http = await fetch(stack.worker.url.replace('ws:', 'http:'));
    expect(http.status).toBe(401);
    expect(await http.text()).toBe('Unauthorized');
    expect(await upgradeStatus(stack.worker.url, ['zks1'])).toBe(401);
    const wrong = await createClientHello(nodeCrypto, new Uint8Array(32).fill(7));
    expect(await upgradeStatus(stack.worker.url, ['zks1', `zks1.${encodeBase64Url(wrong.hello)}`])).toBe(401);
    const right = await createClientHello(nodeCrypto, parseKey(stack.key));
    expect(await upgradeStatus(stack.worker.url, ['zks1', `zks1.${encodeBase64Url(right.hello)}`])).toBe(101);
  });

  it('a client with a wrong key gets a clear error and no stream', async () => {
    await expect(TunnelConnection.open({ url: stack.worker.url, key: new Uint8Array(32).fill(1) })).rejects.toMatchObject({
      code: 'ZKS_ERR_AUTH',
    });
  });
});

describe('one bad WebSocket never disturbs the others', () => {
  it('garbage frames close that WebSocket with an error; another keeps working', async () => {
    const key = parseKey(stack.key);
    const [bad, good] = await Promise.all([
      TunnelConnection.open({ url: stack.worker.url, key }),
      TunnelConnection.open({ url: stack.worker.url, key }),
    ]);
    const closed = new Promise<number>((r) => bad.ws.on('close', (code) => r(code)));
    // A correctly sealed record whose content is not a valid frame sequence.
    const garbage = encodeFrames([{ type: FrameType.PING, stream: 0, opaque: new Uint8Array(8) }]);
    garbage[0] = 0x7f;
    (bad.link as unknown as { sendRecord(r: Uint8Array): void }).sendRecord(garbage);
    expect(await closed).toBe(4001);
    expect(bad.closed).toBe(true);

    const stream = good.mux.openStream({ host: '127.0.0.1', port: origin.port });
    const result = await new Promise<number>((r) => (stream.onResult = (c) => r(c)));
    expect(result).toBe(ConnectResult.OK);
    const chunks: Uint8Array[] = [];
    const ended = new Promise<void>((r) => (stream.onEnd = r));
    stream.onData = (c) => { chunks.push(c.slice()); stream.consume(c.length); };
    stream.write(Buffer.from('GET /id/3 HTTP/1.0\r\n\r\n'));
    await ended;
    const body = Buffer.concat(chunks).toString().split('\r\n\r\n')[1];
    expect(sha256(body)).toBe(sha256(idPayload(3)));
    good.close();
  });

  // The local stack's Worker keeps direct-mode sessions; one that does not fails that curl at once, never with a
  // truncated success: direct-reset.test.ts.
  it('a WebSocket killed mid-transfer is resumed: that curl completes whole; the next curl works', async () => {
    const url = `http://127.0.0.1:${origin.port}/big`;
    const before = tunnelBytesIn(stack.socks.pool);
    const pending = curlViaSocks(stack.socks.port, url, ['--limit-rate', '20M']);
    await until(() => tunnelBytesIn(stack.socks.pool) - before > 2 * 1024 * 1024, 'the download under way');
    for (const conn of stack.socks.pool.connections) conn.terminate();
    const killed = await pending;
    expect(killed.code, killed.stderr).toBe(0);
    expect(sha256(killed.stdout)).toBe(origin.bigSha);
    expect(stack.logs.some((l) => /WebSocket lost .*; resuming the session/.test(l))).toBe(true);
    expect(stack.logs.some((l) => /session resumed after \d+ ms/.test(l))).toBe(true);
    const next = await curlViaSocks(stack.socks.port, url);
    expect(next.code, next.stderr).toBe(0);
    expect(sha256(next.stdout)).toBe(origin.bigSha);
  });
});

describe('WebSocket pool', () => {
  it('spreads streams over several WebSockets when each may carry only 2', async () => {
    const small = await startStack({ maxStreams: 2 });
    try {
      const sockets = await Promise.all(Array.from({ length: 10 }, () => socksConnect(small.socks.port, '127.0.0.1', origin.port)));
      expect(sockets.every((s) => s.rep === 0)).toBe(true);
      const conns = small.socks.pool.connections;
      expect(conns.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...conns.map((c) => c.mux.streams.size))).toBeLessThanOrEqual(2);
      const bodies = await Promise.all(sockets.map(({ socket }, i) => new Promise<string>((resolve) => {
        const parts: Buffer[] = [];
        socket.on('data', (c: Buffer) => parts.push(c));
        socket.on('end', () => resolve(Buffer.concat(parts).toString().split('\r\n\r\n')[1] ?? ''));
        socket.resume();
        socket.end(`GET /id/${i} HTTP/1.0\r\n\r\n`);
      })));
      bodies.forEach((b, i) => expect(sha256(b)).toBe(sha256(idPayload(i))));
      sockets.forEach(({ socket }) => socket.destroy());
    } finally {
      await small.close();
    }
  });
});
