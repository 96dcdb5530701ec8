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
});
