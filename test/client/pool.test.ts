// TunnelPool against the real Worker in workerd: surplus relay connections are closed once they have carried
// nothing for idleCloseMs, although keepalive PONGs keep arriving on them (they used to count as activity, so a
// burst of 1 000 streams left ~170 WebSockets open for good: memory on both ends, and a client whose GC then
// marked their state ~12 times a second under bulk traffic), while a connection with a stream stays up.
import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { encodeBase64Url } from '../../src/crypto/handshake';
import { TunnelPool } from '../../src/client/pool';
import type { MuxStream } from '../../src/protocol/stream';

const key = new Uint8Array(randomBytes(32));
let worker: DevWorker;
let echo: Server;
let echoPort: number;

beforeAll(async () => {
  worker = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true });
  echo = createServer((s) => s.pipe(s).on('error', () => {}));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
}, 60_000);
afterAll(async () => {
  await new Promise((r) => echo?.close(r));
  await worker?.dispose();
});

/** Polls `cond` (an event, not a duration: the bound only turns a hang into a failure). */
async function until(cond: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function openEcho(pool: TunnelPool): Promise<MuxStream> {
  const r = await pool.open({ host: '127.0.0.1', port: echoPort });
  if (!r.ok) throw new Error(`CONNECT failed: ${r.message}`);
  return r.stream;
}

function roundTrip(stream: MuxStream, text: string): Promise<void> {
  let got = '';
  return new Promise<void>((resolve) => {
    stream.onData = (chunk) => {
      got += Buffer.from(chunk).toString();
      stream.consume(chunk.byteLength);
      if (got === text) resolve();
    };
    stream.write(Buffer.from(text));
  });
}

it('closes surplus connections idle for idleCloseMs despite keepalive PONGs, keeps one warm and every busy one', async () => {
  const pool = new TunnelPool({ url: worker.url, key, maxStreamsPerConnection: 2, idleCloseMs: 400, pingIntervalMs: 50 });
  try {
    await pool.start();
    const streams = await Promise.all(Array.from({ length: 6 }, () => openEcho(pool)));
    expect(pool.connections).toHaveLength(3);
    await Promise.all(streams.map((s, i) => roundTrip(s, `hello ${i}`)));

    // Keep one stream on the last connection; close the rest and wait until the connections have answered
    // keepalives since (so the old rule, "nothing received for idleCloseMs", could never close them).
    const busy = pool.connections[2];
    const held = streams.find((s) => busy.mux.streams.get(s.id) === s)!;
    for (const s of streams) if (s !== held) s.reset();
    await until(() => pool.connections.filter((c) => c.mux.streams.size === 0).length === 2, 'two empty connections');
    const pongs = pool.connections.map((c) => c.mux.lastReceiveAt);
    await until(() => pool.connections.every((c, i) => c.mux.lastReceiveAt > pongs[i]), 'keepalive answers');

    await until(() => pool.connections.length === 2, 'the surplus connection to close');
    expect(pool.connections).toContain(busy);
    const warm = pool.connections.find((c) => c !== busy)!;
    expect(warm.mux.streams.size).toBe(0);

    // The busy connection's stream still works, and the warm one takes the next stream without a handshake.
    await roundTrip(held, 'still here');
    const next = await openEcho(pool);
    expect(pool.connections).toHaveLength(2);
    await roundTrip(next, 'on the warm one');
    next.reset();
    held.reset();
  } finally {
    await pool.stop();
  }
});
