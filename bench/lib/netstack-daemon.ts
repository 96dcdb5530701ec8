// The daemon side of the netstack bench, its own process (so its RSS and CPU are the stack's alone): a TUN moved
// into the bench namespace as 10.79.0.1/24, the StackDriver and Interface exactly as zksd uses them, and in-process
// applications instead of the tunnel — port 5001 a counting sink (16-byte reports every 100 ms, as ns-client
// expects), 5002 a source (zeros as fast as the window allows), 5003 echo. SIGUSR2 prints a `stats {…}` line;
// SIGTERM exits cleanly (so --cpu-prof can write its profile).
// Usage: node --import tsx bench/lib/netstack-daemon.ts NETNS offload|plain MTU SUBNET (10.79.SUBNET.1/24 on the TUN)

import { execFileSync } from 'node:child_process';
import { configureTun, openTun } from '../../src/daemon/tun/index';
import { StackDriver } from '../../src/daemon/driver';
import { Interface, type Flow } from '../../src/netstack/iface';
import { PORTS, REPORT_BYTES } from './ns-client';

const [ns, mode, mtuText, subnet] = process.argv.slice(2);
const offload = mode === 'offload';
const mtu = Number(mtuText ?? 1500);
const name = `zkb${process.pid.toString(16)}`.slice(0, 15);

type Kind = 'sink' | 'source' | 'echo';
interface App { flow: Flow; kind: Kind; count: number; closed: boolean; pending: Uint8Array | null }

const ZEROS = new Uint8Array(1 << 20);
const scratch = new Uint8Array(1 << 20);
const apps = new Map<number, App>();
const active = new Set<App>();

function service(): void {
  for (const app of active) {
    const s = app.flow.socket;
    switch (app.kind) {
      case 'sink':
        for (let n = 0; n < 64; n++) {
          const d = s.recv(scratch);
          if (d === null) break;
          app.count += d.length;
        }
        break;
      case 'source':
        for (let room = s.sendSpace; room > 0; room = s.sendSpace) s.send(ZEROS.subarray(0, Math.min(room, ZEROS.length)));
        break;
      case 'echo':
        for (let n = 0; n < 64; n++) {
          if (app.pending !== null) {
            const k = s.send(app.pending);
            app.pending = k < app.pending.length ? app.pending.subarray(k) : null;
            if (app.pending !== null) break;
          }
          const d = s.recv();
          if (d === null) break;
          app.pending = d;
        }
        break;
    }
    if (s.remoteClosed && s.recvQueued === 0 && app.pending === null && !app.closed) {
      app.closed = true;
      s.close();
    }
  }
  active.clear();
}

const dev = openTun({ name, offload, maxBatchPackets: 64, maxBatchBytes: 1 << 20 });
const kinds: Record<number, Kind> = { [PORTS.sink]: 'sink', [PORTS.source]: 'source', [PORTS.echo]: 'echo' };
const iface = new Interface({
  mtu,
  ipv6: 'blackhole',
  onConnect: (flow) => {
    const kind = kinds[flow.local.port];
    if (kind === undefined) return flow.socket.refuse();
    const app: App = { flow, kind, count: 0, closed: false, pending: null };
    apps.set(flow.id, app);
    flow.socket.accept(performance.now());
    active.add(app);
  },
  onActivity: (flow) => {
    const app = apps.get(flow.id);
    if (app !== undefined) active.add(app);
  },
  onClose: (flow) => {
    const app = apps.get(flow.id);
    apps.delete(flow.id);
    if (app !== undefined) active.delete(app);
  },
});
const driver = new StackDriver(dev, iface, service, (err) => {
  console.error(`TUN: ${err.message}`);
  process.exit(1);
});

// Sink reports: the byte count so far and this process's clock, like the kernel sink in ns-client.
setInterval(() => {
  let any = false;
  for (const app of apps.values()) {
    if (app.kind !== 'sink' || app.closed) continue;
    const r = new Uint8Array(REPORT_BYTES);
    const dv = new DataView(r.buffer);
    dv.setBigUint64(0, BigInt(app.count));
    dv.setFloat64(8, performance.now());
    app.flow.socket.send(r);
    active.add(app);
    any = true;
  }
  if (any) driver.kick();
}, 100);

execFileSync('ip', ['link', 'set', 'dev', name, 'netns', ns]);
execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${name}.disable_ipv6=1`]);
await configureTun(name, { address: `10.79.${Number(subnet)}.1/24`, netns: ns, mtu });
console.log(`netstack ready ${JSON.stringify({ name, offload: dev.offload, mtu, pid: process.pid })}`);

process.on('SIGUSR2', () => {
  console.log(`stats ${JSON.stringify({ rss: process.memoryUsage.rss(), flows: iface.flowCount, iface: iface.stats, driver: driver.stats })}`);
});
process.on('SIGTERM', () => {
  driver.close();
  dev.close();
  process.exit(0);
});
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 1_000).unref(); // orphaned: the bench died
