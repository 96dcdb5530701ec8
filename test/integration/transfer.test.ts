// End-to-end transfers through the real stack: curl → SOCKS5 → client → Worker in workerd → origin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idPayload, sha256, socksConnect, curlViaSocks, startHashAfterEofServer, startOrigin, startStack, type Origin } from './harness';
import type { LocalStack } from '../../src/cli/start';

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
