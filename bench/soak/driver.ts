// One lane's traffic, its own process (on the host through a SOCKS5 port, or inside the zksd topology's client
// namespace, where plain sockets go through zksd's TUN): a bulk download loop and a bulk upload loop, short echo
// connections at a steady rate, idle streams held for the whole run, long UDP flows and short UDP flows.
// Usage: node --import tsx bench/soak/driver.ts '<DriverConfig JSON>'
// Prints tally.ts DriverEvent lines on stdout: ready, every failure at once, a tick every 10 s, and after a `stop`
// line on stdin (no new flows; those in flight finish; idle streams and long UDP flows are checked) the summary.
// Exits when stdin closes without `stop` (the soak is gone).
import { randomInt } from 'node:crypto';
import { createInterface } from 'node:readline';
import { bulkDown, bulkUp, IdleStream, shortEcho, type FlowResult } from './flows';
import { directRoute, socksRoute } from './routes';
import { Tally, type DriverConfig, type DriverEvent, type Kind } from './tally';
import { UdpLongFlow, udpShort, type UdpStats } from './udp-flows';

const cfg = JSON.parse(process.argv[2] ?? '{}') as DriverConfig;
const route = cfg.socksPort ? socksRoute(cfg.socksPort) : directRoute;
const tally = new Tally();
const seedBase = randomInt(2 ** 31);
let nextId = 1;
let stopping = false;
let skipped = 0;
const inFlight = new Set<Promise<void>>();
let shortInFlight = 0;
let udpShortInFlight = 0;

const emit = (e: DriverEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function finish(kind: Kind, id: number, r: FlowResult, udp?: UdpStats, alreadyReported = false): void {
  tally.add(kind, r, udp);
  if (!r.ok && !alreadyReported) emit({ ev: 'fail', lane: cfg.lane, kind, id, t: Date.now(), error: r.error ?? 'failed', ms: Math.round(r.ms) });
}

/** Runs a flow, keeping its promise until it settles (stop waits for every one). */
function track(kind: Kind, run: (id: number) => Promise<FlowResult>): Promise<void> {
  const id = nextId++;
  const p = run(id).then((r) => finish(kind, id, r));
  inFlight.add(p);
  return p.finally(() => inFlight.delete(p));
}

async function bulkLoop(kind: 'bulk down' | 'bulk up'): Promise<void> {
  const deadline = cfg.flowTimeoutMs + (cfg.bulkRate > 0 ? (cfg.bulkBytes / cfg.bulkRate) * 2000 : 0);
  const flow = kind === 'bulk down' ? bulkDown : bulkUp;
  while (!stopping) {
    await track(kind, (id) => flow(route, cfg.target, (seedBase + id) >>> 0, cfg.bulkBytes, cfg.bulkRate, deadline));
    if (!stopping) await sleep(250);
  }
}

/** Calls `start` `perSec` times a second (the caller clears the timer). */
function every(perSec: number, start: () => void): NodeJS.Timeout | undefined {
  return perSec > 0 ? setInterval(start, 1000 / perSec) : undefined;
}

async function main(): Promise<void> {
  const idle: Array<{ id: number; stream: IdleStream; reported: boolean }> = [];
  await Promise.all(Array.from({ length: cfg.idle }, async () => {
    const id = nextId++;
    const entry = { id, stream: undefined as unknown as IdleStream, reported: false };
    entry.stream = new IdleStream((why) => {
      entry.reported = true;
      emit({ ev: 'fail', lane: cfg.lane, kind: 'idle', id, t: Date.now(), error: why, ms: 0 });
    });
    const r = await entry.stream.open(route, cfg.target, cfg.flowTimeoutMs);
    if (!r.ok) throw new Error(`idle stream ${id} did not open: ${r.error}`);
    idle.push(entry);
  }));
  const udp = Array.from({ length: cfg.udpFlows }, () => ({ id: nextId++, flow: undefined as unknown as UdpLongFlow }));
  for (const u of udp) {
    u.flow = new UdpLongFlow(u.id, cfg.udpBytes);
    await u.flow.start(route, cfg.target, cfg.udpIntervalMs, cfg.flowTimeoutMs);
    if (u.flow.error) throw new Error(u.flow.error);
  }
  emit({ ev: 'ready', lane: cfg.lane });

  const loops = cfg.bulkBytes > 0 ? [bulkLoop('bulk down'), bulkLoop('bulk up')] : [];
  const timers = [
    every(cfg.shortPerSec, () => {
      if (shortInFlight >= cfg.maxInFlight) return void skipped++;
      shortInFlight++;
      void track('short', () => shortEcho(route, cfg.target, cfg.shortBytes, cfg.flowTimeoutMs)).finally(() => shortInFlight--);
    }),
    every(cfg.udpShortPerSec, () => {
      if (udpShortInFlight >= cfg.maxInFlight) return void skipped++;
      udpShortInFlight++;
      void track('udp short', (id) => udpShort(route, cfg.target, id, cfg.udpBytes, cfg.flowTimeoutMs)).finally(() => udpShortInFlight--);
    }),
    setInterval(() => emit({ ev: 'tick', lane: cfg.lane, t: Date.now(), done: tally.done(), failed: tally.failed(), inFlight: inFlight.size, skipped }), 10_000),
  ];
  const ended = new Set<number>();
  const watchUdp = setInterval(() => {
    for (const u of udp) {
      const why = u.flow.ended;
      if (why && !ended.has(u.id)) ended.add(u.id), emit({ ev: 'fail', lane: cfg.lane, kind: 'udp long', id: u.id, t: Date.now(), error: why, ms: 0 });
    }
  }, 1000);

  await new Promise<void>((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => line.trim() === 'stop' && ((stopping = true), resolve()));
    rl.on('close', () => stopping || process.exit(1));
  });
  for (const t of timers) clearInterval(t);
  clearInterval(watchUdp);
  await Promise.all(loops);
  while (inFlight.size) await Promise.all([...inFlight]);
  const checks = [
    ...idle.map(async (e) => finish('idle', e.id, await e.stream.check(cfg.flowTimeoutMs), undefined, e.reported)),
    ...udp.map(async (u) => {
      const r = await u.flow.check(cfg.flowTimeoutMs);
      finish('udp long', u.id, r, r.udp, ended.has(u.id));
    }),
  ];
  await Promise.all(checks);
  emit({ ev: 'summary', lane: cfg.lane, kinds: tally.summary(), skipped });
  process.exit(0);
}

process.on('SIGTERM', () => process.exit(0));
main().catch((e: unknown) => {
  console.error(`driver ${cfg.lane}: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
