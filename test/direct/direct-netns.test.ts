// The direct path with real parts: `zks exit-peer` and `zks p2p-client` in two network namespaces, the Worker
// (workerd) and a TURN server (coturn) in a router namespace between them, curl through the client's SOCKS5 port
// to an HTTP origin beside the exit. The router's nftables counters show which way the bytes went.
//   - reachable: after set-up a 120 MB download crosses the direct TCP path and the room carries (almost) nothing;
//   - TCP between the sides blocked: the WebRTC path carries a download, and UDP rides its unreliable channel;
//   - the direct path cut during a download (dropped, silently): heartbeats stop, the client and the exit fall
//     back to the room and the download completes intact;
//   - direct blocked, TURN reachable: the DataChannels run through coturn;
//   - everything but the room blocked, or a TURN server that refuses our credentials: the room carries the session.
import { afterEach, describe, expect, it } from 'vitest';
import { pseudoSha256 } from '../fixtures/pseudo-bytes';
import { ADDR, createDirectTopology, ORIGIN_PORT, TURN, UDP_ECHO_PORT, type DirectTopology } from './direct-topology';

let topo: DirectTopology | null = null;
afterEach(async () => {
  await topo?.destroy();
  topo = null;
});

const MB = 1024 * 1024;
const turnArgs = (pass: string = TURN.pass) => ['--turn', `turn:${ADDR.relayClientSide}:${TURN.port}`, '--turn-user', TURN.user, '--turn-pass', pass];

/** curl through the client's SOCKS5 port: `n` pseudo bytes from the origin; resolves with their sha256. */
async function download(t: DirectTopology, n: number, extra = ''): Promise<string> {
  const r = await t.exec('client', 'bash', ['-c',
    `set -o pipefail; curl -sS --fail ${extra} --socks5-hostname 127.0.0.1:1080 http://127.0.0.1:${ORIGIN_PORT}/bytes/${n} | sha256sum`]);
  if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString().split(' ')[0]!;
}

/** `n` UDP round trips of 1 000 bytes through the client's SOCKS5 UDP ASSOCIATE, one at a time; how many came back. */
async function udpRoundTrips(t: DirectTopology, n: number): Promise<number> {
  const r = await t.exec('client', '/usr/bin/python3', ['-c', [
    'import socket, socks',
    's = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)',
    "s.set_proxy(socks.SOCKS5, '127.0.0.1', 1080)",
    's.settimeout(10)',
    'ok = 0',
    `for i in range(${n}):`,
    '    msg = bytes([i % 256]) * 1000',
    `    s.sendto(msg, ('127.0.0.1', ${UDP_ECHO_PORT}))`,
    '    try:',
    '        ok += s.recvfrom(2048)[0] == msg',
    '    except socket.timeout:',
    '        pass',
    'print(ok)',
  ].join('\n')], 300_000);
  expect(r.code, r.stderr.toString()).toBe(0);
  return Number(r.stdout.toString().trim());
}

describe('direct path between namespaces (zks p2p-client ↔ zks exit-peer, Worker and coturn in the middle)', () => {
  it('reachable: after set-up a 120 MB download goes over the direct TCP path, not the room; UDP too', async () => {
    topo = await createDirectTopology();
    const { client, exit } = await topo.startPeers([], []);
    expect(await download(topo, 1000)).toBe(pseudoSha256(1000)); // opens the session; the direct path follows
    await client.waitStderr(/direct TCP path up \(10\.80\.1\.2:\d+ ↔ 10\.80\.2\.2:\d+\)/, 20_000);
    await exit.waitStderr(/direct TCP path up \(10\.80\.2\.2:\d+ ↔ 10\.80\.1\.2:\d+\)/, 20_000);
    const before = await topo.counters();
    expect(await download(topo, 120 * MB)).toBe(pseudoSha256(120 * MB));
    const after = await topo.counters();
    expect(after.tcp - before.tcp).toBeGreaterThan(120 * MB);
    expect(after.room - before.room).toBeLessThan(MB); // WebSocket keepalives at most: no records
    expect(after.direct - before.direct).toBe(0); // no WebRTC while TCP is up
    const status = await topo.clientStatus();
    expect(status.connections[0]).toMatchObject({ path: 'direct', pathRoute: expect.stringMatching(/^tcp 10\.80\.1\.2:\d+ ↔ 10\.80\.2\.2:\d+$/) });
    expect(status.connections[0]!.pathRttMs).toBeGreaterThanOrEqual(0);
    // A connection held open through the SOCKS5 port: `zks flows` names the path its link takes now.
    const held = topo.spawn('client', 'held connection', ['/usr/bin/python3', '-u', '-c', [
      'import socket, socks, sys',
      's = socks.socksocket()', "s.set_proxy(socks.SOCKS5, '127.0.0.1', 1080)", `s.connect(('127.0.0.1', ${ORIGIN_PORT}))`,
      "print('open')", 'sys.stdin.read()',
    ].join('\n')]);
    await held.waitLine(/open/, 30_000);
    const flows = await topo.clientFlows();
    expect(flows.filter((f) => f.state !== 'closed')).toContainEqual(expect.objectContaining({ protocol: 'tcp', path: 'exit', via: 'direct' }));
    await held.stop();
    // UDP has a relay connection of its own (the pool's datagram connection): its TCP path comes up after the first.
    expect(await udpRoundTrips(topo, 1)).toBe(1);
    await client.waitStderr(/direct TCP path up[\s\S]*direct TCP path up/, 20_000);
    const udpBefore = await topo.counters();
    expect(await udpRoundTrips(topo, 50)).toBe(50); // in sequenced records on TCP: reliable
    const udpAfter = await topo.counters();
    expect(udpAfter.tcp - udpBefore.tcp).toBeGreaterThan(100_000);
    expect(udpAfter.room - udpBefore.room).toBeLessThan(50_000);
  });

  it('TCP between the sides blocked: a 120 MB download goes over the DataChannels, not the room', async () => {
    topo = await createDirectTopology();
    await topo.block('tcp');
    const { client, exit } = await topo.startPeers([], []);
    expect(await download(topo, 1000)).toBe(pseudoSha256(1000));
    await client.waitStderr(/direct TCP path not established: no TCP connection within \d+ ms; traffic stays on the room/, 20_000);
    await client.waitStderr(/direct path up \(direct, 10\.80\.1\.2:\d+ ↔ 10\.80\.2\.2:\d+\)/, 20_000);
    await exit.waitStderr(/direct path up \(direct/, 20_000);
    const before = await topo.counters();
    expect(await download(topo, 120 * MB)).toBe(pseudoSha256(120 * MB));
    const after = await topo.counters();
    expect(after.direct - before.direct).toBeGreaterThan(120 * MB);
    expect(after.room - before.room).toBeLessThan(MB);
    const status = await topo.clientStatus();
    expect(status.connections[0]).toMatchObject({ path: 'direct', pathRoute: expect.stringMatching(/^10\.80\.1\.2:\d+ ↔ 10\.80\.2\.2:\d+$/) });
  });

  it('UDP through SOCKS5 UDP ASSOCIATE rides the WebRTC unreliable channel: answers come back, the room carries none of it', async () => {
    topo = await createDirectTopology();
    await topo.block('tcp');
    const { client } = await topo.startPeers([], []);
    expect(await download(topo, 1000)).toBe(pseudoSha256(1000));
    await client.waitStderr(/direct path up \(direct/, 20_000);
    expect(await udpRoundTrips(topo, 1)).toBe(1);
    await client.waitStderr(/direct path up[\s\S]*direct path up \(direct/, 30_000);
    const before = await topo.counters();
    // 200 round trips of 1 000 bytes, one at a time (nothing queues, so nothing is lost on a veth); the timeout
    // only bounds a failure.
    expect(await udpRoundTrips(topo, 200)).toBeGreaterThanOrEqual(195);
    const after = await topo.counters();
    expect(after.direct - before.direct).toBeGreaterThan(400_000);
    expect(after.room - before.room).toBeLessThan(50_000); // the room saw at most WebSocket keepalives
  });

  it('the direct path cut mid-download: both ends fall back to the room, the download completes intact', async () => {
    topo = await createDirectTopology();
    const { client, exit } = await topo.startPeers([], []);
    expect(await download(topo, 1000)).toBe(pseudoSha256(1000));
    await client.waitStderr(/direct TCP path up/, 20_000);
    const t = topo;
    const start = await t.counters();
    const big = download(t, 150 * MB, '--limit-rate 40M');
    // Once the download is under way on the direct path, the router starts dropping it: no close, just silence.
    for (let i = 0; i < 2_000 && (await t.counters()).tcp - start.tcp < 30 * MB; i++);
    const cut = await t.counters();
    expect(cut.tcp - start.tcp).toBeGreaterThan(30 * MB);
    await t.block('direct');
    expect(await big).toBe(pseudoSha256(150 * MB));
    const end = await t.counters();
    expect(end.room - cut.room).toBeGreaterThan(50 * MB); // the rest came through the room
    // Whichever end noticed first (silence, mostly) tells the other over the room.
    const lost = /direct TCP path lost: .+; traffic back on the room/;
    await client.waitStderr(lost, 20_000);
    await exit.waitStderr(lost, 20_000);
  });

  it('direct blocked, TURN reachable: the DataChannels run through coturn', async () => {
    topo = await createDirectTopology({ turn: true });
    await topo.block('direct');
    const { client } = await topo.startPeers(turnArgs(), turnArgs());
    expect(await download(topo, 1000)).toBe(pseudoSha256(1000));
    // Up as a TURN path, or up and then found to be one (the peer's relayed candidate signalled after its check came).
    await client.waitStderr(/direct path (up \(turn|is relayed by TURN)/, 30_000);
    const before = await topo.counters();
    expect(await download(topo, 60 * MB)).toBe(pseudoSha256(60 * MB));
    const after = await topo.counters();
    expect(after.turn - before.turn).toBeGreaterThan(60 * MB);
    expect(after.room - before.room).toBeLessThan(MB);
    expect((await topo.clientStatus()).connections[0]).toMatchObject({ path: 'turn' });
  });

  it.each([
    ['UDP blocked altogether', 'all', turnArgs()],
    ['a TURN server that refuses our credentials, direct blocked', 'direct', turnArgs('not-the-password')],
  ] as const)('%s: the attempt fails, the room carries the session', async (_name, block, args) => {
    topo = await createDirectTopology({ turn: true });
    await topo.block(block);
    const { client } = await topo.startPeers([...args, '--turn-only'], [...args, '--turn-only']);
    expect(await download(topo, 1000)).toBe(pseudoSha256(1000));
    await client.waitStderr(/direct path not established: .*traffic stays on the room/, 30_000);
    const before = await topo.counters();
    expect(await download(topo, 20 * MB)).toBe(pseudoSha256(20 * MB));
    expect((await topo.counters()).room - before.room).toBeGreaterThan(20 * MB);
    expect((await topo.clientStatus()).connections[0]).toMatchObject({ path: 'room', pathError: expect.stringMatching(/./) });
  });
});
