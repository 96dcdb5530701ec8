// RingBuffer: wrap-around at every head position, the unallocated region, and a model-based fast-check run.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RingBuffer } from '../../../src/netstack/storage/index';

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

describe('RingBuffer', () => {
  it('enqueues what fits and dequeues in order', () => {
    const r = new RingBuffer(4);
    expect(r.enqueue(bytes(1, 2, 3))).toBe(3);
    expect(r.enqueue(bytes(4, 5, 6))).toBe(1);
    expect(r.isFull).toBe(true);
    expect(r.enqueue(bytes(7))).toBe(0);
    expect([...r.dequeue(2)]).toEqual([1, 2]);
    expect(r.enqueue(bytes(7, 8, 9))).toBe(2);
    expect([...r.dequeue()]).toEqual([3, 4, 7, 8]);
    expect(r.isEmpty).toBe(true);
  });

  it('peeks across the wrap at every head position', () => {
    for (let h = 0; h < 5; h++) {
      const r = new RingBuffer(5);
      r.enqueue(new Uint8Array(h));
      r.discard(h);
      r.enqueue(bytes(10, 11, 12, 13, 14));
      expect([...r.peek(1, 3)]).toEqual([11, 12, 13]);
      expect([...r.peek(3, 10)]).toEqual([13, 14]);
      const dst = new Uint8Array(5);
      expect(r.dequeueInto(dst)).toBe(5);
      expect([...dst]).toEqual([10, 11, 12, 13, 14]);
    }
  });

  it('writes out of order into the unallocated region and enqueues it later', () => {
    const r = new RingBuffer(6);
    r.enqueue(bytes(1, 2, 3));
    r.discard(3); // head at 3: the unallocated region wraps
    expect(r.writeUnallocated(2, bytes(30, 40, 50, 60, 70))).toBe(4); // clamped to capacity
    expect(r.length).toBe(0);
    expect(r.writeUnallocated(0, bytes(10, 20))).toBe(2);
    r.enqueueUnallocated(6);
    expect([...r.dequeue()]).toEqual([10, 20, 30, 40, 50, 60]);
    expect(r.writeUnallocated(6, bytes(1))).toBe(0);
    expect(() => r.enqueueUnallocated(7)).toThrow(RangeError);
  });

  it('regression: emptying the queue keeps out-of-order bytes already in the unallocated region', () => {
    // found by the 1 MB lossy transfer test: reading everything reset head to 0 and shifted the held segment
    const r = new RingBuffer(8);
    r.enqueue(bytes(1, 2, 3));
    r.writeUnallocated(2, bytes(60, 70)); // a segment beyond a 2-byte hole
    expect([...r.dequeue()]).toEqual([1, 2, 3]);
    r.writeUnallocated(0, bytes(40, 50)); // the hole fills
    r.enqueueUnallocated(4);
    expect([...r.dequeue()]).toEqual([40, 50, 60, 70]);
  });

  it('dequeue returns a copy that later writes do not change', () => {
    const r = new RingBuffer(4);
    r.enqueue(bytes(1, 2));
    const out = r.dequeue();
    r.enqueue(bytes(9, 9, 9, 9));
    expect([...out]).toEqual([1, 2]);
  });

  it('behaves like an array queue under random operations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 40 })), { maxLength: 60 }),
        (cap, ops) => {
          const r = new RingBuffer(cap);
          const model: number[] = [];
          for (const op of ops) {
            if (typeof op === 'number') {
              const got = [...r.dequeue(op)];
              expect(got).toEqual(model.splice(0, op));
            } else {
              const n = r.enqueue(op);
              expect(n).toBe(Math.min(op.length, cap - model.length));
              model.push(...op.subarray(0, n));
            }
            expect(r.length).toBe(model.length);
            expect([...r.peek(0, cap)]).toEqual(model);
          }
        },
      ),
    );
  });

  it('allocates storage lazily and grows it only as far as the data reaches', () => {
    const r = new RingBuffer(1 << 20);
    expect(r.allocated).toBe(0);
    r.enqueue(bytes(1));
    expect(r.allocated).toBe(1024);
    expect(r.free).toBe((1 << 20) - 1);
    r.writeUnallocated(100_000, bytes(7));
    expect(r.allocated).toBeGreaterThanOrEqual(100_002);
    expect(r.allocated).toBeLessThan(1 << 20);
  });

  it('growth keeps queued and out-of-order bytes in place when the ring had wrapped', () => {
    const r = new RingBuffer(64 * 1024);
    r.enqueue(new Uint8Array(900));
    r.discard(900); // head near the end of the first (1 KiB) storage
    expect(r.allocated).toBe(1024);
    r.enqueue(Uint8Array.from({ length: 200 }, (_, i) => i)); // wraps
    r.writeUnallocated(10, bytes(0xaa, 0xbb)); // beyond a hole, also wrapped
    expect(r.allocated).toBe(1024);
    r.writeUnallocated(9000, bytes(0xcc)); // forces growth
    expect(r.allocated).toBeGreaterThan(9200);
    r.writeUnallocated(0, new Uint8Array(10).fill(0x11));
    r.enqueueUnallocated(12);
    const out = r.dequeue();
    expect(out.length).toBe(212);
    expect([...out.subarray(0, 3)]).toEqual([0, 1, 2]);
    expect([...out.subarray(200)]).toEqual([...new Uint8Array(10).fill(0x11), 0xaa, 0xbb]);
    // 0xcc went 9000 bytes past the 200 queued then; 212 were read since: it is now 8988 past the head.
    r.enqueueUnallocated(8989);
    expect(r.peek(8988, 1)[0]).toBe(0xcc);
  });

  it('a model run with capacities beyond the first allocation (growth at every step)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4097, max: 40_000 }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 9000 }), fc.integer({ min: -9000, max: -1 })), { maxLength: 40 }),
        (cap, ops) => {
          const r = new RingBuffer(cap);
          const model: number[] = [];
          let x = 1;
          for (const op of ops) {
            if (op < 0) {
              expect([...r.dequeue(-op)]).toEqual(model.splice(0, -op));
            } else {
              const data = Uint8Array.from({ length: op }, () => (x = (x * 75 + 74) % 65537) & 0xff);
              const n = r.enqueue(data);
              model.push(...data.subarray(0, n));
            }
            expect(r.length).toBe(model.length);
            expect(r.allocated).toBeLessThanOrEqual(cap);
          }
          expect([...r.peek(0, cap)]).toEqual(model);
        },
      ),
      { numRuns: 50 },
    );
  });
});
