// The flow table's columns, chosen by terminal width: 80 columns show what matters (destination, path, state,
// rates, bytes; UDP/ICMP flows say so in front of the destination); wider terminals add age, protocol and source,
// and the destination takes what is left.
// Pure strings, so the Ink table and the plain-text snapshot print the same rows.

import { bytes, duration, fit } from './format';
import type { TuiFlow } from './model';

interface Column {
  title: string;
  /** Fixed width; the one column without it (destination) takes the remaining space. */
  width?: number;
  align?: 'left' | 'right';
  /** Shown only when the terminal is at least this wide. */
  minTerminal?: number;
  /** …or at most this wide. */
  maxTerminal?: number;
  cell(f: TuiFlow): string;
}

const DEST_MIN = 12;

function destination(f: TuiFlow): string {
  return f.target && f.target !== f.destination ? `${f.destination} → ${f.target}` : f.destination;
}
const GAP = ' ';

const COLUMNS: Column[] = [
  { title: 'ID', width: 5, align: 'right', cell: (f) => String(f.id) },
  { title: 'PROTO', width: 5, minTerminal: 120, cell: (f) => f.protocol },
  { title: 'SOURCE', width: 21, minTerminal: 150, cell: (f) => f.source },
  // DNS flows go to the resolver address but are carried to the upstream: show both.
  { title: 'DESTINATION', minTerminal: 120, cell: destination },
  // Without the PROTO column a UDP or ICMP flow names its protocol here (TCP, the common case, stays unmarked).
  { title: 'DESTINATION', maxTerminal: 119, cell: (f) => `${f.protocol === 'tcp' ? '' : `${f.protocol} `}${destination(f)}` },
  // Relay mode: how the flow's link reaches the exit peer now (room, direct, turn) where known, else exit.
  { title: 'PATH', width: 6, cell: (f) => f.via ?? f.path },
  { title: 'STATE', width: 11, cell: (f) => f.state },
  { title: 'DOWN/s', width: 8, align: 'right', cell: (f) => bytes(f.rateDown) },
  { title: 'UP/s', width: 8, align: 'right', cell: (f) => bytes(f.rateUp) },
  { title: 'DOWN', width: 8, align: 'right', cell: (f) => bytes(f.bytesDown) },
  { title: 'UP', width: 8, align: 'right', cell: (f) => bytes(f.bytesUp) },
  { title: 'AGE', width: 6, align: 'right', minTerminal: 100, cell: (f) => duration(f.ageMs) },
];

export interface TableLayout {
  header: string;
  row(f: TuiFlow): string;
}

export function tableLayout(width: number): TableLayout {
  const cols = COLUMNS.filter((c) => (c.minTerminal ?? 0) <= width && width <= (c.maxTerminal ?? Infinity));
  const fixed = cols.reduce((n, c) => n + (c.width ?? 0), 0) + GAP.length * (cols.length - 1);
  const destWidth = Math.max(DEST_MIN, width - fixed);
  const widths = cols.map((c) => c.width ?? destWidth);
  const line = (cells: string[]): string => fit(cells.map((t, i) => fit(t, widths[i], cols[i].align)).join(GAP), width);
  return {
    header: line(cols.map((c) => c.title)),
    row: (f) => line(cols.map((c) => c.cell(f))),
  };
}
