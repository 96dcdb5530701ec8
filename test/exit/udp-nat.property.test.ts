// Random sequences of send/close/closeAll/clock moves on random flow ids, on real sockets: the NAT never throws,
// never holds more than maxFlows flows, reports only DatagramClose codes, and frees every socket at the end.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LookupFn } from '../../src/exit/connect';
import { UdpNat } from '../../src/exit/udp-nat';
import type { Target } from '../../src/protocol/address';
import { DatagramClose } from '../../src/protocol/datagram-types';
import { ManualClock } from './manual-clock';
import { Inbox, openFds, UdpEcho } from './udp-peers';

let echo4: UdpEcho;
let echo6: UdpEcho;
beforeAll(async () => {
  echo4 = await UdpEcho.start('127.0.0.1');
  echo6 = await UdpEcho.start('::1');
});
afterAll(() => {
  echo4?.close();
  echo6?.close();
});

const table: Record<string, string[]> = {
  'v4.test': ['127.0.0.1'],
  'v6.test': ['::1'],
  'both.test': ['::1', '127.0.0.1'],
};
const lookup: LookupFn = async (name) => {
  const answers = table[name];
  if (!answers) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const targetArb: fc.Arbitrary<() => Target> = fc.oneof(
  fc.constant(() => echo4.target),
  fc.constant(() => echo6.target),
  fc.constantFrom('v4.test', 'v6.test', 'both.test', 'gone.test', 'localhost').map(
    (host) => () => ({ host, port: echo4.port }),
  ),
  // loopback only: with allowLan nothing may leave this host
  fc.constantFrom('127.0.0.1', '::1', '::ffff:127.0.0.1', '127.0.0.2').chain((host) =>
    fc.constantFrom(0, 9, 53, 65_535).map((port) => () => ({ host, port })),
  ),
);

type Op =
  | { kind: 'send'; flow: number; target: () => Target; size: number }
  | { kind: 'close'; flow: number }
  | { kind: 'closeAll' }
  | { kind: 'advance'; ms: number };

const flowArb = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 0xffff_ffff }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), flow: flowArb, target: targetArb, size: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.constant(65_520)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('close' as const), flow: flowArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'closeAll' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 200_000 }) }) },
);

const closeCodes = new Set<number>(Object.values(DatagramClose));

it('random send/close/closeAll never throw, keep size ≤ maxFlows and free every socket', async () => {
  const fdsBefore = openFds();
  await fc.assert(
    fc.asyncProperty(fc.boolean(), fc.integer({ min: 1, max: 6 }), fc.array(opArb, { maxLength: 40 }), async (allowLan, maxFlows, ops) => {
      const inbox = new Inbox();
      const clock = new ManualClock();
      const nat = new UdpNat({ allowLan, maxFlows, lookup, clock, deliver: inbox.deliver, closed: inbox.close });
      try {
        for (const op of ops) {
          if (op.kind === 'send') nat.send(op.flow, op.target(), new Uint8Array(op.size));
          else if (op.kind === 'close') nat.close(op.flow);
          else if (op.kind === 'closeAll') nat.closeAll();
          else clock.advance(op.ms);
          expect(nat.size).toBeLessThanOrEqual(maxFlows);
          expect(nat.stats().flows).toBe(nat.size);
          // Let lookups and socket events of this step run (no wall-clock wait: one turn of the event loop).
          await new Promise((resolve) => setImmediate(resolve));
          expect(nat.size).toBeLessThanOrEqual(maxFlows);
        }
      } finally {
        nat.closeAll(); // a failed run must not leave sockets to the shrunk ones
      }
      for (const c of inbox.closed) expect(closeCodes.has(c.code)).toBe(true);
      nat.closeAll();
      expect(nat.size).toBe(0);
      expect(openFds()).toBe(fdsBefore);
      await new Promise((resolve) => setImmediate(resolve)); // late lookups land on a closed NAT
      expect(nat.size).toBe(0);
    }),
    { numRuns: 150 },
  );
});
