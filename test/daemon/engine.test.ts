// The daemon's data path with real parts: a TUN device in a throwaway namespace whose default route points into
// it, the TunnelEngine (netstack + flow pumps + DNS forwarder) in this process, the real TunnelPool and the real
// Worker in workerd (direct and relay mode), and kernel clients (curl, a node DNS client) in the namespace.
// The namespace has no other route, so everything the clients reach went through the netstack and the tunnel.
// Targets live on this host's loopback: the test's dialer maps the namespace-side address 10.78.9.9 to
// 127.0.0.1 before handing the CONNECT to the real pool (the Worker's connect() then reaches the origin).
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { startTcpDns } from '../fixtures/tcp-dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureTun, openTun, type TunDevice } from '../../src/daemon/tun/index';
import { TunnelEngine } from '../../src/daemon/engine';
import type { Dialer } from '../../src/daemon/dialer';
import type { Target } from '../../src/protocol/address';
import { createNetns, deleteAllNetns, randomIfName, run, type Netns } from './tun/netns';
import { sha256, startOrigin, startStack, type Origin } from '../integration/harness';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0;
const FAR = '10.78.9.9';
const RESOLVER = '100.77.0.53';

interface Setup {
  ns: Netns;
  dev: TunDevice;
  engine: TunnelEngine;
  close(): Promise<void>;
}

async function setup(dialer: Dialer, path: 'worker' | 'exit', dnsPort: number): Promise<Setup> {
  const ns = await createNetns();
  const dev = openTun({ name: randomIfName() });
  let engine: TunnelEngine | undefined;
  try {
    await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
    await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', `net.ipv6.conf.${dev.name}.disable_ipv6=1`]);
    await configureTun(dev.name, { address: '100.77.0.1/24', netns: ns.name });
    await ns.ip('route', 'add', 'default', 'dev', dev.name);
    engine = new TunnelEngine({
      dev,
      dialer,
      path,
      ipv6: 'blackhole',
      dns: { address: RESOLVER, upstream: { host: '127.0.0.1', port: dnsPort } },
    });
    const e = engine;
    return { ns, dev, engine: e, close: async () => { e.stop(); await new Promise((r) => setTimeout(r, 20)); dev.close(); await ns.del(); } };
  } catch (err) {
    engine?.stop();
    dev.close();
    await ns.del();
    throw err;
  }
}

/** The real pool, with the namespace-side address of the far host mapped to this host's loopback. */
function loopbackDialer(pool: Dialer): Dialer {
  return { open: (t: Target) => pool.open(t.host === FAR ? { host: '127.0.0.1', port: t.port } : t) };
}

function inNs(ns: Netns, cmd: string, args: string[], opts: { timeoutMs?: number; input?: Buffer } = {}) {
  return import('../integration/harness').then((h) => h.run('ip', ['netns', 'exec', ns.name, cmd, ...args], opts));
}

afterAll(deleteAllNetns);

describe.skipIf(!runnable && !process.env.CI).each(['direct', 'relay'] as const)('TunnelEngine end to end (%s mode)', (mode) => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let origin: Origin;
  let dns: Awaited<ReturnType<typeof startTcpDns>>;
  let s: Setup;

  beforeAll(async () => {
    [stack, origin, dns] = await Promise.all([startStack({ mode }), startOrigin(20 * 1024 * 1024), startTcpDns()]);
    s = await setup(loopbackDialer(stack.socks.pool), mode === 'direct' ? 'worker' : 'exit', dns.port);
    return async () => {
      await s?.close();
      await Promise.all([stack?.close(), origin?.close(), dns?.close()]);
    };
  }, 60_000);

  it('curl downloads 20 MB and uploads 8 MB intact, with no proxy configured', async () => {
    const down = await inNs(s.ns, 'curl', ['-sS', '--max-time', '60', `http://${FAR}:${origin.port}/big`], { timeoutMs: 70_000 });
    expect(down.stderr).toBe('');
    expect(down.stdout.length).toBe(origin.big.length);
    expect(sha256(down.stdout)).toBe(origin.bigSha);
    const body = origin.big.subarray(0, 8 * 1024 * 1024);
    const up = await inNs(s.ns, 'curl', ['-sS', '--max-time', '60', '--data-binary', '@-', `http://${FAR}:${origin.port}/`], { input: body, timeoutMs: 70_000 });
    expect(up.stdout.toString()).toBe(sha256(body));
    const flows = s.engine.flows.flows(true);
    expect(flows.some((f) => f.destination === `${FAR}:${origin.port}` && f.bytesDown >= origin.big.length && f.path === (mode === 'direct' ? 'worker' : 'exit'))).toBe(true);
    expect(s.engine.iface.stats).toMatchObject({ malformed: 0, badChecksum: 0 });
  });

  it('a closed port fails fast with "connection refused" (RST after the relay says so)', async () => {
    const closed = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => { const p = (srv.address() as AddressInfo).port; srv.close(() => resolve(p)); });
    });
    const r = await inNs(s.ns, 'curl', ['-sS', '--max-time', '10', `http://${FAR}:${closed}/`], { timeoutMs: 15_000 });
    expect(r.code).toBe(7); // CURLE_COULDNT_CONNECT
    expect(r.stderr).toMatch(/refused|Couldn't connect/i); // an RST, not a timeout (curl exit code 28)
  });

  it('DNS: a UDP query to the resolver address is answered over TCP through the tunnel', async () => {
    const before = dns.queries();
    const script = `
      const d = require('node:dgram').createSocket('udp4');
      const q = Buffer.from('1234010000010000000000000474657374037a6b73000001' + '0001', 'hex');
      d.on('message', (m) => { console.log(m.toString('hex')); process.exit(0); });
      d.send(q, 53, '${RESOLVER}');
      setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);`;
    const child = s.ns.node(script);
    const line = await child.waitLine(/^[0-9a-f]+$|timeout/, 8_000);
    expect(line.slice(0, 4)).toBe('1234'); // the application's own id comes back
    expect(line).toMatch(/0a4e0909$/); // A 10.78.9.9
    expect(dns.queries()).toBe(before + 1);
    expect(s.engine.dns?.stats).toMatchObject({ answers: 1, servfail: 0 });
  });

  it('40 concurrent curls, each intact', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      inNs(s.ns, 'curl', ['-sS', '--max-time', '30', `http://${FAR}:${origin.port}/id/${i}`], { timeoutMs: 40_000 })));
    const { idPayload } = await import('../integration/harness');
    results.forEach((r, i) => {
      expect(r.stderr).toBe('');
      expect(sha256(r.stdout)).toBe(sha256(idPayload(i)));
    });
  });
});
