// The zksd test topology itself, without zksd: namespaces, world services (Worker, exit peer, HTTP, DNS, sshd,
// iperf3), packet capture, the per-namespace resolv.conf, the impairment line, and a destroy() that leaves
// nothing behind. Needs root and /dev/net/tun (CI has both; elsewhere the suite skips).
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDR, createTopology, destroyAllTopologies, expectedSha256, otherThan, PORTS, withoutNeighbour, type Topology,
} from './topology';
import { createHash } from 'node:crypto';

const runnable = (existsSync('/dev/net/tun') && process.getuid?.() === 0) || !!process.env.CI;
const describeNs = runnable ? describe : describe.skip;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

afterAll(destroyAllTopologies);

/** After destroy(): no namespace, no /etc/netns entry, no process left of `t`. */
async function expectGone(t: Topology, pids: number[]): Promise<void> {
  const names = [t.ns.world, t.ns.client, t.ns.app].filter((n): n is string => !!n);
  await t.destroy();
  const list = (await import('node:child_process')).spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const n of names) {
    expect(list).not.toContain(n);
    expect(existsSync(`/etc/netns/${n}`)).toBe(false);
  }
  expect(existsSync(t.dir)).toBe(false);
  const alive = pids.filter((pid) => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')));
  expect(alive).toEqual([]);
}

describeNs('test topology: world services reached directly from the client', () => {
  let t: Topology;
  beforeAll(async () => {
    t = await createTopology({ exitPeer: true });
  });

  it('joins client and world on 10.79.0.0/24 and fd79::/64, with the relay and an exit peer up', async () => {
    expect(t.ns.world).toMatch(/^zksw-[0-9a-f]+$/);
    expect(t.ns.client).toMatch(/^zksc-[0-9a-f]+$/);
    expect(t.relayUrl).toBe(`ws://${ADDR.world}:${PORTS.worker}`);
    expect(t.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(t.roomSecret!.length).toBeGreaterThanOrEqual(16);
    for (const host of [ADDR.world, ADDR.world6]) {
      const r = await t.exec('client', 'curl', ['-sS', '--max-time', '5', t.url('/', host)]);
      expect(r.stdout.toString(), r.stderr).toBe('zks world\n');
    }
    const routes = await t.exec('client', 'ip', ['route', 'show', 'default']);
    expect(routes.stdout.toString()).toContain(`default via ${ADDR.world} dev veth-world`);
  });

  it('serves deterministic bytes over HTTP (IPv4 and IPv6) and tells who connected', async () => {
    const n = 5 * 1024 * 1024 + 7;
    const r = await t.exec('client', 'curl', ['-sS', '--max-time', '20', t.url(`/bytes/${n}`)]);
    expect(r.stderr).toBe('');
    expect(r.stdout.length).toBe(n);
    expect(sha256(r.stdout)).toBe(expectedSha256(n));
    const ip6 = await t.exec('client', 'curl', ['-sS', '--max-time', '5', t.url('/ip', ADDR.world6)]);
    expect(ip6.stdout.toString()).toBe(`${ADDR.client6}\n`);
    const bypass = await t.exec('client', 'curl', ['-sS', '--max-time', '5', t.url('/ip', ADDR.bypass)]);
    expect(bypass.stdout.toString()).toBe(`${ADDR.client}\n`);
  });

  it('refuses the tunnel-only target and the closed port from the client, but not from world', async () => {
    for (const url of [t.url('/', ADDR.tunnelOnly), t.url('/', ADDR.tunnelOnly6), `http://${ADDR.world}:${PORTS.closed}/`]) {
      const r = await t.exec('client', 'curl', ['-sS', '--max-time', '5', url]);
      expect(r.code, url).toBe(7); // curl: couldn't connect (refused, not a timeout)
    }
    const inside = await t.exec('world', 'curl', ['-sS', '--max-time', '5', t.url('/', ADDR.tunnelOnly)]);
    expect(inside.stdout.toString()).toBe('zks world\n');
  });

  it('answers DNS over UDP and TCP and counts each transport', async () => {
    await t.dns.reset();
    const udp = await t.exec('client', 'dig', ['+short', '+time=2', '+tries=1', `@${ADDR.world}`, 'target.zks.test', 'A']);
    expect(udp.stdout.toString()).toBe(`${ADDR.world}\n`);
    await t.dns.set('extra.zks.test', ['10.79.2.1', 'fd79:2::1']);
    const tcp = await t.exec('client', 'dig', ['+tcp', '+short', '+time=2', '+tries=1', `@${ADDR.world}`, 'extra.zks.test', 'AAAA']);
    expect(tcp.stdout.toString()).toBe('fd79:2::1\n');
    const nx = await t.exec('client', 'dig', ['+time=2', '+tries=1', `@${ADDR.world}`, 'nothing.zks.test']);
    expect(nx.stdout.toString()).toContain('status: NXDOMAIN');
    // The resolver of the client namespace is world's DNS server (/etc/netns/<client>/resolv.conf).
    const viaResolv = await t.exec('client', 'getent', ['ahostsv4', 'bypass.zks.test']);
    expect(viaResolv.stdout.toString()).toContain(ADDR.bypass);
    const stats = await t.dns.stats();
    expect(stats.tcp).toBe(1);
    expect(stats.udp).toBeGreaterThanOrEqual(3);
    expect(stats.queries[0]).toMatchObject({ transport: 'udp', name: 'target.zks.test', type: 1, from: ADDR.client });
    expect(stats.queries[1]).toMatchObject({ transport: 'tcp', name: 'extra.zks.test', type: 28 });
  });

  it('keeps the host /etc/resolv.conf untouched when the client namespace rewrites its own', async () => {
    const before = readFileSync('/etc/resolv.conf', 'utf8');
    const w = await t.exec('client', 'sh', ['-c', 'echo "nameserver 10.79.0.99" > /etc/resolv.conf && cat /etc/resolv.conf']);
    expect(w.stdout.toString()).toBe('nameserver 10.79.0.99\n');
    expect(readFileSync('/etc/resolv.conf', 'utf8')).toBe(before);
    expect(readFileSync(`/etc/netns/${t.ns.client}/resolv.conf`, 'utf8')).toBe('nameserver 10.79.0.99\n');
    await t.exec('client', 'sh', ['-c', `echo "nameserver ${ADDR.world}" > /etc/resolv.conf`]);
  });

  it('runs a command over ssh and pipes data through it', async () => {
    const echo = await t.ssh('echo hello-from-world');
    expect(echo.stderr).toBe('');
    expect(echo.stdout.toString()).toBe('hello-from-world\n');
    const data = Buffer.alloc(1 << 20, 7);
    const up = await t.ssh('sha256sum', data);
    expect(up.stdout.toString().split(' ')[0]).toBe(sha256(data));
  });

  it('runs a 1 s iperf3 test against world', async () => {
    const r = await t.exec('client', 'iperf3', ['-c', ADDR.world, '-p', String(PORTS.iperf), '-t', '1', '-J'], { timeoutMs: 15_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.toString()) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
    expect(report.end.sum_received.bytes).toBeGreaterThan(1_000_000);
  });

  it('captures the client uplink: exactly the HTTP exchange, no other traffic', async () => {
    const cap = await t.capture('client', 'veth-world');
    const r = await t.exec('client', 'curl', ['-sS', '--max-time', '5', t.url('/')]);
    expect(r.stdout.toString()).toBe('zks world\n');
    const { packets } = await cap.stop();
    const http = packets.filter((p) => p.proto === 'tcp' && p.dst === ADDR.world && p.dstPort === 80);
    expect(http.length).toBeGreaterThanOrEqual(3); // SYN, ACK, request, …
    expect(packets.some((p) => p.src === ADDR.world && p.srcPort === 80 && p.dst === ADDR.client)).toBe(true);
    expect(otherThan(withoutNeighbour(packets), [{ host: ADDR.world, port: 80 }])).toEqual([]);
  });

  it('destroy() leaves no namespace, /etc/netns entry or process behind', async () => {
    const pids = await t.pids();
    expect(pids.length).toBeGreaterThanOrEqual(5); // world-services, sshd, iperf3, worker (+ workerd), exit peer
    await expectGone(t, pids);
  });
});

describeNs('impairment line between app and client (no zksd)', () => {
  let t: Topology;
  beforeAll(async () => {
    t = await createTopology({
      worker: false, ssh: false, iperf: false, dns: false,
      impair: { loss: 0.01, reorder: 0.01, seed: 7, routeBackFromWorld: true },
    });
  });

  it('carries 20 MB from world to app intact while dropping and reordering packets both ways', async () => {
    const n = 20 * 1024 * 1024;
    const r = await t.exec('app', 'curl', ['-sS', '--max-time', '40', t.url(`/bytes/${n}`)], { timeoutMs: 45_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.length).toBe(n);
    expect(sha256(r.stdout)).toBe(expectedSha256(n));
    const ip = await t.exec('app', 'curl', ['-sS', '--max-time', '5', t.url('/ip')]);
    expect(ip.stdout.toString()).toBe(`${ADDR.app}\n`); // routed, not NATed
    const c = await t.impairCounters();
    console.log(`impairment line after 20 MB: ${JSON.stringify(c)} in ${r.ms} ms`);
    expect(c.seen).toBeGreaterThan(n / 1500); // every data segment crossed the line (plus the ACKs)
    expect(c.dropped).toBeGreaterThan(0);
    expect(c.reordered).toBeGreaterThan(0);
  });

  it('sends the app traffic through imp0 in both directions', async () => {
    const cap = await t.capture('client', 'imp0');
    const r = await t.exec('app', 'curl', ['-sS', '--max-time', '10', '--retry', '3', t.url('/', ADDR.world6)]);
    expect(r.stdout.toString()).toBe('zks world\n');
    const { packets } = await cap.stop();
    expect(packets.some((p) => p.src === ADDR.app6 && p.dst === ADDR.world6)).toBe(true);
    expect(packets.some((p) => p.src === ADDR.world6 && p.dst === ADDR.app6)).toBe(true);
  });

  it('destroy() removes the app namespace and the line too', async () => {
    await expectGone(t, await t.pids());
  });
});

describeNs('impairment line with a delay', () => {
  it('adds the delay in each direction (SYN and SYN-ACK both cross the line)', async () => {
    const t = await createTopology({ worker: false, ssh: false, iperf: false, dns: false, impair: { loss: 0, reorder: 0, delayMs: 25, routeBackFromWorld: true } });
    try {
      const r = await t.exec('app', 'curl', ['-sS', '-o', '/dev/null', '-w', '%{time_connect}', '--max-time', '5', t.url('/')]);
      expect(r.stderr).toBe('');
      expect(Number(r.stdout.toString())).toBeGreaterThanOrEqual(0.05);
      const c = await t.impairCounters();
      expect(c.delayed).toBeGreaterThanOrEqual(4);
      expect(c.dropped).toBe(0);
    } finally {
      await t.destroy();
    }
  });
});
