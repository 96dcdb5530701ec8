// The RSS-over-time plot, hand-written SVG (no dependencies): one panel per lane, one line per process name,
// minutes on x, MiB on y, workerd restarts as dashed vertical lines, WebSocket kills as ticks along the bottom,
// a legend on the right of each panel.
import type { RssSample } from './rss';

export interface Marks {
  restartsMs: number[];
  killsMs: number[];
}

const W = 1100;
/** Height of one panel's plot area. */
const PH = 300;
const M = { left: 64, right: 300, top: 60, bottom: 80 };
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
  '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd', '#e6550d', '#31a354', '#756bb1', '#636363'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fx = (n: number) => n.toFixed(1);

/** A round step for about `n` ticks over [0, max]. */
function step(max: number, n: number): number {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw) ?? 10 * p;
}

/** One panel per group of names (a lane's processes), stacked, sharing the time axis. */
export function rssSvg(title: string, samples: RssSample[], panels: Array<{ title: string; names: string[] }>, marks: Marks): string {
  const out: string[] = [];
  const height = M.top + panels.length * (PH + M.bottom) + 8;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${M.left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  panels.forEach((p, i) => out.push(...panel(p.title, samples, p.names, marks, M.top + i * (PH + M.bottom))));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function panel(title: string, samples: RssSample[], names: string[], marks: Marks, top: number): string[] {
  const pw = W - M.left - M.right;
  const ph = PH;
  const maxOf = (v: number[]) => v.reduce((a, b) => Math.max(a, b), 1);
  const tMax = maxOf([...samples.map((s) => s.t), ...marks.restartsMs, ...marks.killsMs]) / 60_000;
  const yMaxRaw = maxOf(samples.flatMap((s) => names.flatMap((n) => (s.rss[n] === undefined ? [] : [s.rss[n]! / 2 ** 20]))));
  const yStep = step(yMaxRaw, 6);
  const yMax = Math.ceil((yMaxRaw * 1.05) / yStep) * yStep;
  const xStep = step(tMax, 10);
  const x = (min: number) => M.left + (min / tMax) * pw;
  const y = (mb: number) => top + ph - (mb / yMax) * ph;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${top - 6}" font-weight="bold">${esc(title)}</text>`);
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${fx(y(v))}" y2="${fx(y(v))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${fx(y(v) + 4)}" text-anchor="end">${+v.toFixed(3)}</text>`);
  }
  for (let m = 0; m <= tMax + 1e-9; m += xStep) {
    out.push(`<line x1="${fx(x(m))}" x2="${fx(x(m))}" y1="${top + ph}" y2="${top + ph + 5}" stroke="#333"/>`);
    out.push(`<text x="${fx(x(m))}" y="${top + ph + 18}" text-anchor="middle">${+m.toFixed(2)}</text>`);
  }
  out.push(`<text x="${M.left + pw / 2}" y="${top + ph + 36}" text-anchor="middle">minutes (ticks at the bottom: WebSocket kills; dashed red: workerd restarts)</text>`);
  out.push(`<text transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle">RSS (MiB)</text>`);
  out.push(`<rect x="${M.left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  for (const t of marks.restartsMs) {
    out.push(`<line x1="${fx(x(t / 60_000))}" x2="${fx(x(t / 60_000))}" y1="${top}" y2="${top + ph}" stroke="#d62728" stroke-dasharray="5 4" stroke-width="1.2"/>`);
  }
  for (const t of marks.killsMs) {
    out.push(`<line x1="${fx(x(t / 60_000))}" x2="${fx(x(t / 60_000))}" y1="${top + ph - 8}" y2="${top + ph}" stroke="#555"/>`);
  }
  names.forEach((name, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    // A gap in the line where the process was absent (workerd between its stop and start).
    const runs: string[][] = [[]];
    for (const s of samples) {
      const b = s.rss[name];
      if (b === undefined) {
        if (runs[runs.length - 1]!.length) runs.push([]);
        continue;
      }
      runs[runs.length - 1]!.push(`${fx(x(s.t / 60_000))},${fx(y(b / 2 ** 20))}`);
    }
    for (const r of runs) if (r.length) out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${r.join(' ')}"/>`);
    const ly = top + 8 + i * 18;
    out.push(`<line x1="${W - M.right + 16}" x2="${W - M.right + 44}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2.5"/>`);
    out.push(`<text x="${W - M.right + 50}" y="${ly + 4}">${esc(name)}</text>`);
  });
  return out;
}
