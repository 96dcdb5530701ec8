// The sender's in-flight cap chosen by queueing delay (src/protocol/delay-pacer.ts): against a modelled bottleneck
// it settles where the path is full and the queue stays near the target, it shrinks under a standing queue and
// does not collapse on one-off delays; in the mux it decides when writers pause.
import { describe, expect, it } from 'vitest';
import { DelayPacer, PACER_BASE_RTT_PERIOD_MS, PACER_INITIAL_BYTES, PACER_MIN_BYTES, PACER_TARGET_DELAY_MS } from '../../src/protocol/delay-pacer';
import { Capability, FrameType, MAX_STREAM_WINDOW, ZksError, type MuxStream } from '../../src/protocol/index';
import { PACE_AFTER_DATAGRAM_MS } from '../../src/protocol/mux';
import { Pair, pattern } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A path with a bottleneck of `rate` bytes/ms and a base RTT of `baseMs`: with `inFlight` bytes out, whatever
 * exceeds rate × base waits in the queue, and a PING behind them comes back that much later. The sender always has
 * data, so the cap binds on every round.
 */
function run(pacer: DelayPacer, rate: number, baseMs: number, rounds: number, spike: (i: number) => number = () => 0): Round[] {
  let now = 0;
  const out: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    const limit = pacer.limit;
    const queueMs = Math.max(0, limit / rate - baseMs);
    const rtt = baseMs + queueMs + spike(i);
    const sentAt = now;
    now += rtt;
    pacer.sample(rtt, sentAt, now, true, limit);
    out.push({ limit, rtt, queueMs });
  }
  return out;
}
interface Round { limit: number; rtt: number; queueMs: number }
/** Share of the path's rate used: each round delivers what was in flight, at most the path's rate. */
const utilisation = (rounds: Round[], rate: number) =>
  rounds.reduce((n, r) => n + Math.min(r.limit, rate * r.rtt), 0) / rounds.reduce((t, r) => t + r.rtt, 0) / rate;

describe('DelayPacer', () => {
  // rate in bytes/ms: 150 MB/s ≈ 150 000; 12.5 MB/s (100 Mbit/s) ≈ 12 500
  for (const [name, rate, baseMs] of [
    ['loopback, 150 MB/s, 1 ms', 150_000, 1],
    ['a CPU-bound 60 MB/s, 2 ms', 60_000, 2],
    ['a slow reader, 30 MB/s at 1 ms', 30_000, 1],
    ['100 Mbit/s at 40 ms (the relay far away)', 12_500, 40],
    ['1 Gbit/s at 20 ms', 125_000, 20],
  ] as const) {
    it(`${name}: fills the path and keeps the queue near the target`, () => {
      const settled = run(new DelayPacer(), rate, baseMs, 1000).slice(300);
      expect(utilisation(settled, rate)).toBeGreaterThanOrEqual(0.9);
      // short queue: about the target (a quarter of the base RTT on long paths) plus one growth step, unless the
      // floor alone queues more on a slow path
      const target = Math.max(PACER_TARGET_DELAY_MS, baseMs / 4);
      const floorQueueMs = PACER_MIN_BYTES / rate - baseMs;
      expect(Math.max(...settled.map((r) => r.queueMs))).toBeLessThanOrEqual(Math.max(2 * target, floorQueueMs));
    });
  }

  /** Past its first probe: base RTT 1 ms learnt at time 1, cap back at its initial size. */
  const started = () => {
    const pacer = new DelayPacer();
    expect(pacer.limit).toBe(PACER_MIN_BYTES);
    pacer.sample(1, 0, 1, false, 0);
    expect(pacer.limit).toBe(PACER_INITIAL_BYTES);
    return pacer;
  };

  it('shrinks a cap that built a standing queue, once per round trip', () => {
    const pacer = started();
    pacer.sample(30, 1, 31, true, PACER_INITIAL_BYTES);
    const once = pacer.limit;
    expect(once).toBeLessThan(PACER_INITIAL_BYTES);
    // a PING sent before that shrink still shows the old queue: no second shrink for it
    pacer.sample(30, 20, 50, true, PACER_INITIAL_BYTES);
    expect(pacer.limit).toBe(once);
    pacer.sample(30, 51, 81, true, once);
    expect(pacer.limit).toBeLessThan(once);
  });

  it('grows only when the cap held the sender back', () => {
    const pacer = started();
    for (let i = 1; i < 50; i++) pacer.sample(1, i * 2, i * 2 + 1, false, 0);
    expect(pacer.limit).toBe(PACER_INITIAL_BYTES);
    pacer.sample(1, 200, 201, true, PACER_INITIAL_BYTES);
    expect(pacer.limit).toBeGreaterThan(PACER_INITIAL_BYTES);
  });

  it('every period, probes the base RTT at its floor and comes back to the cap it had', () => {
    const pacer = started();
    pacer.sample(1, 100, 101, true, PACER_INITIAL_BYTES);
    const cap = pacer.limit;
    pacer.sample(20, PACER_BASE_RTT_PERIOD_MS, PACER_BASE_RTT_PERIOD_MS + 20, true, cap); // period over: probe
    expect(pacer.limit).toBe(PACER_MIN_BYTES);
    // PINGs behind more than the floor's bytes are the old queue draining: the probe goes on
    pacer.sample(15, PACER_BASE_RTT_PERIOD_MS + 20, PACER_BASE_RTT_PERIOD_MS + 35, true, cap);
    expect(pacer.limit).toBe(PACER_MIN_BYTES);
    // the path got slower (5 ms now): learnt from the probe, and a 5.5 ms sample is no queue any more
    pacer.sample(5, PACER_BASE_RTT_PERIOD_MS + 35, PACER_BASE_RTT_PERIOD_MS + 40, true, PACER_MIN_BYTES);
    expect(pacer.limit).toBe(cap);
    expect(pacer.baseRttMs).toBe(5);
    pacer.sample(5.5, PACER_BASE_RTT_PERIOD_MS + 40, PACER_BASE_RTT_PERIOD_MS + 45.5, true, cap);
    expect(pacer.limit).toBeGreaterThan(cap);
  });

  it('one-off delays (a GC pause at the peer) do not starve a long path', () => {
    const rate = 12_500;
    const settled = run(new DelayPacer(), rate, 40, 1000, (i) => (i % 25 === 0 ? 15 : 0)).slice(300);
    expect(utilisation(settled, rate)).toBeGreaterThanOrEqual(0.8);
  });

  it('never goes below its floor, nor takes a negative or NaN sample', () => {
    const pacer = started();
    for (let i = 1; i < 100; i++) pacer.sample(1 + 100 * (i % 2), i * 200, i * 200 + 101, true, pacer.limit);
    expect(pacer.limit).toBeGreaterThanOrEqual(PACER_MIN_BYTES);
    const held = pacer.limit;
    pacer.sample(NaN, 0, 0, true, 0);
    pacer.sample(-5, 0, 0, true, 0);
    expect(pacer.limit).toBe(held);
  });
});

describe('paceByDelay in the mux', () => {
  /** An exit that paces its bulk DATA; the client grants 64 MiB so that credit never is the limit. */
  function pacedPair() {
    const p = new Pair({
      clientWindow: MAX_STREAM_WINDOW,
      client: { peerAnnouncesCapabilities: true },
      server: { peerAnnouncesCapabilities: true, capabilities: Capability.UDP, paceByDelay: true, onDatagramFlow: () => {} },
    });
    p.pump();
    return { p, ...p.open() };
  }
  /** The client opens a UDP flow and sends one datagram over it: the link now carries datagrams. */
  const sendDatagram = (p: Pair) => {
    const flow = p.client.mux.datagrams.openFlow();
    if (flow instanceof ZksError) throw flow;
    flow.send({ host: '192.0.2.1', port: 4000 }, pattern(100));
    p.pump();
    return flow;
  };
  /** Writes 16 KiB chunks while the stream takes them, up to `max`: what the session let through. */
  const fill = (stream: MuxStream, max: number) => {
    let n = 0;
    while (stream.writable && n < max) {
      stream.write(pattern(16 * KiB));
      n += 16 * KiB;
    }
    return n;
  };

  it('without datagrams on the link, bulk DATA is not held back and no PING follows it', () => {
    const { p, s } = pacedPair();
    expect(fill(s.stream, 8 * MiB)).toBe(8 * MiB);
    expect(p.sentOf('server', FrameType.PING)).toEqual([]);
  });

  it('while datagrams flow, unacknowledged DATA stays within the pacer\'s cap; 5 s after the last one it lifts', () => {
    const { p, s } = pacedPair();
    sendDatagram(p);
    // the first round trip measures the path at the floor (the initial probe), then the cap opens
    expect(fill(s.stream, 8 * MiB)).toBeLessThanOrEqual(PACER_MIN_BYTES);
    expect(p.sentOf('server', FrameType.PING).length).toBeGreaterThan(0);
    p.pump(); // PING → PONG: the data is acknowledged, writers resume
    expect(s.stream.writable).toBe(true);
    for (let round = 0; round < 4; round++) {
      const sent = fill(s.stream, 8 * MiB);
      expect(sent).toBeLessThanOrEqual(PACER_INITIAL_BYTES * 2);
      expect(s.stream.writable).toBe(false);
      p.now += 1;
      p.pump();
    }
    p.now += PACE_AFTER_DATAGRAM_MS;
    p.pump();
    expect(fill(s.stream, 8 * MiB)).toBe(8 * MiB);
  });

  it('a PONG that shows a standing queue lowers the cap', () => {
    const { p, s } = pacedPair();
    const flow = sendDatagram(p);
    fill(s.stream, 8 * MiB);
    p.now += 1;
    p.pump(); // probe over: base RTT 1 ms, cap at its initial size
    fill(s.stream, 8 * MiB);
    expect(s.stream.writable).toBe(false);
    expect(p.server.mux.unackedBytes).toBe(PACER_INITIAL_BYTES); // the cap, reached
    p.now += 30; // the PING behind that data comes back 30 ms later: our own DATA is queued
    flow.send({ host: '192.0.2.1', port: 4000 }, pattern(100));
    p.pump();
    fill(s.stream, 8 * MiB);
    expect(s.stream.writable).toBe(false);
    expect(p.server.mux.unackedBytes).toBeLessThan(PACER_INITIAL_BYTES);
  });
});
