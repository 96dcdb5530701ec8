// A slow reader must not make anyone buffer without bound: the client and the Worker (workerd has no
// backpressure of its own) hold at most about one stream window while the application stops reading.
// Client and Worker run as separate processes here so their memory can be measured apart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { childWorkerdPids, rssOf, run, socksConnect, startCli, type CliProcess } from './harness';

let worker: CliProcess;
let client: CliProcess;
let origin: Server;
let originPort = 0;

beforeAll(async () => {
  // An origin that streams as fast as the tunnel accepts, for as long as the connection stays open.
  const block = Buffer.alloc(256 * 1024, 0x5a);
  origin = createServer((s) => {
    s.on('error', () => {});
    const pump = () => { while (!s.destroyed && s.write(block)); };
    s.on('drain', pump);
    pump();
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originPort = (origin.address() as AddressInfo).port;
  const key = (await run(process.execPath, ['bin/zks.js', 'keygen'])).stdout.toString().trim();
  worker = await startCli(['worker', '--listen', '127.0.0.1:0', '--key', key, '--allow-private']);
  const url = /ws:\/\/\S+/.exec(worker.readyLine)![0];
  client = await startCli(['socks5', '--relay', url, '--key', key, '--listen', '127.0.0.1:0', '--quiet']);
});

afterAll(async () => {
  await client?.kill();
  await worker?.kill();
  await new Promise<void>((r) => (origin ? origin.close(() => r()) : r()));
});

describe('slow reader', () => {
  it('pausing a fast download for 5 s keeps client and Worker memory bounded', async () => {
    const socksPort = Number(/:(\d+) \(/.exec(client.readyLine)![1]);
    const workerd = childWorkerdPids(worker.pid);
    expect(workerd.length).toBe(1);
    const { socket, rep } = await socksConnect(socksPort, '127.0.0.1', originPort);
    expect(rep).toBe(0);
    let received = 0;
    socket.on('data', (c: Buffer) => (received += c.length));
    /** Resolves once `n` bytes have arrived in all; the 30 s are only a failure deadline. */
    const receivedAtLeast = (n: number, what: string) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: only ${received} of ${n} bytes within 30 s`)), 30_000);
      const check = () => {
        if (received < n) return;
        clearTimeout(timer);
        socket.off('data', check);
        resolve();
      };
      socket.on('data', check);
      check();
    });
    socket.resume();
    await receivedAtLeast(20 * 1024 * 1024, 'the download in full flow'); // windows have filled everywhere

    socket.pause();
    // The pause itself is what is tested: the origin keeps pushing for 5 s while nobody reads.
    const base = { client: rssOf(client.pid), worker: rssOf(workerd[0]) };
    let peak = { ...base };
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 500));
      peak = { client: Math.max(peak.client, rssOf(client.pid)), worker: Math.max(peak.worker, rssOf(workerd[0])) };
    }
    // Without flow control the Worker would pile up ~1 GB here; one window is 1 MiB plus socket buffers.
    expect(peak.client - base.client).toBeLessThan(32 * 1024 * 1024);
    expect(peak.worker - base.worker).toBeLessThan(32 * 1024 * 1024);

    const before = received;
    socket.resume();
    await receivedAtLeast(before + 10 * 1024 * 1024, 'the download after the pause'); // and it resumes
    socket.destroy();
  });
});
