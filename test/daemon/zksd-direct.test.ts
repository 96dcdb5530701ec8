// `zksd up --room … --direct`: the full-system VPN with the direct path to its exit peer (PROTOCOL.md §3.6). zksd in
// the client namespace behind its TUN, the Worker and `zks exit-peer` in world. The direct paths come up though every
// route points into the TUN and the kill switch is on: zksd routes each peer address outside the tunnel and lets
// only its own marked TCP socket, and root's UDP from its port range, through to it. A download from a tunnel-only
// address (reachable through the exit peer alone) then runs over the direct TCP path, intact — and over WebRTC
// with --no-direct-tcp; an unprivileged process using the same ports is refused.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, createTopology, destroyAllTopologies, expectedSha256, type Topology } from './topology';
import { startZksd, zksIn, type ZksdProcess } from './zksd-helpers';
import { startIn } from './topology-proc';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0 && existsSync('/usr/sbin/nft') && existsSync('/usr/bin/python3');
const d = describe.skipIf(!runnable && !process.env.CI);

afterAll(destroyAllTopologies);

interface Link { path: string; pathRoute: string | null; pathRttMs: number }

async function links(topo: Topology, zksd: ZksdProcess): Promise<Link[]> {
  const st = await zksIn(topo, zksd, ['status', '--json']);
  return (JSON.parse(st.stdout.toString()) as { connections: Link[] }).connections;
}

d('zksd relay mode with --direct', () => {
  let topo: Topology;
  let zksd: ZksdProcess;

  beforeAll(async () => {
    topo = await createTopology({ exitPeer: true, iperf: false, ssh: false, dns: true });
    zksd = await startZksd(topo, ['--room', topo.roomSecret!, '--direct']);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await topo?.destroy();
  });

  it('the TCP path comes up through the kill switch; a 64 MB download from a tunnel-only address crosses it intact', async () => {
    await zksd.proc.waitStderr(/direct TCP path up \(\S+ ↔ \S+\)/, 30_000);
    const n = 64 * 1024 * 1024;
    const r = await topo.exec('client', 'bash', ['-c', `set -o pipefail; curl -sS --fail http://${ADDR.tunnelOnly}/bytes/${n} | sha256sum`], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString().split(' ')[0]).toBe(expectedSha256(n));
    const [link] = await links(topo, zksd);
    // IPv4 or IPv6, whichever of the exit's addresses answered first.
    expect(link).toMatchObject({ path: 'direct', pathRoute: expect.stringMatching(/^tcp (10\.79\.0\.2|\[fd79::2\]):\d+ ↔ (10\.79\.0\.1|\[fd79::1\]):\d+$/) });
    expect(link!.pathRttMs).toBeGreaterThanOrEqual(0);
    // A connection held open through the TUN: `zks flows` names the path its link takes now.
    const held = startIn(topo.ns.client, 'held connection', ['/usr/bin/python3', '-u', '-c',
      `import socket, sys\ns = socket.create_connection(('${ADDR.tunnelOnly}', 80))\nprint('open')\nsys.stdin.read()`]);
    try {
      await held.waitLine(/open/, 30_000);
      const flows = JSON.parse((await zksIn(topo, zksd, ['flows', '--json'])).stdout.toString()) as Array<{ protocol: string; path: string; via: string | null }>;
      expect(flows).toContainEqual(expect.objectContaining({ protocol: 'tcp', path: 'exit', via: 'direct' }));
    } finally {
      await held.stop();
    }
  });

  it('the kill switch lets only root, from the direct path\'s ports, reach the peer outside the tunnel', async () => {
    const [link] = await links(topo, zksd);
    const m = /↔ \[?([^\]]+?)\]?:(\d+)$/.exec(link!.pathRoute!)!;
    const [peer, peerPort] = [m[1]!, Number(m[2])];
    const probe = (fromPort: number) => [
      'import socket',
      `s = socket.socket(socket.AF_INET6 if ':' in '${peer}' else socket.AF_INET, socket.SOCK_DGRAM)`,
      `s.bind(('', ${fromPort}))`,
      'try:',
      `    s.sendto(b'x', ('${peer}', ${peerPort})); print('sent')`,
      'except OSError as e:',
      "    print('refused', e.errno)",
    ].join('\n');
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/python3', '-c'];
    const run = async (argv: string[]) => (await topo.exec('client', argv[0]!, argv.slice(1), { timeoutMs: 30_000 })).stdout.toString().trim();
    expect(await run([...asNobody, probe(40799)])).toBe('refused 1'); // EPERM: the output chain's reject
    expect(await run(['/usr/bin/python3', '-c', probe(40800)])).toBe('refused 1'); // root, but not from the range
    expect(await run(['/usr/bin/python3', '-c', probe(40799)])).toBe('sent'); // what zksd's own sockets do
  });

  it('with --no-direct-tcp the WebRTC path comes up from its port range and carries a download intact', async () => {
    await zksd.stop();
    zksd = await startZksd(topo, ['--room', topo.roomSecret!, '--direct', '--no-direct-tcp']);
    await zksd.proc.waitStderr(/direct path up \(direct, \S+:407[6-9]\d ↔ /, 30_000);
    const n = 16 * 1024 * 1024;
    const r = await topo.exec('client', 'bash', ['-c', `set -o pipefail; curl -sS --fail http://${ADDR.tunnelOnly}/bytes/${n} | sha256sum`], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString().split(' ')[0]).toBe(expectedSha256(n));
    const [link] = await links(topo, zksd);
    // IPv4 or IPv6, whichever pair ICE chose between the client and world.
    expect(link).toMatchObject({ path: 'direct', pathRoute: expect.stringMatching(/^(10\.79\.0\.2|\[fd79::2\]):407[6-9]\d ↔ (10\.79\.0\.1|\[fd79::1\]):\d+$/) });
  });
});
