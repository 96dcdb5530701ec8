// Loss recovery with a SACK peer, smoltcp style with a scripted peer: the scoreboard (RFC 6675 §3 / RFC 2018),
// RFC 6675 recovery (duplicate ACKs by SACK information whatever the window, holes resent one packet each, in order,
// inside cwnd − pipe), the RTO resend that skips SACKed data (§5.1), the RFC 8985 tail loss probe and the resend
// that is lost again — and NewReno unchanged when the peer does not SACK. ISNs near 2^32: every case crosses the wrap.
import { describe, expect, it } from 'vitest';
import type { TcpSocket, TcpSocketConfig } from '../../../src/netstack/socket/index';
import { Scoreboard } from '../../../src/netstack/socket/scoreboard';
import { seqSub, type SackRange, type TcpRepr } from '../../../src/netstack/wire/index';
import { ACK, L, PSH, R, SEG, drain, established, expectNothing, send } from './helpers';

const MSS = 100;
const data = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => i & 0xff);

/** An ESTABLISHED socket whose peer sent MSS 100 (and SACK-permitted unless `sack` is false), window 4000. */
function open(sack = true, cfg: Partial<TcpSocketConfig> = {}): TcpSocket {
  const s = established({ txBufferSize: 8000, ...cfg }, { mss: MSS, sackPermitted: sack, window: 4000 });
  send(s, { ...SEG, seq: R(1), ack: L(1), window: 4000 }); // the handshake ACK carried the default 256
  return s;
}

/** The peer's ACK: cumulative `ack`, optional SACK blocks (most recent first), window. */
function ack(s: TcpSocket, a: number, sack: SackRange[] = [], t = 0, window = 4000): void {
  send(s, { ...SEG, seq: R(1), ack: a, window, sackRanges: sack }, t);
}

/** [seq offset from L(1), length] of what dispatch(t) emits. */
const sent = (s: TcpSocket, t = 0): Array<[number, number]> => drain(s, t).filter((x) => x.payload.length > 0).map((x) => [seqSub(x.seq, L(1)), x.payload.length]);

/** Ten 100-byte segments in flight (cwnd 10 MSS), RTT sampled at 10 ms when `sample` (the first one acked). */
function tenInFlight(sack = true): TcpSocket {
  const s = open(sack);
  s.send(data(1000));
  expect(sent(s)).toEqual([[0, 100], [100, 100], [200, 100], [300, 100], [400, 100], [500, 100], [600, 100], [700, 100], [800, 100], [900, 100]]);
  return s;
}

describe('Scoreboard', () => {
  const U = 0xfffffff0; // SND.UNA just below the wrap
  const at = (n: number) => (U + n) >>> 0;

  it('merges blocks, counts only new octets, ignores D-SACKs and blocks beyond SND.MAX', () => {
    const sb = new Scoreboard();
    expect(sb.update([[at(100), at(200)]], U, 1000)).toBe(100);
    expect(sb.update([[at(150), at(300)], [at(100), at(200)]], U, 1000)).toBe(100);
    expect(sb.update([[at(0), at(50)]], U, 1000)).toBe(0); // left edge at SND.UNA: a D-SACK (RFC 2883)
    expect(sb.update([[at(900), at(1100)]], U, 1000)).toBe(0); // beyond what was sent
    expect(sb.update([[at(300), at(400)]], U, 1000)).toBe(100); // adjacent: one range
    expect(sb.ranges()).toEqual([[100, 400]]);
    expect(sb.sacked).toBe(300);
  });

  it('re-bases on a cumulative ACK, clipping a range it cuts into', () => {
    const sb = new Scoreboard();
    sb.update([[at(500), at(600)], [at(100), at(300)]], U, 1000);
    sb.advance(200);
    expect(sb.ranges()).toEqual([[0, 100], [300, 400]]);
    expect(sb.sacked).toBe(200);
    sb.advance(1000);
    expect(sb.isEmpty).toBe(true);
    expect(sb.sacked).toBe(0);
  });

  it('IsLost: DupThresh ranges, or more than (DupThresh − 1)·SMSS octets, SACKed above', () => {
    const sb = new Scoreboard();
    sb.update([[at(100), at(200)]], U, 2000);
    expect(sb.lossEdge(MSS)).toBe(0);
    sb.update([[at(300), at(350)]], U, 2000);
    expect(sb.lossEdge(MSS)).toBe(0);
    sb.update([[at(400), at(450)]], U, 2000); // three ranges
    expect(sb.lossEdge(MSS)).toBe(100);
    const big = new Scoreboard();
    big.update([[at(100), at(300)]], U, 2000);
    expect(big.lossEdge(MSS)).toBe(0); // exactly 2·SMSS is not more
    big.update([[at(300), at(301)]], U, 2000);
    expect(big.lossEdge(MSS)).toBe(100);
  });

  it('walks holes between SACKed ranges', () => {
    const sb = new Scoreboard();
    sb.update([[at(300), at(400)], [at(100), at(200)]], U, 1000);
    expect(sb.hole(0, 1000)).toEqual([0, 100]);
    expect(sb.hole(100, 1000)).toEqual([200, 300]);
    expect(sb.hole(250, 300)).toEqual([250, 300]);
    expect(sb.hole(300, 400)).toBeNull();
    expect(sb.hole(300, 1000)).toEqual([400, 1000]);
    expect(sb.unsackedBelow(500)).toBe(300);
  });

  it('keeps at most 64 ranges, forgetting the lowest', () => {
    const sb = new Scoreboard();
    for (let i = 0; i < 100; i++) sb.update([[at(10 + 20 * i), at(20 + 20 * i)]], U, 10_000);
    expect(sb.ranges().length).toBe(64);
    expect(sb.ranges()[0][0]).toBe(10 + 20 * 36);
    expect(sb.sacked).toBe(640);
  });
});

describe('RFC 6675 recovery with a SACK peer', () => {
  it('two holes in one flight: both resent, in order, without an RTO, inside cwnd − pipe', () => {
    const s = tenInFlight();
    // The peer gets 1, loses 2, gets 3 and 4, loses 5, gets 6…; it holds out-of-order data, so its window shrinks.
    ack(s, L(101), [], 10);
    ack(s, L(101), [[L(201), L(301)]], 10, 3900);
    ack(s, L(101), [[L(201), L(401)]], 10, 3800);
    expectNothing(s, 10); // two duplicates; nothing SACKed is lost yet (IsLost needs > 2 MSS above it)
    ack(s, L(101), [[L(501), L(601)], [L(201), L(401)]], 10, 3700);
    expect(sent(s, 10)).toEqual([[100, 100]]); // third duplicate: the first hole, one packet
    expect(s.stats.fastRetransmits).toBe(1);
    // ssthresh = cwnd = FlightSize / 2 = 500; pipe = 900 − 300 SACKed − 100 lost + 100 resent = 600: nothing more yet
    expect(s.congestionWindow).toBe(500);
    ack(s, L(101), [[L(501), L(701)], [L(201), L(401)]], 11, 3600);
    expectNothing(s, 11); // [401, 501) has 200 SACKed above: not lost yet
    ack(s, L(101), [[L(501), L(801)], [L(201), L(401)]], 11, 3500);
    expect(sent(s, 11)).toEqual([[400, 100]]); // now it is, and pipe 300 < cwnd 500: the second hole
    ack(s, L(101), [[L(501), L(901)], [L(201), L(401)]], 12, 3400);
    ack(s, L(101), [[L(501), L(1001)], [L(201), L(401)]], 12, 3300);
    expectNothing(s, 12); // no data left to send, no hole left to resend
    ack(s, L(401), [[L(501), L(1001)]], 13); // the first resend arrived: partial ACK
    ack(s, L(1001), [], 13); // the second: everything
    expectNothing(s, 13);
    expect(s.stats).toMatchObject({ timeouts: 0, retransmits: 2, fastRetransmits: 1 });
    expect(s.congestionWindow).toBe(500); // recovery over at cwnd = ssthresh
    expect(s.pollAt()).toBeNull();
  });

  it('duplicate ACKs with a changing window count when they SACK new data (RFC 6675 §2), not without SACK', () => {
    for (const sack of [true, false]) {
      const s = tenInFlight(sack);
      for (let i = 1; i <= 3; i++) ack(s, L(1), sack ? [[L(101), L(1 + 100 * (i + 1))]] : [], 5, 4000 - 100 * i);
      expect(s.stats.fastRetransmits).toBe(sack ? 1 : 0);
      expect(sent(s, 5)).toEqual(sack ? [[0, 100]] : []);
    }
  });

  it('an ACK that repeats old SACK information is not a duplicate', () => {
    const s = tenInFlight();
    ack(s, L(1), [[L(101), L(201)]], 5);
    for (let i = 0; i < 5; i++) ack(s, L(1), [[L(101), L(201)]], 5);
    expect(s.stats.fastRetransmits).toBe(0);
    expectNothing(s, 5);
  });

  it('a stretch ACK SACKing more than 2 MSS starts recovery at once (IsLost, RFC 6675 §5 step 2)', () => {
    const s = tenInFlight();
    ack(s, L(1), [[L(101), L(501)]], 5);
    expect(s.stats.fastRetransmits).toBe(1);
    expect(sent(s, 5)).toEqual([[0, 100]]);
  });

  it('with segmentation offload, holes are still resent one MSS packet at a time', () => {
    const s = open(true, { maxSegment: 60_000 });
    s.send(data(1000));
    const first: Array<[number, number, number]> = [];
    s.dispatch(0, (seg, packetLen) => first.push([seqSub(seg.seq, L(1)), seg.payload.length, packetLen]));
    expect(first).toEqual([[0, 1000, 100]]); // one super-segment: the kernel cuts it into ten packets
    ack(s, L(1), [[L(101), L(201)]], 5);
    ack(s, L(1), [[L(101), L(201)], [L(301), L(401)]], 5);
    ack(s, L(1), [[L(501), L(1001)], [L(101), L(201)], [L(301), L(401)]], 5);
    const out: Array<[number, number, number]> = [];
    s.dispatch(5, (seg, packetLen) => out.push([seqSub(seg.seq, L(1)), seg.payload.length, packetLen]));
    // cwnd 500, pipe 0 + resends: the three holes, each its own ≤ MSS segment, lowest first
    expect(out).toEqual([[0, 100, 100], [200, 100, 100], [400, 100, 100]]);
  });

  it('never resends beyond the peer window', () => {
    const s = tenInFlight();
    ack(s, L(1), [[L(101), L(201)]], 5, 350); // the peer shrank its window to [L(1), L(351))
    ack(s, L(1), [[L(101), L(201)], [L(301), L(401)]], 5, 350);
    ack(s, L(1), [[L(501), L(1001)], [L(101), L(201)], [L(301), L(401)]], 5, 350);
    // the holes at 0 and 200 fit; the one at 400 lies beyond the window
    expect(sent(s, 5)).toEqual([[0, 100], [200, 100]]);
  });
});

describe('RTO with a SACK peer (RFC 6675 §5.1)', () => {
  it('the go-back-N resend skips what the peer SACKed; SND.UNA is always resent', () => {
    // An RTO of 5 ms (SRTT 0 from the handshake) runs out before the 10 ms tail loss probe could.
    const s = open(true, { minRtoMs: 5 });
    s.send(data(1000));
    sent(s, 0);
    ack(s, L(1), [[L(201), L(401)]], 1); // one duplicate
    expectNothing(s, 1);
    expect(s.pollAt()).toBe(5);
    expect(sent(s, 5)).toEqual([[0, 100]]);
    expect(s.stats.timeouts).toBe(1);
    ack(s, L(101), [[L(201), L(401)]], 6); // cwnd 1 MSS → 2 MSS (slow start)
    expect(sent(s, 6)).toEqual([[100, 100], [400, 100]]); // [201, 401) skipped
  });

  it('a second timeout forgets the scoreboard (the peer may have reneged, RFC 2018 §8)', () => {
    const s = open(true, { minRtoMs: 5 });
    s.send(data(1000));
    sent(s, 0);
    ack(s, L(1), [[L(101), L(1001)]], 1); // everything but the first segment SACKed (recovery: L(1) resent)…
    expect(sent(s, 1)).toEqual([[0, 100]]);
    expect(sent(s, 5)).toEqual([[0, 100]]); // …lost: first timeout, the resend skips all that was SACKed
    expect(sent(s, 15)).toEqual([[0, 100]]); // second timeout (backed off)
    ack(s, L(101), [], 16); // the peer reneged: it kept nothing beyond
    expect(sent(s, 16)[0]).toEqual([100, 100]); // resent although it was SACKed before
    expect(s.stats.timeouts).toBe(2);
  });
});

describe('RFC 8985 tail loss probe', () => {
  /** Three segments in flight with an RTT sample of 4 ms: the probe timeout is max(2·SRTT, 10 ms) = 10 ms. */
  function threeInFlight(): TcpSocket {
    const s = open();
    s.send(data(100));
    sent(s, 0);
    ack(s, L(101), [], 4); // SRTT 4
    s.send(data(300));
    expect(sent(s, 4)).toEqual([[100, 100], [200, 100], [300, 100]]);
    return s;
  }

  it('resends the last segment 2·SRTT after the tail went silent, long before the RTO', () => {
    const s = threeInFlight();
    expect(s.pollAt()).toBe(14);
    expect(sent(s, 14)).toEqual([[300, 100]]);
    expect(s.stats).toMatchObject({ probes: 1, timeouts: 0 });
    expectNothing(s, 20); // one probe per episode
  });

  it('probe SACKed above a hole: what was sent before it is lost, recovery resends it', () => {
    const s = threeInFlight();
    sent(s, 14);
    ack(s, L(101), [[L(301), L(401)]], 16); // only the probe arrived
    expect(sent(s, 16)).toEqual([[100, 100], [200, 100]]);
    expect(s.stats).toMatchObject({ fastRetransmits: 1, timeouts: 0 });
  });

  it('a D-SACK for the probe (only ACKs were lost) keeps cwnd; a probe that repaired the tail halves it', () => {
    const dsack = threeInFlight();
    const grown = dsack.congestionWindow + 2 * MSS; // slow start on the ACK of 3 MSS (RFC 3465, L = 2)
    sent(dsack, 14);
    ack(dsack, L(401), [[L(301), L(401)]], 16); // RFC 2883: a first block below the cumulative ACK
    expect(dsack.congestionWindow).toBe(grown);
    const repaired = threeInFlight();
    sent(repaired, 14);
    ack(repaired, L(401), [], 16);
    expect(repaired.congestionWindow).toBe(Math.floor(grown / 2));
  });

  it('sends new data as the probe when there is some (outside cwnd, inside the window)', () => {
    const s = open();
    s.send(data(100));
    sent(s, 0);
    ack(s, L(101), [], 4);
    s.send(data(2000));
    const burst = sent(s, 4);
    expect(burst.length).toBe(11); // cwnd 11 MSS after one ACK in slow start
    expect(sent(s, 14)).toEqual([[1200, 100]]);
  });
});

describe('a resend lost again', () => {
  it('is found once more than 2 MSS sent after it are SACKed, and resent without an RTO', () => {
    const s = open();
    s.send(data(3000));
    sent(s, 0); // ten segments, L(1)..L(1001)
    for (let i = 1; i <= 3; i++) ack(s, L(1), [[L(101), L(101 + 100 * i)]], 5);
    expect(sent(s, 5)).toEqual([[0, 100]]); // recovery: L(1) resent (while L(1001) was the highest sent)
    // The rest of the flight arrives; pipe falls below cwnd 500 and new data flows.
    const more: Array<[number, number]> = [];
    for (let i = 4; i <= 9; i++) {
      ack(s, L(1), [[L(101), L(101 + 100 * i)]], 6);
      more.push(...sent(s, 6));
    }
    expect(more.every(([off]) => off >= 1000)).toBe(true);
    // The new data is SACKed too, but not L(1): its resend was lost.
    ack(s, L(1), [[L(101), L(1101)]], 7);
    ack(s, L(1), [[L(101), L(1201)]], 7);
    expect(sent(s, 7).filter(([off]) => off === 0)).toEqual([]); // 200 beyond: not yet
    ack(s, L(1), [[L(101), L(1301)]], 7);
    expect(sent(s, 7)).toContainEqual([0, 100]);
    expect(s.stats.timeouts).toBe(0);
    expect(s.stats.retransmits).toBe(2);
  });
});

describe('a peer without SACK: RFC 6582 NewReno as before', () => {
  it('fast retransmit on three duplicates of equal window, one hole per partial ACK', () => {
    const s = tenInFlight(false);
    for (let i = 0; i < 3; i++) ack(s, L(101), [], 5);
    expectNothing(s, 5); // the first ACK advanced: two duplicates so far
    ack(s, L(101), [], 5);
    expect(sent(s, 5)).toEqual([[100, 100]]);
    ack(s, L(401), [], 6); // partial ACK: the next hole, one segment
    expect(sent(s, 6)).toEqual([[400, 100]]);
    ack(s, L(1001), [], 7);
    expect(s.stats).toMatchObject({ timeouts: 0, fastRetransmits: 1, retransmits: 2, probes: 0 });
  });

  it('SACK blocks from a peer that did not negotiate SACK are ignored', () => {
    const s = tenInFlight(false);
    ack(s, L(1), [[L(101), L(1001)]], 5, 3000);
    expect(s.stats.fastRetransmits).toBe(0);
    expectNothing(s, 5);
  });
});

describe('zero window with a SACK peer', () => {
  it('answers to the window probe are not duplicate ACKs', () => {
    const s = open();
    ack(s, L(1), [], 0, 0);
    s.send(data(300));
    expectNothing(s, 0);
    const probe: TcpRepr[] = drain(s, 1000);
    expect(probe.map((x) => [x.seq, x.payload.length, x.flags])).toEqual([[L(1), 1, ACK]]);
    for (let i = 0; i < 4; i++) ack(s, L(1), [], 1001, 0);
    expect(s.stats.fastRetransmits).toBe(0);
    expectNothing(s, 1001);
    ack(s, L(2), [], 1002, 4000);
    expect(drain(s, 1002).map((x) => [x.seq, x.payload.length, x.flags])).toEqual([[L(2), 100, ACK], [L(102), 100, ACK], [L(202), 99, ACK | PSH]]);
  });
});
