// Our TcpSocket against the Linux TCP stack: a TUN in a throwaway namespace (10.77.0.1/24, the pattern of
// test/daemon/tun), a small driver here that parses IPv4/TCP with src/netstack/wire, feeds each flow's socket and
// writes its segments back, and a kernel client inside the namespace that sends 10 MB to 10.77.0.2:7000 and reads
// the echo. The namespace is deleted in finally. Skipped without root or /dev/net/tun (CI runs it as root).
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { configureTun, openTun, type TunDevice } from '../../../src/daemon/tun/index';
import { TcpSocket } from '../../../src/netstack/socket/index';
import { IpProtocol, Ipv4Repr, Ipv4View, TcpRepr, TcpView, ipv4FromText, isWireError } from '../../../src/netstack/wire/index';
import { createNetns, deleteAllNetns, randomIfName, run } from '../../daemon/tun/netns';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0;
const OURS = ipv4FromText('10.77.0.2')!;
const SIZE = 10 * 1024 * 1024;

// Kernel side: connect, send SIZE pseudo-random bytes, half-close, read the echo; print both sha256 sums.
const CLIENT = `
const net = require('node:net'); const crypto = require('node:crypto');
const size = ${SIZE}; const data = Buffer.alloc(size); let x = 12345;
for (let i = 0; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = x >>> 24; }
const sent = crypto.createHash('sha256').update(data).digest('hex');
const got = crypto.createHash('sha256'); let n = 0;
const s = net.connect(7000, '10.77.0.2', () => { s.end(data); });
s.on('data', (d) => { got.update(d); n += d.length; });
s.on('end', () => { console.log(JSON.stringify({ sent, got: got.digest('hex'), n })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
`;

/** The driver: one TcpSocket per source port, echoing what it receives (with backpressure both ways). */
class EchoDriver {
  private socks = new Map<number, { s: TcpSocket; pending: Uint8Array[]; closed: boolean }>();
  private timer: NodeJS.Timeout | null = null;
  rejected = 0;
  constructor(private readonly dev: TunDevice, private readonly peer: Uint8Array) {
    dev.onPackets((batch) => {
      const now = performance.now();
      for (const p of batch) this.input(p, now);
      this.service(now);
    });
  }

  private input(p: Uint8Array, now: number): void {
    const ip = Ipv4View.checked(p);
    if (isWireError(ip) || ip.protocol !== IpProtocol.TCP || ip.isFragment) return;
    const tcp = TcpView.checked(ip.payload);
    if (isWireError(tcp) || !tcp.verifyChecksum(ip.src, ip.dst)) return;
    const seg = TcpRepr.parse(tcp);
    const e = this.socks.get(seg.srcPort);
    if (e) return e.s.process(seg, now);
    const s = TcpSocket.fromSyn(seg, now, { mss: 1460, rxBufferSize: 256 * 1024, txBufferSize: 256 * 1024, initialSeq: 0xfffff000 });
    if (s === 'reject') { this.rejected++; return; }
    s.accept(now); // CONNECT "succeeded"
    this.socks.set(seg.srcPort, { s, pending: [], closed: false });
  }

  private service(now: number): void {
    const out: Uint8Array[] = [];
    let next = Infinity;
    for (const e of this.socks.values()) {
      const { s } = e;
      for (;;) {
        while (e.pending.length > 0) {
          const c = e.pending[0];
          const n = s.send(c);
          if (n < c.length) { e.pending[0] = c.subarray(n); break; }
          e.pending.shift();
        }
        if (e.pending.length > 0) break; // tx full: stop reading, our window closes
        const d = s.recv();
        if (!d) break;
        e.pending.push(d);
      }
      if (s.remoteClosed && e.pending.length === 0 && s.recvQueued === 0 && !e.closed) { s.close(); e.closed = true; }
      s.dispatch(now, (seg) => {
        const tl = TcpRepr.bufferLen(seg);
        const buf = new Uint8Array(20 + tl);
        Ipv4Repr.emit({ src: OURS, dst: this.peer, protocol: IpProtocol.TCP, payloadLen: tl, ttl: 64, dscp: 0, ecn: 0, ident: 0,
          dontFrag: true, moreFrags: false, fragOffset: 0, options: new Uint8Array(0) }, buf);
        TcpRepr.emit(seg, buf.subarray(20), { src: OURS, dst: this.peer });
        out.push(buf);
      });
      const at = s.pollAt();
      if (at !== null) next = Math.min(next, at);
    }
    if (out.length > 0) this.dev.write(out);
    if (this.timer) clearTimeout(this.timer);
    this.timer = next === Infinity ? null : setTimeout(() => this.service(performance.now()), Math.max(0, next - now));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

afterAll(deleteAllNetns);

describe.skipIf(!runnable && !process.env.CI)('TcpSocket against the Linux TCP stack (TUN in a namespace)', () => {
  it('echoes 10 MB to a kernel client intact', async () => {
    const ns = await createNetns();
    let dev: TunDevice | undefined;
    let driver: EchoDriver | undefined;
    try {
      dev = openTun({ name: randomIfName() });
      const mv = await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
      if (mv.code !== 0) throw new Error(`moving ${dev.name}: ${mv.stderr}`);
      await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', `net.ipv6.conf.${dev.name}.disable_ipv6=1`]);
      await configureTun(dev.name, { address: '10.77.0.1/24', netns: ns.name });
      driver = new EchoDriver(dev, ipv4FromText('10.77.0.1')!);
      const child = ns.node(CLIENT);
      const line = await child.waitLine(/^\{/, 50_000);
      const r = JSON.parse(line) as { sent: string; got: string; n: number; error?: string };
      expect(r.error).toBeUndefined();
      expect(r.n).toBe(SIZE);
      expect(r.got).toBe(r.sent);
      expect(driver.rejected).toBe(0);
    } finally {
      driver?.stop();
      dev?.close();
      await ns.del();
    }
  });
});
