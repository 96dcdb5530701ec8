// The fuzz targets (fuzz/targets.ts) kept working in every `npm test`: a short run of each (the long runs are
// `npm run fuzz`), and the mutator they share.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mutated, TARGETS } from '../../fuzz/targets';

describe('fuzz targets, short run', () => {
  it.each(TARGETS.map((t) => [t.name, t] as const))('%s: 300 cases without a finding', async (_name, t) => {
    await fc.assert(t.property() as fc.IAsyncProperty<[Uint8Array]>, { numRuns: 300 });
  });

  it('mutated() makes changed copies of its seeds and leaves the seeds alone', () => {
    const seed = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const samples = fc.sample(mutated([seed]), 200);
    expect(samples.some((s) => !Buffer.from(s).equals(Buffer.from(seed)))).toBe(true);
    expect([...seed]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
