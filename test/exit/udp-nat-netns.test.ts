// The exit's UDP NAT on a real routed network (test/exit/ping-topology.ts), as it runs in production: without
// --allow-lan, toward public (documentation) addresses in another namespace. One flow reaches three servers over
// IPv4 and IPv6 from one mapped port per family, gets every reply — also those from addresses it never wrote to —
// and the kernel's own refusals (an unreachable route, a prohibit route) become UNREACHABLE or a counted error.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DatagramClose } from '../../src/protocol/datagram-types';
import { FORBIDDEN_MESSAGE } from '../../src/exit/connect';
import { execIn } from '../daemon/topology-proc';
import { startIn, type NsProcess } from '../daemon/topology-proc';
import { createPingTopology, PING_ADDR as A, type PingTopology } from './ping-topology';

const PROBE = fileURLToPath(new URL('./fixtures/udp-nat-probe.ts', import.meta.url));
const WORLD = fileURLToPath(new URL('./fixtures/udp-echo-world.ts', import.meta.url));
const EXIT_ADDR = '198.51.100.2';

let topo: PingTopology;
let world: NsProcess;

async function must(ns: string, args: string[]): Promise<void> {
  const r = await execIn(ns, 'ip', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
}

beforeAll(async () => {
  topo = await createPingTopology();
  // Refusals by the exit's own kernel: "unreachable" routes (EHOSTUNREACH on send), a "prohibit" route (EACCES).
  await must(topo.exit, ['route', 'add', 'unreachable', '192.0.2.0/24']);
  await must(topo.exit, ['-6', 'route', 'add', 'unreachable', '2001:db8:4::/48']);
  await must(topo.exit, ['route', 'add', 'prohibit', '203.0.113.64/26']);
  const servers = [
    { host: A.up, port: 7, sideHost: A.world },
    { host: A.world, port: 7, sideHost: A.up },
    { host: A.up6, port: 7, sideHost: '2001:db8:1::1' },
  ];
  world = startIn(topo.world, 'udp-world', [process.execPath, '--import', 'tsx', WORLD, JSON.stringify({ servers })]);
  await world.waitLine(/^ready$/);
});

afterAll(async () => {
  await world?.stop();
  await topo?.destroy();
});

interface ProbeOutput {
  delivered: Array<{ flow: number; source: string; text: string }>;
  closed: Array<{ flow: number; code: number; message: string }>;
  stats: Record<string, number>;
}

it('relays to public addresses without --allow-lan: one port per flow, replies from anyone, kernel refusals', async () => {
  const send = (flow: number, host: string, port: number, text: string) => ({ flow, host, port, text });
  const input = {
    sends: [
      send(1, A.up, 7, 'a'),
      send(1, A.world, 7, 'b'),
      send(1, A.up6, 7, 'c'),
      send(1, 'world.test', 7, 'n'),
      send(2, A.unreachable, 9, 'x'),
      send(3, A.unreachable6, 9, 'y'),
      send(4, '10.0.0.1', 9, 'z'),
      send(5, '203.0.113.70', 9, 'p'),
      send(5, A.up, 7, 'q'),
      send(6, 'rebind.test', 7, 'r'),
    ],
    names: { 'world.test': A.up, 'rebind.test': '127.0.0.1' },
    expect: { delivered: 10, closed: 4 },
  };
  const r = await topo.exec(process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(input)]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout.toString()) as ProbeOutput;

  // Endpoint-independent filtering: the side replies come from addresses and ports flow 1 never sent to.
  const flow1 = out.delivered.filter((d) => d.flow === 1).map((d) => `${d.text} from ${d.source.split(' ')[0]}`);
  expect(flow1.sort()).toEqual(
    [
      `echo:a from ${A.up}`, `side:a from ${A.world}`,
      `echo:b from ${A.world}`, `side:b from ${A.up}`,
      `echo:c from ${A.up6}`, 'side:c from 2001:db8:1::1',
      `echo:n from ${A.up}`, `side:n from ${A.world}`,
    ].sort(),
  );
  expect(out.delivered.filter((d) => d.flow === 5).map((d) => d.text).sort()).toEqual(['echo:q', 'side:q']);

  // Endpoint-independent mapping: the servers saw flow 1 from one address:port for every IPv4 destination.
  const seen = await Promise.all(
    ['a', 'b', 'n'].map((text) => world.waitLine(new RegExp(`^from \\S+ ${EXIT_ADDR} \\d+ ${text}$`))),
  );
  const ports = new Set(seen.map((line) => line.split(' ')[3]));
  expect(ports.size).toBe(1);
  const q = await world.waitLine(new RegExp(`^from \\S+ ${EXIT_ADDR} \\d+ q$`));
  expect(ports.has(q.split(' ')[3])).toBe(false); // another flow, another port

  expect(out.closed.sort((x, y) => x.flow - y.flow)).toEqual([
    { flow: 2, code: DatagramClose.UNREACHABLE, message: `${A.unreachable}:9: no route to host` },
    { flow: 3, code: DatagramClose.UNREACHABLE, message: `[${A.unreachable6}]:9: no route to host` },
    { flow: 4, code: DatagramClose.FORBIDDEN, message: FORBIDDEN_MESSAGE },
    { flow: 6, code: DatagramClose.FORBIDDEN, message: FORBIDDEN_MESSAGE },
  ]);
  // The prohibit route's EACCES is counted and flow 5 went on (its reply above); the unreachable sends count too.
  expect(out.stats).toMatchObject({ flowsOpened: 6, refused: 4, sendErrors: 3, flows: 2 });
});
