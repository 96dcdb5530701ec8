// Memory per idle UDP flow at the exit (issue 10 goal: ≤ 4 KiB, kernel socket buffers excluded): 2 000 flows
// that each sent one datagram, measured with process.memoryUsage after GC, beside 2 000 bare bound dgram sockets
// in the same run (what node:dgram itself costs, which dominates).
import { createSocket, type Socket } from 'node:dgram';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UdpNat } from '../../src/exit/udp-nat';
import { UdpEcho } from './udp-peers';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N = 2000;
let sink: UdpEcho;
beforeAll(async () => {
  sink = await UdpEcho.start('127.0.0.1', { echo: false });
});
afterAll(() => sink?.close());

const settled = async (): Promise<NodeJS.MemoryUsage> => {
  // A few event-loop turns (sends complete, closed handles are released), then a full GC.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  gc();
  return process.memoryUsage();
};

interface PerFlow {
  heap: number;
  external: number;
  rss: number;
}

async function perFlow(open: () => () => void): Promise<PerFlow> {
  const before = await settled();
  const release = open();
  const after = await settled();
  release();
  await settled();
  const per = (k: 'heapUsed' | 'external' | 'rss') => Math.round((after[k] - before[k]) / N);
  return { heap: per('heapUsed'), external: per('external'), rss: per('rss') };
}

it(`an idle UDP flow costs ≤ 4 KiB of JS heap at the exit (N = ${N})`, async () => {
  const payload = new Uint8Array(32);
  const literal = (address: string, _o: unknown, done: (e: null, a: string, f: number) => void) => done(null, address, 4);
  const bare = await perFlow(() => {
    const socks: Socket[] = [];
    for (let i = 0; i < N; i++) {
      const s = createSocket({ type: 'udp4', lookup: literal });
      s.bind(0);
      s.send(payload, sink.port, '127.0.0.1');
      socks.push(s);
    }
    return () => socks.forEach((s) => s.close());
  });
  const nat = await perFlow(() => {
    const udp = new UdpNat({ allowLan: true, maxFlows: N, deliver() {}, closed() {} });
    for (let i = 0; i < N; i++) udp.send(i, sink.target, payload);
    expect(udp.size).toBe(N);
    return () => udp.closeAll();
  });
  console.log(
    `memory per idle UDP flow (N=${N}): UdpNat heap ${nat.heap} B + external ${nat.external} B (rss ${nat.rss} B); ` +
      `a bare node:dgram socket alone: heap ${bare.heap} B + external ${bare.external} B (rss ${bare.rss} B)`,
  );
  expect(nat.heap + nat.external).toBeLessThanOrEqual(4096);
});
