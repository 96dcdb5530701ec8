// Assembler: merging, front removal with re-basing, the range limit, and a model-based fast-check run.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Assembler } from '../../../src/netstack/storage/index';

describe('Assembler', () => {
  it('merges overlapping and adjacent ranges', () => {
    const a = new Assembler();
    a.add(10, 5);
    a.add(20, 5);
    expect(a.ranges()).toEqual([[10, 15], [20, 25]]);
    a.add(15, 5); // fills the gap exactly: adjacent on both sides
    expect(a.ranges()).toEqual([[10, 25]]);
    a.add(5, 30);
    expect(a.ranges()).toEqual([[5, 35]]);
    a.add(0, 0);
    expect(a.ranges()).toEqual([[5, 35]]);
  });

  it('delivers once the hole at the front fills and re-bases the rest', () => {
    const a = new Assembler();
    a.add(4, 4);
    a.add(12, 4);
    expect(a.removeFront()).toBe(0);
    a.add(0, 4);
    expect(a.removeFront()).toBe(8);
    expect(a.ranges()).toEqual([[4, 8]]);
    expect(a.removeFront()).toBe(0);
  });

  it('refuses a new hole beyond maxRanges but still merges into existing ones', () => {
    const a = new Assembler(2);
    expect(a.add(10, 1)).toBe(true);
    expect(a.add(20, 1)).toBe(true);
    expect(a.add(30, 1)).toBe(false);
    expect(a.add(11, 2)).toBe(true);
    expect(a.ranges()).toEqual([[10, 13], [20, 21]]);
  });

  it('matches a bitmap model', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 10 })), { maxLength: 30 }), (adds) => {
        const a = new Assembler(100);
        let bits = new Array<boolean>(200).fill(false);
        for (const [off, size] of adds) {
          a.add(off, size);
          for (let k = off; k < off + size; k++) bits[k] = true;
          const n = a.removeFront();
          let m = 0;
          while (bits[m]) m++;
          expect(n).toBe(m);
          bits = bits.slice(m).concat(new Array<boolean>(m).fill(false));
          const ranges: Array<[number, number]> = [];
          for (let k = 0; k < bits.length; k++) {
            if (bits[k] && (k === 0 || !bits[k - 1])) ranges.push([k, k]);
            if (bits[k]) ranges[ranges.length - 1][1] = k + 1;
          }
          expect(a.ranges()).toEqual(ranges);
        }
      }),
    );
  });
});
