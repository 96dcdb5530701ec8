// StackDriver + Interface against the Linux TCP stack, both TUN modes: a TUN in a throwaway namespace
// (10.80.0.1/24), an echo application on the netstack side, and a kernel client that streams pseudo-random bytes
// to 10.80.0.2:7000 while reading the echo; both sha256 sums must match. Offload mode moves 64 MiB each way and
// must really use the kernel's offload (GSO super-packets read and written, no checksum failures). The namespace
// is deleted in finally. Skipped without root or /dev/net/tun (CI runs it as root).
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { StackDriver } from '../../src/daemon/driver';
import { configureTun, openTun, type TunDevice } from '../../src/daemon/tun/index';
import { Interface, type Flow } from '../../src/netstack/iface';
import { createNetns, deleteAllNetns, randomIfName, run } from './tun/netns';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0;
const MiB = 1024 * 1024;

// Kernel side: write SIZE bytes of xorshift output in 1 MiB chunks (with backpressure), half-close, hash the echo.
const client = (size: number) => `
const net = require('node:net'); const crypto = require('node:crypto');
const sent = crypto.createHash('sha256'); const got = crypto.createHash('sha256');
let x = 0x9e3779b9, left = ${size}, n = 0;
function chunk() {
  const b = Buffer.allocUnsafe(Math.min(left, 1 << 20)); const w = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
  for (let i = 0; i < w.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; w[i] = x >>> 0; }
  left -= b.length; sent.update(b); return b;
}
const s = net.connect(7000, '10.80.0.2', () => {
  const pump = () => { while (left > 0) { if (!s.write(chunk())) return; } s.end(); };
  s.on('drain', pump); pump();
});
s.on('data', (d) => { got.update(d); n += d.length; });
s.on('end', () => { console.log(JSON.stringify({ sent: sent.digest('hex'), got: got.digest('hex'), n })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
`;

/** The daemon's data path minus the tunnel: the driver, the interface, and an echo per flow. */
function echoStack(dev: TunDevice): { iface: Interface; driver: StackDriver } {
  const pending = new Map<Flow, { chunk: Uint8Array | null; closed: boolean }>();
  const active = new Set<Flow>();
  const iface = new Interface({
    mtu: 1500,
    ipv6: 'blackhole',
    onConnect: (f) => { pending.set(f, { chunk: null, closed: false }); f.socket.accept(performance.now()); active.add(f); },
    onActivity: (f) => active.add(f),
    onClose: (f) => { pending.delete(f); active.delete(f); },
  });
  const service = (): void => {
    for (const f of active) {
      const e = pending.get(f);
      if (!e) continue;
      const s = f.socket;
      for (let k = 0; k < 256; k++) {
        if (e.chunk) {
          const n = s.send(e.chunk);
          e.chunk = n < e.chunk.length ? e.chunk.subarray(n) : null;
          if (e.chunk) break; // send buffer full: stop reading, our window closes
        }
        const d = s.recv();
        if (!d) break;
        e.chunk = d;
      }
      if (s.remoteClosed && !e.chunk && s.recvQueued === 0 && !e.closed) { s.close(); e.closed = true; }
    }
    active.clear();
  };
  const driver = new StackDriver(dev, iface, service, (err) => { throw err; });
  return { iface, driver };
}

afterAll(deleteAllNetns);

describe.skipIf(!runnable && !process.env.CI)('StackDriver against the Linux TCP stack (TUN in a namespace)', () => {
  for (const [offload, size] of [[true, 64 * MiB], [false, 16 * MiB]] as const) {
    it(`${offload ? 'offload' : 'plain'}: echoes ${size / MiB} MiB each way intact`, async () => {
      const ns = await createNetns();
      let dev: TunDevice | undefined;
      let stack: ReturnType<typeof echoStack> | undefined;
      try {
        dev = openTun({ name: randomIfName(), offload });
        expect(dev.offload).toBe(offload);
        const mv = await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
        if (mv.code !== 0) throw new Error(`moving ${dev.name}: ${mv.stderr}`);
        await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', `net.ipv6.conf.${dev.name}.disable_ipv6=1`]);
        await configureTun(dev.name, { address: '10.80.0.1/24', netns: ns.name });
        stack = echoStack(dev);
        expect(stack.iface.offload).toBe(offload);
        const child = ns.node(client(size));
        const line = await child.waitLine(/^\{/, 50_000);
        const r = JSON.parse(line) as { sent: string; got: string; n: number; error?: string };
        expect(r.error).toBeUndefined();
        expect(r.n).toBe(size);
        expect(r.got).toBe(r.sent);
        expect(stack.iface.stats).toMatchObject({ malformed: 0, badChecksum: 0, flowsOpened: 1 });
        if (offload) {
          expect(stack.driver.stats.gsoRead).toBeGreaterThan(0);
          expect(stack.driver.stats.gsoWritten).toBeGreaterThan(0);
        } else {
          expect(stack.driver.stats).toMatchObject({ gsoRead: 0, gsoWritten: 0 });
        }
      } finally {
        stack?.driver.close();
        dev?.close();
        await ns.del();
      }
    });
  }
});
