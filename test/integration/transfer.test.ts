// End-to-end transfers through the real stack: curl → SOCKS5 → client → Worker in workerd → origin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idPayload, sha256, socksConnect, curlViaSocks, startHashAfterEofServer, startOrigin, startStack, type Origin } from './harness';
import type { LocalStack } from '../../src/cli/start';
import { createServer, type AddressInfo } from 'node:net';

let stack: LocalStack;
let origin: Origin;

beforeAll(async () => {
  [stack, origin] = await Promise.all([startStack(), startOrigin()]);
});
afterAll(async () => {
  await stack?.close();
  await origin?.close();
});

describe('transfers through the Worker', () => {
  it('downloads 100 MB intact (sha256 equal at both ends)', async () => {
    const r = await curlViaSocks(stack.socks.port, `http://127.0.0.1:${origin.port}/big`, [], { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(origin.big.length);
    expect(sha256(r.stdout)).toBe(origin.bigSha);
  });

  it('uploads 100 MB intact (sha256 equal at both ends)', async () => {
    const r = await curlViaSocks(stack.socks.port, `http://127.0.0.1:${origin.port}/`, ['--data-binary', '@-', '-H', 'Expect:'], {
      timeoutMs: 90_000,
      input: origin.big,
    });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(origin.bigSha);
    expect(origin.uploads.at(-1)).toBe(origin.bigSha);
  });

  it('carries 50 concurrent streams with distinct payloads', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => i + 1);
    const results = await Promise.all(ids.map((id) => curlViaSocks(stack.socks.port, `http://127.0.0.1:${origin.port}/id/${id}`)));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(sha256(r.stdout)).toBe(sha256(idPayload(ids[i])));
    });
  });

  it('regression: a target that speaks first (banner) reaches every one of 200 concurrent clients', async () => {
    const banner = createServer((s) => { s.on('error', () => {}); s.end('220 banner from a server that speaks first\r\n'); });
    await new Promise<void>((r) => banner.listen(0, '127.0.0.1', r));
    const port = (banner.address() as AddressInfo).port;
    try {
      const got = await Promise.all(Array.from({ length: 200 }, async () => {
        const { socket, rep } = await socksConnect(stack.socks.port, '127.0.0.1', port);
        expect(rep).toBe(0);
        return new Promise<string>((resolve) => {
          let text = '';
          socket.on('data', (c: Buffer) => (text += c.toString()));
          socket.on('end', () => { socket.destroy(); resolve(text); });
          socket.on('error', () => resolve(`error after ${JSON.stringify(text)}`));
          socket.resume();
        });
      }));
      expect(got.filter((t) => t !== '220 banner from a server that speaks first\r\n')).toEqual([]);
    } finally {
      banner.close();
    }
  });

  it('honours half-close: the client ends its write side and still reads the whole answer', async () => {
    const service = await startHashAfterEofServer();
    try {
      const { socket, rep } = await socksConnect(stack.socks.port, '127.0.0.1', service.port);
      expect(rep).toBe(0);
      const sent = Buffer.alloc(3 * 1024 * 1024, 'z');
      const answer: Buffer[] = [];
      const done = new Promise<void>((resolve, reject) => {
        socket.on('data', (c: Buffer) => answer.push(c));
        socket.on('end', () => resolve());
        socket.on('error', reject);
      });
      socket.resume();
      socket.end(sent);
      await done;
      expect(Buffer.concat(answer).toString()).toBe(`sha256:${sha256(sent)}\n`);
      socket.destroy();
    } finally {
      await service.close();
    }
  });
});
