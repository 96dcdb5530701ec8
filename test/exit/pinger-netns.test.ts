// The exit's pinger against a real network (test/exit/ping-topology.ts): run inside the exit namespace as root
// (ping socket or raw socket) and as `nobody` (ping socket when net.ipv4.ping_group_range allows its gid, else TCP
// connect times), it gets real echo replies with their TTL, times out on a black hole, and reports the router's
// ICMP "unreachable" as UNREACHABLE — a different failure from the timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { EchoFailure } from '../../src/protocol/datagram-types';
import { FORBIDDEN_MESSAGE } from '../../src/exit/connect';
import { bundleForNobody, type NobodyBundle } from '../fixtures/as-nobody';
import { createPingTopology, PING_ADDR as A, type PingTopology } from './ping-topology';

const PROBE = fileURLToPath(new URL('./fixtures/ping-probe.ts', import.meta.url));
const ALL_GIDS = [0, 2147483647] as const;
const NO_GID = [1, 0] as const; // the kernel's default: nobody may open a ping socket

interface ProbeRequest { host: string; seq: number; timeoutMs: number; tcpOnly?: boolean; tcpPort?: number; payloadHex?: string }
type ProbeResult =
  | { ok: true; method: 'icmp' | 'tcp'; tcpPort: number; address: string; ttl: number; rttMs: number; payload: string }
  | { ok: false; code: number; message: string };
interface ProbeOutput {
  results: ProbeResult[];
  hops: Array<Record<string, unknown>>;
  counters: { icmpEchoes: number; tcpEchoes: number; icmpFallbacks: number; forbidden: number; icmpSockets: number };
  logs: string[];
  methods: Record<'4' | '6', string>;
}

let topo: PingTopology;
let nobody: NobodyBundle;

beforeAll(async () => {
  topo = await createPingTopology();
  nobody = await bundleForNobody('test/exit/fixtures/ping-probe.ts');
});

afterAll(async () => {
  await topo?.destroy();
  nobody?.cleanup();
});

function parse(r: { code: number; stdout: string | Buffer; stderr: string }): ProbeOutput {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.toString()) as ProbeOutput;
}
const asRoot = async (input: object) => parse(await topo.exec(process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(input)]));
const asNobody = async (input: object) => parse(await nobody.run([JSON.stringify(input)], { netns: topo.exit, timeoutMs: 30_000 }));

const echo = (host: string, seq: number, extra: Partial<ProbeRequest> = {}): ProbeRequest => ({ host, seq, timeoutMs: 5_000, ...extra });
/** The same set of targets for every privilege level: what must come back differs only in `method`. */
const TARGETS: ProbeRequest[] = [
  echo(A.up, 1, { payloadHex: 'deadbeef' }),
  echo(A.up6, 2, { payloadHex: '0102' }),
  echo(A.blackhole, 3, { timeoutMs: 500 }),
  echo(A.blackhole6, 4, { timeoutMs: 500 }),
  echo(A.unreachable, 5),
  echo(A.unreachable6, 6),
  echo('127.0.0.1', 7),
];

function expectIcmpAnswers(out: ProbeOutput): void {
  const [up, up6, hole, hole6, unr, unr6, lan] = out.results;
  expect(up).toMatchObject({ ok: true, method: 'icmp', address: A.up, ttl: 64, payload: 'deadbeef' });
  expect(up6).toMatchObject({ ok: true, method: 'icmp', address: A.up6, ttl: 64, payload: '0102' });
  expect(hole).toEqual({ ok: false, code: EchoFailure.TIMEOUT, message: expect.stringMatching(/no answer from 203\.0\.113\.200/) });
  expect(hole6).toMatchObject({ ok: false, code: EchoFailure.TIMEOUT });
  // The world namespace's unreachable route: its ICMP error, naming the router.
  expect(unr).toEqual({ ok: false, code: EchoFailure.UNREACHABLE, message: `From ${A.world}: Destination Host Unreachable` });
  expect(unr6).toEqual({ ok: false, code: EchoFailure.UNREACHABLE, message: 'From 2001:db8:1::1: Destination unreachable: No route' });
  expect(lan).toEqual({ ok: false, code: EchoFailure.FORBIDDEN, message: FORBIDDEN_MESSAGE });
  expect(out.counters).toMatchObject({ icmpEchoes: 6, tcpEchoes: 0, icmpFallbacks: 0, forbidden: 1 });
  expect(out.logs).toEqual([]);
}

describe('pinger in a network namespace', () => {
  it('root, gid inside ping_group_range: a ping socket answers, times out and reports unreachable', async () => {
    await topo.pingGroupRange(...ALL_GIDS);
    const out = await asRoot({ icmpKinds: ['dgram'], requests: TARGETS });
    expectIcmpAnswers(out);
    expect(out.methods).toEqual({ 4: 'dgram', 6: 'dgram' });
  });

  it('root, gid outside the range: a raw socket (CAP_NET_RAW) gives the same answers', async () => {
    await topo.pingGroupRange(...NO_GID);
    const out = await asRoot({ requests: TARGETS });
    expectIcmpAnswers(out);
    expect(out.methods).toEqual({ 4: 'raw', 6: 'raw' });
  });

  it('nobody, gid inside the range: a ping socket', async () => {
    await topo.pingGroupRange(...ALL_GIDS);
    const out = await asNobody({ requests: TARGETS });
    expectIcmpAnswers(out);
    expect(out.methods).toEqual({ 4: 'dgram', 6: 'dgram' });
  });

  it('nobody, gid outside the range: TCP connect times (a refusal means up), the refusal counted, the reason logged once', async () => {
    await topo.pingGroupRange(...NO_GID);
    const out = await asNobody({
      requests: [echo(A.up, 1), echo(A.up, 2), echo(A.up, 3, { payloadHex: 'ff' }), echo(A.blackhole, 4, { timeoutMs: 500 }), echo(A.unreachable, 5)],
    });
    const [a, b, c, hole, unr] = out.results;
    for (const r of [a, b, c]) expect(r).toMatchObject({ ok: true, method: 'tcp', tcpPort: 443, address: A.up, ttl: 0, payload: '' });
    expect(hole).toMatchObject({ ok: false, code: EchoFailure.TIMEOUT, message: expect.stringMatching(/port 443/) });
    expect(unr).toEqual({ ok: false, code: EchoFailure.UNREACHABLE, message: `${A.unreachable} port 443: no route to host` });
    expect(out.counters).toMatchObject({ icmpEchoes: 0, tcpEchoes: 5, icmpFallbacks: 5 });
    expect(out.logs).toHaveLength(1);
    expect(out.logs[0]).toMatch(/IPv4 .* ICMP sockets not permitted: add the exit's gid to net\.ipv4\.ping_group_range .* CAP_NET_RAW/);
    expect(out.methods[4]).toBe('not-permitted');
  });

  it('tcpOnly: a TCP connect time even where ICMP works, to the port asked for', async () => {
    await topo.pingGroupRange(...ALL_GIDS);
    const out = await asRoot({ requests: [echo(A.up, 1, { tcpOnly: true }), echo(A.up6, 2, { tcpOnly: true, tcpPort: 22 })] });
    expect(out.results[0]).toMatchObject({ ok: true, method: 'tcp', tcpPort: 443, ttl: 0 });
    expect(out.results[1]).toMatchObject({ ok: true, method: 'tcp', tcpPort: 22, address: A.up6 });
    expect(out.counters).toMatchObject({ icmpEchoes: 0, tcpEchoes: 2, icmpFallbacks: 0 });
  });

  it('traceroute probes (TTL-limited echoes): the router says "time exceeded", the host replies, beyond is lost', async () => {
    const hops = [
      { host: A.transit, ttl: 1, timeoutMs: 5_000 }, { host: A.transit6, ttl: 1, timeoutMs: 5_000 },
      { host: A.up, ttl: 1, timeoutMs: 5_000 }, { host: A.up6, ttl: 1, timeoutMs: 5_000 },
      { host: A.transit, ttl: 2, timeoutMs: 500 },
    ];
    const want = [
      { kind: 'ttl-exceeded', from: A.world, rttMs: expect.any(Number), message: `From ${A.world}: Time to live exceeded` },
      { kind: 'ttl-exceeded', from: '2001:db8:1::1', rttMs: expect.any(Number), message: 'From 2001:db8:1::1: Time exceeded: Hop limit' },
      { kind: 'reply', address: A.up, ttl: 64, rttMs: expect.any(Number) },
      { kind: 'reply', address: A.up6, ttl: 64, rttMs: expect.any(Number) },
      { kind: 'timeout' },
    ];
    await topo.pingGroupRange(...ALL_GIDS);
    expect((await asNobody({ requests: [], hops })).hops, 'ping socket').toEqual(want);
    await topo.pingGroupRange(...NO_GID);
    expect((await asRoot({ requests: [], hops })).hops, 'raw socket').toEqual(want);
    // Without ICMP sockets there is no traceroute: a TCP connect tells nothing about the hops.
    expect((await asNobody({ requests: [], hops: hops.slice(0, 1) })).hops).toEqual([
      { kind: 'failed', code: EchoFailure.UNSUPPORTED, message: expect.stringMatching(/ICMP sockets not permitted/) },
    ]);
  });

  it('an ICMP error not read yet does not fail the next echo (the kernel also keeps it as the socket error)', async () => {
    // Regression: an echo sent while an earlier echo's ICMP error was still unread failed at once with "no route
    // to host": sendmsg reported (and cleared) the pending sk_err instead of sending. Ping and raw sockets alike.
    const PENDING = fileURLToPath(new URL('./fixtures/pending-error-probe.ts', import.meta.url));
    for (const [range, kind] of [[ALL_GIDS, 'dgram'], [NO_GID, 'raw']] as const) {
      await topo.pingGroupRange(range[0], range[1]);
      for (const [family, unreachable, up] of [[4, A.unreachable, A.up], [6, A.unreachable6, A.up6]] as const) {
        const r = await topo.exec(process.execPath, ['--import', 'tsx', PENDING, JSON.stringify({ kind, family, unreachable, up })]);
        expect(r.code, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout.toString()) as { arrived: boolean; first: { ok: boolean; code?: number }; second: { ok: boolean } };
        expect(out.arrived, `${kind} IPv${family}: the error arrived before the second send`).toBe(true);
        expect(out.first, `${kind} IPv${family}`).toMatchObject({ ok: false, code: EchoFailure.UNREACHABLE });
        expect(out.second, `${kind} IPv${family}`).toMatchObject({ ok: true });
      }
    }
  }, 150_000);

  it('200 concurrent echoes share one ping socket per family; each gets its own reply back', async () => {
    await topo.pingGroupRange(...ALL_GIDS);
    const requests = Array.from({ length: 200 }, (_, i) =>
      echo(i % 2 ? A.up6 : A.up, i, { payloadHex: i.toString(16).padStart(4, '0').repeat(8) }));
    const out = await asNobody({ requests });
    out.results.forEach((r, i) => expect(r, `echo ${i}`).toMatchObject({ ok: true, method: 'icmp', payload: requests[i].payloadHex }));
    expect(out.counters).toMatchObject({ icmpEchoes: 200, icmpSockets: 2 });
  });
});
