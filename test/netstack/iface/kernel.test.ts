// The Interface as the TUN driver against the Linux TCP stack: a TUN in a throwaway namespace (10.78.0.1/24), the
// kernel opens 20 concurrent connections to 10.78.0.2:7000 and sends each 512 KiB; every flow is accepted from
// onConnect and echoed (backpressure both ways), and each echo's sha256 must match. The namespace is deleted in
// finally. Skipped without root or /dev/net/tun (CI runs it as root).
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { configureTun, openTun, type TunDevice } from '../../../src/daemon/tun/index';
import { Interface, type Flow } from '../../../src/netstack/iface';
import { createNetns, deleteAllNetns, randomIfName, run } from '../../daemon/tun/netns';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0;
const FLOWS = 20;
const SIZE = 512 * 1024;

// Kernel side: FLOWS connections at once, each sends its own pseudo-random bytes, half-closes, reads the echo.
const CLIENT = `
const net = require('node:net'); const crypto = require('node:crypto');
const results = []; let done = 0;
for (let k = 0; k < ${FLOWS}; k++) {
  const data = Buffer.alloc(${SIZE}); let x = 12345 + k;
  for (let i = 0; i < data.length; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = x >>> 24; }
  const sent = crypto.createHash('sha256').update(data).digest('hex');
  const got = crypto.createHash('sha256'); let n = 0;
  const s = net.connect(7000, '10.78.0.2', () => { s.end(data); });
  s.on('data', (d) => { got.update(d); n += d.length; });
  s.on('end', () => { results[k] = { sent, got: got.digest('hex'), n }; if (++done === ${FLOWS}) { console.log(JSON.stringify(results)); process.exit(0); } });
  s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
}
`;

/** The daemon's part, minus the tunnel: TUN ↔ Interface, timers, and an echo per flow. */
class EchoDaemon {
  readonly iface: Interface;
  private readonly pending = new Map<Flow, { chunks: Uint8Array[]; closed: boolean }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly dev: TunDevice) {
    this.iface = new Interface({
      mtu: 1500,
      ipv6: 'blackhole',
      onConnect: (f) => { this.pending.set(f, { chunks: [], closed: false }); f.socket.accept(performance.now()); },
      onClose: (f) => { this.pending.delete(f); },
    });
    dev.onPackets((batch) => {
      const now = performance.now();
      for (const p of batch) this.iface.receive(p, now);
      this.service(now);
    });
  }

  private service(now: number): void {
    for (const [f, e] of this.pending) {
      const s = f.socket;
      for (;;) {
        while (e.chunks.length > 0) {
          const c = e.chunks[0];
          const n = s.send(c);
          if (n < c.length) { e.chunks[0] = c.subarray(n); break; }
          e.chunks.shift();
        }
        if (e.chunks.length > 0) break;
        const d = s.recv();
        if (!d) break;
        e.chunks.push(d);
      }
      if (s.remoteClosed && e.chunks.length === 0 && s.recvQueued === 0 && !e.closed) { s.close(); e.closed = true; }
    }
    const out: Uint8Array[] = [];
    const next = this.iface.poll(now, (p) => out.push(p));
    if (out.length > 0) this.dev.write(out);
    if (this.timer) clearTimeout(this.timer);
    this.timer = next === null ? null : setTimeout(() => this.service(performance.now()), Math.max(0, next - now));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

afterAll(deleteAllNetns);

describe.skipIf(!runnable && !process.env.CI)('Interface as the TUN driver against the Linux TCP stack', () => {
  it(`echoes ${FLOWS} concurrent kernel flows intact`, async () => {
    const ns = await createNetns();
    let dev: TunDevice | undefined;
    let daemon: EchoDaemon | undefined;
    try {
      dev = openTun({ name: randomIfName() });
      const mv = await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
      if (mv.code !== 0) throw new Error(`moving ${dev.name}: ${mv.stderr}`);
      await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', `net.ipv6.conf.${dev.name}.disable_ipv6=1`]);
      await configureTun(dev.name, { address: '10.78.0.1/24', netns: ns.name });
      daemon = new EchoDaemon(dev);
      const child = ns.node(CLIENT);
      const line = await child.waitLine(/^[[{]/, 50_000);
      const r = JSON.parse(line) as { sent: string; got: string; n: number }[] | { error: string };
      expect(Array.isArray(r) ? undefined : r.error).toBeUndefined();
      const rs = r as { sent: string; got: string; n: number }[];
      expect(rs).toHaveLength(FLOWS);
      for (const x of rs) {
        expect(x.n).toBe(SIZE);
        expect(x.got).toBe(x.sent);
      }
      expect(daemon.iface.stats.flowsOpened).toBe(FLOWS);
      expect(daemon.iface.stats).toMatchObject({ malformed: 0, badChecksum: 0, fragments: 0 });
    } finally {
      daemon?.stop();
      dev?.close();
      await ns.del();
    }
  });
});
