import { describe, expect, it } from 'vitest';
import { RateMeter } from '../../src/control/rate';

describe('RateMeter', () => {
  it('is zero with one sample, then bytes per second over the sliding window', () => {
    const m = new RateMeter();
    m.sample(0, 0, 0);
    expect([m.upRate, m.downRate]).toEqual([0, 0]);
    for (let t = 250; t <= 4000; t += 250) m.sample(t, t * 10, t * 1000); // 10 kB/s up, 1 MB/s down
    expect(m.upRate).toBeCloseTo(10_000, 6);
    expect(m.downRate).toBeCloseTo(1_000_000, 6);
  });

  it('forgets a burst once it leaves the window', () => {
    const m = new RateMeter();
    m.sample(0, 0, 0);
    m.sample(250, 0, 5_000_000);
    expect(m.downRate).toBeCloseTo(20_000_000, 6);
    for (let t = 500; t <= 3000; t += 250) m.sample(t, 0, 5_000_000);
    expect(m.downRate).toBe(0);
  });
});
