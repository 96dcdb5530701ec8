// Fixed-width text helpers shared by the Ink view and the plain-text snapshots: byte counts, rates and durations
// (control/format.ts, the same as `zks status`), and fit() which pads or cuts a cell to an exact width so table
// rows never wrap.

export { bytes, datagramSummary, duration, linkPathSuffix, rate } from '../control/format';

export function rtt(ms: number): string {
  return ms < 0 ? 'rtt –' : `rtt ${ms.toFixed(1)} ms`;
}

/** HH:MM:SS in local time, for log lines. */
export function clock(at: number): string {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Exactly `width` columns: padded, or cut with an ellipsis (our cells are ASCII plus a few 1-column arrows). */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  if (text.length > width) return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
  return align === 'right' ? text.padStart(width) : text.padEnd(width);
}
