// The one set of formatters behind `zks status`, `zks flows`, `zksd status` and zks-tui: edge values at every unit
// boundary (never "1000" of a unit), and bad input shown as "?" rather than a misleading figure.
import { describe, expect, it } from 'vitest';
import { bytes, duration, rate } from '../../src/control/format';
import { bytes as tuiBytes, duration as tuiDuration } from '../../src/tui/format';

describe('bytes', () => {
  it.each([
    [0, '0 B'], [1, '1 B'], [999, '999 B'], [999.4, '999 B'], [999.5, '1.0 kB'], [1000, '1.0 kB'],
    [1049, '1.0 kB'], [1050, '1.1 kB'], [999_949, '999.9 kB'], [999_950, '1.0 MB'], [1e6, '1.0 MB'],
    [999_949_999, '999.9 MB'], [999_950_000, '1.00 GB'], [1e9, '1.00 GB'], [1.5e12, '1500.00 GB'],
  ])('%d → %s', (n, text) => expect(bytes(n)).toBe(text));

  it('negative, NaN and infinite counts are "?"', () => {
    for (const n of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(bytes(n)).toBe('?');
  });

  it('rates are bytes per second', () => {
    expect(rate(2_450_000)).toBe('2.5 MB/s');
    expect(rate(0)).toBe('0 B/s');
  });
});

describe('duration', () => {
  it.each([
    [0, '0s'], [999, '0s'], [1000, '1s'], [59_999, '59s'], [60_000, '1m00s'], [3_599_999, '59m59s'],
    [3_600_000, '1h00m'], [86_399_999, '23h59m'], [86_400_000, '1d00h'], [90_061_000, '1d01h'],
  ])('%d ms → %s', (ms, text) => expect(duration(ms)).toBe(text));

  it('a negative age (clock skew) is 0s; NaN and infinity are "?"', () => {
    expect(duration(-5000)).toBe('0s');
    expect(duration(Number.NaN)).toBe('?');
    expect(duration(Number.POSITIVE_INFINITY)).toBe('?');
  });
});

describe('one copy', () => {
  it('zks-tui uses the same functions as the CLI', () => {
    expect(tuiBytes).toBe(bytes);
    expect(tuiDuration).toBe(duration);
  });
});
