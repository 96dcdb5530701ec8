import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RATE_WINDOW_MS, RateMeter, SampleTicks, TickedRate } from '../../src/control/rate';

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

/** The meter as it was before meters shared their clock and dropped idle rings: one full ring per meter. */
class ReferenceMeter {
  private readonly t: number[] = [];
  private readonly up: number[] = [];
  private readonly down: number[] = [];
  upRate = 0;
  downRate = 0;

  sample(nowMs: number, bytesUp: number, bytesDown: number): void {
    this.t.push(nowMs);
    this.up.push(bytesUp);
    this.down.push(bytesDown);
    if (this.t.length > 16) [this.t, this.up, this.down].forEach((a) => a.shift());
    let oldest = 0;
    while (oldest < this.t.length - 1 && nowMs - this.t[oldest + 1] >= RATE_WINDOW_MS) oldest++;
    const span = nowMs - this.t[oldest];
    const last = this.t.length - 1;
    this.upRate = span <= 0 ? 0 : ((this.up[last] - this.up[oldest]) * 1000) / span;
    this.downRate = span <= 0 ? 0 : ((this.down[last] - this.down[oldest]) * 1000) / span;
  }
}

describe('TickedRate on shared SampleTicks', () => {
  it('gives exactly the rates of a full ring per meter, for meters that join late, idle and move again', () => {
    // Each step: a time increment, and per meter (3 of them, joining at steps 0, 5, 20) a byte increment that is
    // often 0, so rings are dropped after a quiet window and refilled at the next change.
    const step = fc.record({
      dt: fc.oneof(fc.constant(250), fc.integer({ min: 0, max: 3_000 })),
      adds: fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 100_000 })), { minLength: 6, maxLength: 6 }),
    });
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 120 }), (steps) => {
      const ticks = new SampleTicks();
      const joins = [0, 5, 20];
      const meters = joins.map(() => ({ got: new TickedRate(), want: new ReferenceMeter(), up: 0, down: 0 }));
      let now = 0;
      steps.forEach((s, i) => {
        now += s.dt;
        ticks.advance(now);
        meters.forEach((m, j) => {
          if (i < joins[j]) return;
          m.up += s.adds[2 * j];
          m.down += s.adds[2 * j + 1];
          m.got.sample(ticks, m.up, m.down);
          m.want.sample(now, m.up, m.down);
          expect([m.got.upRate, m.got.downRate]).toEqual([m.want.upRate, m.want.downRate]);
        });
      });
    }), { numRuns: 300 });
  });

  it('an idle meter drops its ring after a quiet window; the next change gives the rate over the full window', () => {
    const ticks = new SampleTicks();
    const m = new TickedRate();
    const ring = () => (m as unknown as { ring: Float64Array | null }).ring;
    let t = 0;
    const sample = (up: number) => {
      ticks.advance(t);
      m.sample(ticks, up, 0);
      t += 250;
    };
    sample(0);
    sample(1_000);
    expect(ring()).not.toBeNull();
    for (let i = 0; i < 16; i++) sample(1_000);
    expect(ring()).toBeNull();
    expect(m.upRate).toBe(0);
    sample(3_000); // 2 000 bytes over the 2 s window
    expect(m.upRate).toBe(1_000);
  });
});
