// zksd and UDP/ICMP end to end in the namespace topology (topology.ts), with clients and servers nobody here wrote:
// dnsmasq in world on the tunnel-only address 10.79.1.1 (world refuses it from the client veth, so only the tunnel
// reaches it), `dig +notcp`, iputils `ping`, ngtcp2's `gtlsclient`, and a python3 UDP socket in the client namespace.
// Direct mode: DNS to the resolver address still works (as DNS-over-TCP to dnsmasq); every other UDP datagram is
// refused at once with ICMP port unreachable (a connected socket sees ECONNREFUSED, dig gives up without waiting
// for its timeout). Relay mode: UDP and ping go through the exit peer for real.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDR, IFACES, PORTS, createTopology, destroyAllTopologies, expectedSha256, otherThan, pseudoBytes, withoutNeighbour, type Topology,
} from './topology';
import { startIn, type NsProcess } from './topology-proc';
import { startZksd, zksIn, type ZksdProcess } from './zksd-helpers';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0 && existsSync('/usr/sbin/nft') &&
  existsSync('/usr/sbin/dnsmasq') && existsSync('/usr/bin/dig') && existsSync('/usr/bin/python3');
const d = describe.skipIf(!runnable && !process.env.CI);
const T = ADDR.tunnelOnly;
const RESOLVER = '100.77.0.53';
/** What dnsmasq answers for example.test (and nothing anywhere else does). */
const ANSWER = '10.79.1.77';
/** On no network anywhere: nothing can answer it. */
const NOWHERE = '10.79.3.3';

afterAll(destroyAllTopologies);

/**
 * dnsmasq on T:53 and [fd79:1::1]:53 (UDP and TCP), authoritative for example.test only. --keep-in-foreground, not --no-daemon: in debug
 * mode dnsmasq serves a TCP connection in its only process, so zksd's kept-open DNS-over-TCP stream would stall UDP.
 */
async function startDnsmasq(topo: Topology): Promise<NsProcess> {
  const p = startIn(topo.ns.world, 'dnsmasq', ['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv',
    '--no-hosts', `--address=/example.test/${ANSWER}`, `--listen-address=${T},${ADDR.tunnelOnly6}`, '--bind-interfaces', '--port=53',
    '--log-facility=-', '--user=root']);
  await p.waitStderr(/started, version/, 15_000);
  return p;
}

/** A connected UDP socket in the client namespace: send one datagram, report what the first recv() says. */
const UDP_PROBE = `
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(30); s.connect((sys.argv[1], int(sys.argv[2]))); s.send(b'probe')
try:
    print('answered', s.recv(2048))
except ConnectionRefusedError:
    print('ECONNREFUSED')
except socket.timeout:
    print('timeout')
`;

async function udpProbe(topo: Topology, host: string, port: number): Promise<string> {
  const r = await topo.exec('client', '/usr/bin/python3', ['-c', UDP_PROBE, host, String(port)], { timeoutMs: 40_000 });
  return r.stdout.toString().trim() || r.stderr;
}

async function dig(topo: Topology, server: string, extra: string[] = []): Promise<{ code: number; out: string }> {
  const r = await topo.exec('client', 'dig', [`@${server}`, 'example.test', 'A', '+notcp', '+short', '+tries=1', '+time=20', ...extra], { timeoutMs: 40_000 });
  return { code: r.code, out: r.stdout.toString().trim() + r.stderr };
}

async function ping(topo: Topology, host: string, count: number): Promise<string> {
  const r = await topo.exec('client', 'ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '3', host], { timeoutMs: 60_000 });
  return r.stdout.toString();
}

async function status(topo: Topology, zksd: ZksdProcess): Promise<{ udp: Record<string, number>; netstack: Record<string, number> }> {
  const st = await zksIn(topo, zksd, ['status', '--json']);
  return JSON.parse(st.stdout.toString()) as { udp: Record<string, number>; netstack: Record<string, number> };
}

d('zksd UDP and ICMP, direct mode (the Worker carries no UDP)', () => {
  let topo: Topology;
  let zksd: ZksdProcess;
  let dnsmasq: NsProcess;

  beforeAll(async () => {
    topo = await createTopology({ iperf: false, ssh: false });
    dnsmasq = await startDnsmasq(topo);
    zksd = await startZksd(topo, ['--dns-upstream', `${T}:53`]);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await dnsmasq?.stop();
    await topo?.destroy();
  });

  it('dig +notcp to the resolver address is answered by dnsmasq (DNS-over-TCP through the Worker)', async () => {
    const r = await dig(topo, RESOLVER);
    expect(r.out).toBe(ANSWER);
    expect(r.code).toBe(0);
  });

  it('a UDP datagram to world:443 gets ECONNREFUSED at once (ICMP port unreachable), v4 and v6', async () => {
    expect(await udpProbe(topo, T, 443)).toBe('ECONNREFUSED');
    expect(await udpProbe(topo, ADDR.tunnelOnly6, 443)).toBe('ECONNREFUSED');
    const s = await status(topo, zksd);
    expect(s.udp.udpRefused).toBeGreaterThanOrEqual(2);
    expect(s.netstack.unreachableSent).toBeGreaterThanOrEqual(2);
    const text = (await zksIn(topo, zksd, ['status'])).stdout.toString();
    expect(text).toMatch(/udp\/icmp\s+0 UDP flows · \d+ refused \(ICMP port unreachable: the Worker carries no UDP\)/);
  });

  it('dig +notcp straight to dnsmasq is refused, not left to time out', async () => {
    const r = await dig(topo, T);
    expect(r.out).toMatch(/connection refused/i);
    expect(r.out).not.toMatch(/timed out/i);
  });

  it.skipIf(!existsSync('/usr/bin/gtlsclient'))('every QUIC Initial of gtlsclient is answered with ICMP port unreachable', async () => {
    // ngtcp2's example client sends from an unconnected socket and ignores ICMP errors (it idles out even against a
    // closed port on its own loopback), so its exit time proves nothing; browsers use connected sockets and fall
    // back to TCP on ECONNREFUSED (the probe above). What it does show: each of its datagrams was refused.
    const before = (await status(topo, zksd)).udp.udpRefused;
    const r = await topo.exec('client', 'gtlsclient', ['--handshake-timeout=2s', '--timeout=2s', T, '443', `https://${T}/`], { timeoutMs: 30_000 });
    const sent = (r.stdout.toString() + r.stderr).match(/Sent packet: .*remote=\[10\.79\.1\.1\]:443/g) ?? [];
    expect(sent.length).toBeGreaterThan(0);
    expect((await status(topo, zksd)).udp.udpRefused - before).toBe(sent.length);
  });

  it('ping: replies come from completed TCP connects through the Worker (to 443), 100 % loss for a host nobody answers for', async () => {
    // Something on T:443 in world (the Worker reaches T; the client could not without the tunnel).
    const https = startIn(topo.ns.world, 'tcp 443', ['/usr/bin/python3', '-u', '-c',
      `import socket; s = socket.create_server(('${T}', 443)); print('listening', flush=True)\nwhile True: s.accept()[0].close()`]);
    try {
      await https.waitLine(/listening/, 15_000);
      expect(await ping(topo, T, 3)).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    } finally {
      await https.stop();
    }
    // Through the Worker an unreachable address looks refused, and a refusal is no answer: silence, as without a tunnel.
    expect(await ping(topo, NOWHERE, 2)).toMatch(/2 packets transmitted, 0 received, 100% packet loss/);
    const flows = JSON.parse((await zksIn(topo, zksd, ['flows', '--closed', '--json'])).stdout.toString()) as Array<{ protocol: string; target: string; state: string }>;
    expect(flows.find((f) => f.protocol === 'icmp' && f.target === `${T} (tcp:443)`)?.state).toMatch(/^3\/3 /);
    const s = await status(topo, zksd);
    expect(s.udp).toMatchObject({ echoAnswered: 3 });
    expect(s.udp.echoUnanswered).toBeGreaterThanOrEqual(2);
  });
});

d('zksd UDP and ICMP, relay mode (room → exit peer)', () => {
  let topo: Topology;
  let zksd: ZksdProcess;
  let dnsmasq: NsProcess;

  beforeAll(async () => {
    topo = await createTopology({ exitPeer: true, iperf: false, ssh: false });
    dnsmasq = await startDnsmasq(topo);
    zksd = await startZksd(topo, ['--room', topo.roomSecret!, '--dns-upstream', `${T}:53`]);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await dnsmasq?.stop();
    await topo?.destroy();
  });

  it('dig +notcp straight to dnsmasq is answered over a UDP flow through the exit; the resolver path still works', async () => {
    expect(await dig(topo, T)).toEqual({ code: 0, out: ANSWER });
    expect(await dig(topo, ADDR.tunnelOnly6)).toEqual({ code: 0, out: ANSWER }); // an IPv6 flow
    expect(await dig(topo, RESOLVER)).toEqual({ code: 0, out: ANSWER });
    const flows = JSON.parse((await zksIn(topo, zksd, ['flows', '--closed', '--json'])).stdout.toString()) as Array<{ protocol: string; destination: string; path: string; bytesDown: number }>;
    const udp = flows.find((f) => f.protocol === 'udp' && f.destination === `${T}:53`);
    expect(udp?.path).toBe('exit');
    expect(udp?.bytesDown).toBeGreaterThan(0);
  });

  it('ping: real ICMP replies from a reachable world host, 100 % loss for an unreachable one', async () => {
    expect(await ping(topo, T, 3)).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    expect(await ping(topo, NOWHERE, 2)).toMatch(/2 packets transmitted, 0 received, 100% packet loss/);
    const s = await status(topo, zksd);
    expect(s.udp).toMatchObject({ echoAnswered: 3, echoNotIcmp: 0 });
  });

  it('endpoint-independent: a reply from another port of the remote reaches the same socket, with its real source', async () => {
    const server = startIn(topo.ns.world, 'udp 7000→7001', ['/usr/bin/python3', '-u', '-c', [
      'import socket',
      `a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(('${T}', 7000))`,
      `b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(('${T}', 7001))`,
      "print('ready', flush=True)",
      'while True:',
      '    data, peer = a.recvfrom(2048); b.sendto(b"from-7001:" + data, peer)',
    ].join('\n')]);
    try {
      await server.waitLine(/ready/, 15_000);
      const r = await topo.exec('client', '/usr/bin/python3', ['-c', [
        'import socket',
        's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(30)',
        `s.sendto(b"hello", ('${T}', 7000))`,
        'data, src = s.recvfrom(2048); print(src[0], src[1], data.decode())',
      ].join('\n')], { timeoutMs: 40_000 });
      expect(r.stdout.toString().trim(), r.stderr).toBe(`${T} 7001 from-7001:hello`);
    } finally {
      await server.stop();
    }
  });

  it.skipIf(!existsSync('/usr/sbin/gtlsserver') || !existsSync('/usr/bin/gtlsclient'))('QUIC end to end: gtlsclient fetches 4 MB from gtlsserver in world, sha256 intact', async () => {
    const size = 4 * 1_000_000;
    const htdocs = join(topo.dir, 'htdocs');
    const got = join(topo.dir, 'quic-download');
    mkdirSync(htdocs, { recursive: true });
    mkdirSync(got, { recursive: true });
    writeFileSync(join(htdocs, 'blob'), pseudoBytes(size));
    const key = join(topo.dir, 'quic.key');
    const cert = join(topo.dir, 'quic.crt');
    const ossl = await topo.exec('world', 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=zks.test', '-days', '1']);
    expect(ossl.code, ossl.stderr).toBe(0);
    const server = startIn(topo.ns.world, 'gtlsserver', ['/usr/sbin/gtlsserver', '-q', '-d', htdocs, T, '4433', key, cert]);
    try {
      await waitUdpListening(topo, 4433, server);
      const r = await topo.exec('client', 'gtlsclient', ['-q', '--exit-on-all-streams-close', `--download=${got}`, T, '4433',
        `https://${T}:4433/blob`], { timeoutMs: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(createHash('sha256').update(readFileSync(join(got, 'blob'))).digest('hex')).toBe(expectedSha256(size));
      const flows = JSON.parse((await zksIn(topo, zksd, ['flows', '--closed', '--json'])).stdout.toString()) as Array<{ protocol: string; destination: string; bytesDown: number }>;
      expect(flows.find((f) => f.protocol === 'udp' && f.destination === `${T}:4433`)?.bytesDown).toBeGreaterThan(size);
    } finally {
      await server.stop();
    }
  }, 150_000);

  it('nothing but the relay link on the physical side: UDP and pings while the tunnel is up, and after it dies', async () => {
    const cap = await topo.capture('client', IFACES.clientToWorld);
    expect(await dig(topo, T)).toEqual({ code: 0, out: ANSWER });
    expect(await ping(topo, T, 1)).toMatch(/1 received/);
    await zksd.killWorker();
    const after = await Promise.all([
      topo.exec('client', 'dig', [`@${T}`, 'example.test', '+notcp', '+tries=1', '+time=2']),
      topo.exec('client', 'dig', [`@${ADDR.world}`, 'example.test', '+notcp', '+tries=1', '+time=2']), // on-link
      topo.exec('client', 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', ADDR.world]),
    ]);
    after.forEach((a, i) => expect(a.code, `attempt ${i}: ${a.stdout.toString()} ${a.stderr}`).not.toBe(0));
    const { packets } = await cap.stop();
    expect(otherThan(withoutNeighbour(packets), [{ host: ADDR.world, port: PORTS.worker }])).toEqual([]);
  });
});

/** Resolves once something in world listens on UDP `port` (ss, asked again after each answer that says no). */
async function waitUdpListening(topo: Topology, port: number, server: NsProcess): Promise<void> {
  for (;;) {
    if (server.exited) throw new Error(`${server.name} exited: ${server.stderr()}`);
    const r = await topo.exec('world', 'ss', ['-Hlun', `sport = :${port}`]);
    if (r.stdout.toString().trim() !== '') return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

d('zksd UDP flow cap (relay mode, --udp-max-flows 2)', () => {
  let topo: Topology;
  let zksd: ZksdProcess;
  let dnsmasq: NsProcess;

  beforeAll(async () => {
    topo = await createTopology({ exitPeer: true, iperf: false, ssh: false });
    dnsmasq = await startDnsmasq(topo);
    zksd = await startZksd(topo, ['--room', topo.roomSecret!, '--udp-max-flows', '2']);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await dnsmasq?.stop();
    await topo?.destroy();
  });

  it('a third socket is dropped and counted; the two live flows keep working', async () => {
    const r = await topo.exec('client', '/usr/bin/python3', ['-c', [
      'import socket',
      "q = b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x04test\\x00\\x00\\x01\\x00\\x01'",
      'socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]',
      'for s in socks: s.settimeout(30)',
      `for s in socks[:2]: s.sendto(q, ('${T}', 53)); print('answer', len(s.recvfrom(512)[0]) > 12)`,
      `socks[2].sendto(q, ('${T}', 53))`,
      // Queued behind the third socket's datagram on the TUN: once this is answered, that one was handled.
      `socks[0].sendto(q, ('${T}', 53)); print('again', len(socks[0].recvfrom(512)[0]) > 12)`,
    ].join('\n')], { timeoutMs: 60_000 });
    expect(r.stdout.toString().trim().split('\n'), r.stderr).toEqual(['answer True', 'answer True', 'again True']);
    const s = await status(topo, zksd);
    expect(s.udp).toMatchObject({ udpFlows: 2, udpFlowLimit: 1 });
  });
});
