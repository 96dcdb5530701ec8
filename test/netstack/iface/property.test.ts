// Property tests: random bytes and mutated valid packets into Interface.receive never throw, and poll emits only
// well-formed TCP (checksums verify): RSTs while no flow is accepted, and valid segments of known flows when the
// daemon accepts every SYN.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpFlags } from '../../../src/netstack/wire/index';
import { APP4, APP6, DST4, DST6, SYN_SEG, bytes, harness, ipPacket, parse, tcpPacket } from './helpers';

const VALID: Uint8Array[] = [
  tcpPacket(SYN_SEG),
  tcpPacket({ flags: TcpFlags.ACK, ack: 7, payload: bytes('data') }),
  tcpPacket({ flags: TcpFlags.FIN | TcpFlags.ACK, ack: 7 }),
  tcpPacket(SYN_SEG, APP6, DST6),
  tcpPacket({ flags: TcpFlags.ACK | TcpFlags.PSH, ack: 9, payload: bytes('six') }, APP6, DST6),
  ipPacket(APP4, DST4, 17, Uint8Array.of(0, 53, 0, 53, 0, 8, 0, 0)),
  ipPacket(APP6, DST6, 58, Uint8Array.of(128, 0, 0, 0, 0, 0, 0, 0)),
];

const mutated = fc
  .tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.option(fc.nat()))
  .map(([p, muts, cut]) => {
    const q = p.slice();
    for (const [i, v] of muts) q[i % q.length] = v;
    return cut === null ? q : q.subarray(0, cut % (q.length + 1));
  });

const packet = fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated, fc.constantFrom(...VALID));

describe('Interface.receive on hostile input', () => {
  it('never throws; without accept only RSTs leave, all well-formed', () => {
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 30 }), (pkts) => {
        const h = harness();
        let t = 0;
        for (const p of pkts) {
          h.iface.receive(p, t);
          for (const out of h.raw(t)) {
            const { seg } = parse(out);
            expect(seg.flags & TcpFlags.RST).toBe(TcpFlags.RST);
            expect(seg.payload.length).toBe(0);
          }
          t += 10;
        }
      }),
      { numRuns: 400 },
    );
  });

  it('with every SYN accepted, emits only valid TCP between a known flow’s endpoints (or RSTs)', () => {
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 30 }), (pkts) => {
        const h = harness({ onConnect: (f) => f.socket.accept(0) });
        let t = 0;
        for (const p of pkts) {
          h.iface.receive(p, t);
          const deadline = h.iface.poll(t, (out) => {
            const { seg } = parse(out);
            if (seg.flags & TcpFlags.RST) return;
            expect(h.iface.flows.some((f) => f.local.port === seg.srcPort && f.remote.port === seg.dstPort)).toBe(true);
          });
          if (deadline !== null) expect(deadline).toBeGreaterThanOrEqual(t);
          t += 10;
        }
      }),
      { numRuns: 300 },
    );
  });
});
