// fast-check: random segments (flags, seq, ack, window, payload) and application calls in any state never throw,
// never make the socket send data beyond the right edge the peer advertised (one byte more for a zero-window
// probe), and never make it acknowledge data beyond the window it advertised (one more for a FIN).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TcpSocket } from '../../../src/netstack/socket/index';
import { TcpFlags, seqAdd, seqGt, seqSub, type TcpRepr } from '../../../src/netstack/wire/index';
import { CFG, L, R, SEG, SYN_SEG } from './helpers';

const segArb = fc.record({
  flags: fc.integer({ min: 0, max: 0x1f }),
  // absolute, or `rel` bytes from the last ACK we sent (RCV.NXT), which is where the interesting cases are
  seq: fc.oneof(fc.integer({ min: -80, max: 200 }).map(R), fc.nat({ max: 0xffffffff }), fc.integer({ min: -3, max: 3 }).map((rel) => ({ rel }))),
  ack: fc.oneof(fc.integer({ min: -10, max: 200 }).map(L), fc.nat({ max: 0xffffffff })),
  window: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }) }),
  len: fc.integer({ min: 0, max: 100 }),
  // SACK blocks (honoured only when the SYN offered SACK-permitted), anywhere near what we sent
  sack: fc.array(fc.tuple(fc.integer({ min: -10, max: 200 }), fc.integer({ min: 0, max: 100 })), { maxLength: 3 }),
});
const opArb = fc.oneof(
  { weight: 6, arbitrary: segArb.map((s) => ({ kind: 'seg' as const, ...s })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 80 }).map((n) => ({ kind: 'send' as const, n })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 40 }).map((n) => ({ kind: 'recv' as const, n })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3000 }).map((ms) => ({ kind: 'wait' as const, ms })) },
  { weight: 1, arbitrary: fc.constantFrom('close' as const, 'abort' as const, 'accept' as const).map((kind) => ({ kind })) },
);

describe('TcpSocket under random input', () => {
  let busy = 0;
  it('never throws, never sends beyond the peer window, never accepts beyond its own', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffff }), fc.boolean(), fc.integer({ min: 0, max: 40 }), fc.boolean(), fc.array(opArb, { maxLength: 80 }), (synWindow, handshake, hsWindow, sackPermitted, ops) => {
        const s = TcpSocket.fromSyn({ ...SYN_SEG, window: synWindow, sackPermitted }, 0, CFG) as TcpSocket;
        let now = 0;
        let highestSent = L(0); // highest sequence number we emitted + 1 (bounds which peer ACKs are plausible)
        let peerEdge = seqAdd(L(0), synWindow); // right edge the peer advertised (max over its segments)
        let ourEdge: number | null = null; // right edge we advertised
        let lastAck = R(1);
        const check = (out: TcpRepr): void => {
          if (out.flags & TcpFlags.RST) return;
          const end = seqAdd(out.seq, out.payload.length + (out.flags & TcpFlags.SYN ? 1 : 0) + (out.flags & TcpFlags.FIN ? 1 : 0));
          if (out.payload.length > 0) expect(seqSub(seqAdd(out.seq, out.payload.length), peerEdge)).toBeLessThanOrEqual(1);
          if (seqGt(end, highestSent)) highestSent = end;
          if (out.flags & TcpFlags.ACK) {
            lastAck = out.ack;
            if (ourEdge !== null && seqGt(out.ack, ourEdge)) {
              expect(out.ack).toBe(seqAdd(ourEdge, 1));
              expect(s.remoteClosed).toBe(true);
            }
            const e = seqAdd(out.ack, out.window);
            if (ourEdge === null || seqGt(e, ourEdge)) ourEdge = e;
          }
        };
        const dispatch = (): void => s.dispatch(now, check);
        if (handshake) {
          // most runs start ESTABLISHED so the random segments reach the data paths
          ops = [{ kind: 'accept' }, { kind: 'seg', flags: TcpFlags.ACK, seq: { rel: 0 }, ack: L(1), window: hsWindow, len: 0, sack: [] }, ...ops];
        }
        for (const op of ops) {
          switch (op.kind) {
            case 'seg': {
              const seq = typeof op.seq === 'number' ? op.seq : seqAdd(lastAck, op.seq.rel);
              const sackRanges = op.sack.map(([a, n]): [number, number] => [L(a), L(a + n)]);
              const seg: TcpRepr = { ...SEG, flags: op.flags, seq, ack: op.ack, window: op.window, payload: new Uint8Array(op.len), sackRanges };
              // only ACKs the socket could accept move the peer's edge in our model
              if (op.flags & TcpFlags.ACK && seqSub(op.ack, L(0)) >= 0 && seqSub(op.ack, highestSent) <= 0) {
                const e = seqAdd(op.ack, op.window);
                if (seqGt(e, peerEdge)) peerEdge = e;
              }
              s.process(seg, now);
              if (s.sendQueued > 0 || s.recvQueued > 0) busy++;
              dispatch();
              break;
            }
            case 'send': s.send(new Uint8Array(op.n)); dispatch(); break;
            case 'recv': s.recv(new Uint8Array(op.n)); dispatch(); break;
            case 'wait': now += op.ms; dispatch(); break;
            case 'close': s.close(); dispatch(); break;
            case 'abort': s.abort(); dispatch(); break;
            case 'accept': s.accept(now); dispatch(); break;
          }
          expect(s.recvQueued).toBeLessThanOrEqual(CFG.rxBufferSize);
          expect(s.sendQueued).toBeLessThanOrEqual(CFG.txBufferSize);
          const p = s.pollAt();
          if (p !== null) expect(Number.isFinite(p)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
    expect(busy).toBeGreaterThan(1000); // the data paths were exercised
  });
});
