// Segmentation offload in the socket (cfg.maxSegment > MSS): segments of several MSS, never beyond the peer's
// window or cwnd, whole packets unless the segment ends the queue, retransmissions one packet; and a fast-check
// property: under the same random input, a GSO socket's segments cut the way the kernel cuts them (payload in
// packetLen pieces, FIN/PSH only on the last) are exactly the packets a plain socket sends.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TcpSocket, type TcpSocketConfig } from '../../../src/netstack/socket/index';
import { TcpFlags, seqAdd, seqGt, seqSub, type TcpRepr } from '../../../src/netstack/wire/index';
import { ACK, FIN, L, PSH, R, SEG, SYN_SEG, established, send } from './helpers';

const MSS = 1000;
const GSO: Partial<TcpSocketConfig> = { mss: MSS, maxSegment: 65_000, txBufferSize: 200_000, rxBufferSize: 65_535 };

interface Out { seg: TcpRepr; packetLen: number }

function drainGso(s: TcpSocket, t = 0): Out[] {
  const out: Out[] = [];
  s.dispatch(t, (seg, packetLen) => out.push({ seg: { ...seg, payload: seg.payload.slice(), sackRanges: [...seg.sackRanges] }, packetLen }));
  return out;
}

/** What the kernel makes of an offloaded segment (tcp_gso_segment): packetLen pieces, FIN and PSH on the last only. */
function cut({ seg, packetLen }: Out): TcpRepr[] {
  if (seg.payload.length <= packetLen) return [seg];
  const pieces: TcpRepr[] = [];
  for (let off = 0; off < seg.payload.length; off += packetLen) {
    const last = off + packetLen >= seg.payload.length;
    pieces.push({
      ...seg,
      seq: seqAdd(seg.seq, off),
      flags: last ? seg.flags : seg.flags & ~(TcpFlags.FIN | TcpFlags.PSH),
      payload: seg.payload.subarray(off, off + packetLen),
    });
  }
  return pieces;
}

const gsoEstablished = (window: number, extra: Partial<TcpSocketConfig> = {}) =>
  established({ ...GSO, ...extra }, { mss: MSS, window });

describe('segmentation offload (maxSegment > MSS)', () => {
  it('sends one segment of several MSS, capped by the initial cwnd (10 MSS, RFC 6928)', () => {
    const s = gsoEstablished(60_000);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 60_000 });
    expect(s.send(new Uint8Array(50_000))).toBe(50_000);
    const out = drainGso(s);
    expect(out.map((o) => [o.seg.seq, o.seg.payload.length, o.packetLen])).toEqual([[L(1), 10 * MSS, MSS]]);
    expect(s.congestionWindow).toBe(10 * MSS);
  });

  it('never exceeds the peer window, and cuts only whole packets while data remains', () => {
    const s = gsoEstablished(2_500);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 2_500 });
    s.send(new Uint8Array(10_000));
    // 2 500 usable: two whole packets; the 500-byte rest waits (sender SWS, RFC 9293 §3.8.6.2.1), as in plain mode.
    expect(drainGso(s).map((o) => [o.seg.seq, o.seg.payload.length])).toEqual([[L(1), 2_000]]);
    send(s, { ...SEG, seq: R(1), ack: L(2_001), window: 8_000 });
    const next = drainGso(s);
    expect(next.map((o) => [o.seg.seq, o.seg.payload.length])).toEqual([[L(2_001), 8_000]]);
    expect(seqSub(seqAdd(next[0].seg.seq, 8_000), L(2_001))).toBeLessThanOrEqual(8_000);
  });

  it('a segment that ends the queue carries the short last packet, PSH and a FIN', () => {
    const s = gsoEstablished(60_000);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 60_000 });
    s.send(new Uint8Array(3_500));
    s.close();
    const [o, ...rest] = drainGso(s);
    expect(rest).toEqual([]);
    expect(o.seg).toMatchObject({ seq: L(1), flags: ACK | PSH | FIN });
    expect(o.seg.payload.length).toBe(3_500);
    expect(cut(o).map((p) => [p.payload.length, p.flags])).toEqual([[1000, ACK], [1000, ACK], [1000, ACK], [500, ACK | PSH | FIN]]);
  });

  it('grows with cwnd as ACKs arrive and stays within it', () => {
    const s = gsoEstablished(65_535);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 65_535 });
    s.send(new Uint8Array(150_000));
    let una = L(1);
    for (let round = 0; round < 6; round++) {
      const out = drainGso(s);
      let inFlight = 0;
      for (const o of out) inFlight += o.seg.payload.length;
      expect(inFlight).toBeLessThanOrEqual(Math.min(65_535, s.congestionWindow));
      for (const o of out) una = seqAdd(o.seg.seq, o.seg.payload.length);
      send(s, { ...SEG, seq: R(1), ack: una, window: 65_535 });
    }
    expect(s.congestionWindow).toBeGreaterThan(10 * MSS);
  });

  it('retransmits a single packet after an RTO (go-back-N then resumes in large segments)', () => {
    const s = gsoEstablished(60_000);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 60_000 });
    s.send(new Uint8Array(20_000));
    drainGso(s, 0);
    const at = s.pollAt() as number;
    const [re, ...rest] = drainGso(s, at);
    expect(rest).toEqual([]);
    expect(re.seg).toMatchObject({ seq: L(1) });
    expect(re.seg.payload.length).toBe(MSS);
  });

  it('SACK blocks in our segments shrink the payload per packet (MSS excludes options)', () => {
    const s = established({ ...GSO }, { mss: MSS, window: 60_000, sackPermitted: true });
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 60_000 });
    send(s, { ...SEG, seq: R(11), ack: L(1), window: 60_000, payload: new Uint8Array(5) }); // a hole at R(1)
    s.send(new Uint8Array(5_000));
    const out = drainGso(s);
    expect(out[0].seg.sackRanges).toEqual([[R(11), R(16)]]);
    expect(out[0].packetLen).toBe(MSS - 12); // NOP NOP SACK len + one 8-byte block
    for (const p of cut(out[0]).slice(0, -1)) expect(p.payload.length).toBe(MSS - 12);
  });
});

// ---- plain vs GSO: the same packets on the wire ----

const opArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 30_000 }).map((n) => ({ kind: 'send' as const, n })) },
  {
    weight: 4,
    arbitrary: fc
      .record({
        frac: fc.double({ min: 0, max: 1, noNaN: true }),
        window: fc.integer({ min: 0, max: 65_535 }),
        // SACK blocks as fractions of what is outstanding beyond the new SND.UNA (used when SACK was negotiated)
        sack: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: 3 }),
      })
      .map((a) => ({ kind: 'ack' as const, ...a })),
  },
  // A duplicate ACK SACKing part of what is outstanding (a loss at SND.UNA): drives the SACK recovery.
  {
    weight: 3,
    arbitrary: fc
      .array(fc.tuple(fc.double({ min: 0.05, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 1, maxLength: 3 })
      .map((sack) => ({ kind: 'ack' as const, frac: 0, window: 65_535, sack })),
  },
  { weight: 1, arbitrary: fc.record({ gap: fc.integer({ min: 0, max: 3_000 }), len: fc.integer({ min: 1, max: 2_000 }) }).map((d) => ({ kind: 'data' as const, ...d })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3_000 }).map((ms) => ({ kind: 'wait' as const, ms })) },
  { weight: 1, arbitrary: fc.constantFrom('close' as const, 'recv' as const).map((kind) => ({ kind })) },
);

describe('plain and GSO sockets put the same byte stream on the wire', () => {
  it('cut like the kernel cuts them, GSO segments are exactly the plain packets (random sends, ACKs, SACKs, windows, loss)', () => {
    let recoveries = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65_535 }), fc.boolean(), fc.array(opArb, { maxLength: 60, size: 'medium' }), (synWindow, sack, ops) => {
        const syn = { ...SYN_SEG, mss: MSS, window: synWindow, sackPermitted: sack };
        const mk = (gso: boolean) => {
          const cfg: TcpSocketConfig = { mss: MSS, rxBufferSize: 65_535, txBufferSize: 100_000, initialSeq: L(0), ...(gso ? { maxSegment: 64_000 } : {}) };
          const s = TcpSocket.fromSyn(syn, 0, cfg) as TcpSocket;
          s.accept(0);
          return s;
        };
        const plain = mk(false);
        const gso = mk(true);
        let now = 0;
        let sndMax = L(1);
        let una = L(1);
        let rcvNxt = R(1);
        const step = (): void => {
          const a: TcpRepr[] = [];
          plain.dispatch(now, (seg) => a.push({ ...seg, payload: seg.payload.slice(), sackRanges: [...seg.sackRanges] }));
          const b: TcpRepr[] = [];
          gso.dispatch(now, (seg, packetLen) => b.push(...cut({ seg: { ...seg, payload: seg.payload.slice(), sackRanges: [...seg.sackRanges] }, packetLen })));
          expect(b).toEqual(a);
          for (const seg of a) {
            const end = seqAdd(seg.seq, seg.payload.length + (seg.flags & (TcpFlags.FIN | TcpFlags.SYN) ? 1 : 0));
            if (seqGt(end, sndMax)) sndMax = end;
          }
          expect(gso.state).toBe(plain.state);
        };
        step(); // SYN-ACK
        for (const s of [plain, gso]) s.process({ ...SEG, seq: R(1), ack: L(1), window: synWindow }, now);
        step();
        for (const op of ops) {
          switch (op.kind) {
            case 'send': {
              const data = new Uint8Array(op.n).fill(op.n & 0xff);
              expect(gso.send(data)).toBe(plain.send(data));
              break;
            }
            case 'ack': {
              una = seqAdd(una, Math.floor(Math.max(0, seqSub(sndMax, una)) * op.frac));
              const out = Math.max(0, seqSub(sndMax, una));
              const sackRanges = op.sack
                .map(([a, b]): [number, number] => {
                  const left = Math.floor(out * a);
                  return [seqAdd(una, left), seqAdd(una, left + Math.floor((out - left) * b))];
                })
                .filter(([l, r]) => seqGt(r, l));
              for (const s of [plain, gso]) s.process({ ...SEG, seq: rcvNxt, ack: una, window: op.window, sackRanges }, now);
              break;
            }
            case 'data': {
              // In order (gap 0) or beyond a hole: out-of-order data makes both send SACK blocks.
              const seq = seqAdd(rcvNxt, op.gap);
              for (const s of [plain, gso]) s.process({ ...SEG, seq, ack: una, window: 65_535, payload: new Uint8Array(op.len) }, now);
              if (op.gap === 0) rcvNxt = seqAdd(rcvNxt, op.len);
              break;
            }
            case 'wait':
              now += op.ms;
              break;
            case 'close':
              plain.close();
              gso.close();
              break;
            case 'recv':
              expect(gso.recv()?.length).toBe(plain.recv()?.length);
              break;
          }
          step();
        }
        if (plain.stats.fastRetransmits > 0) recoveries++;
      }),
      { numRuns: 300 },
    );
    expect(recoveries).toBeGreaterThan(30); // the loss recovery paths were exercised
  });
});
