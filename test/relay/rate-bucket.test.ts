// The token bucket behind room message rates and a tunnel's request rate and failed-login budget
// (src/relay-worker/room-limits.ts): pure arithmetic on the caller's clock, so every case here is exact.
import { describe, expect, it } from 'vitest';
import { RateBucket } from '../../src/relay-worker/room-limits';

describe('RateBucket', () => {
  it('starts full, spends one token per take, refills at the rate up to the burst', () => {
    const b = new RateBucket(10, 20, 0);
    for (let i = 0; i < 20; i++) expect(b.take(0)).toBe(true);
    expect(b.take(0)).toBe(false);
    expect(b.take(99)).toBe(false); // 0.99 of a token
    expect(b.take(100)).toBe(true);
    expect(b.take(10_000)).toBe(true);
    for (let i = 0; i < 19; i++) expect(b.take(10_000)).toBe(true); // refilled to the burst, not beyond
    expect(b.take(10_000)).toBe(false);
  });

  it('canTake looks without spending (a tunnel checks its failed-login budget before every password)', () => {
    const b = new RateBucket(1, 1, 0);
    expect(b.canTake(0)).toBe(true);
    expect(b.canTake(0)).toBe(true);
    expect(b.take(0)).toBe(true);
    expect(b.canTake(500)).toBe(false);
    expect(b.canTake(1000)).toBe(true);
  });

  it('a clock that goes backwards refills nothing', () => {
    const b = new RateBucket(1000, 1, 1000);
    expect(b.take(1000)).toBe(true);
    expect(b.take(0)).toBe(false);
  });
});
