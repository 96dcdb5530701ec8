// What the TUI knows about a daemon or client: status (control/status.ts reads it, as for `zks status`), flows and
// log lines from control-socket events (docs/CONTROL.md). Parsing is tolerant — a missing or mistyped field becomes
// a neutral default — because zksd, `zks socks5` and `zks p2p-client` differ, and an older peer must not crash the view.

import type { FlowSnapshot, StatusSnapshot } from '../control/protocol';

/** What the header and panels show: the control protocol's own status type (read by control/status.ts). */
export type TuiStatus = StatusSnapshot;

/** A flow from the control socket (docs/CONTROL.md), parsed tolerantly: unknown protocol/path text is kept. */
export type TuiFlow = Omit<FlowSnapshot, 'protocol' | 'path'> & { protocol: string; path: string };

export interface LogEntry {
  at: number;
  message: string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);

export function parseFlows(raw: unknown): TuiFlow[] {
  if (!Array.isArray(raw)) return [];
  const out: TuiFlow[] = [];
  for (const item of raw) {
    const f = obj(item);
    if (typeof f.id !== 'number') continue; // a flow we cannot address (x) is not worth showing
    const destination = str(f.destination, '?');
    out.push({
      id: f.id,
      protocol: str(f.protocol, 'tcp'),
      source: str(f.source),
      destination,
      target: str(f.target, destination),
      path: str(f.path),
      via: typeof f.via === 'string' ? f.via : null,
      state: str(f.state),
      bytesUp: num(f.bytesUp),
      bytesDown: num(f.bytesDown),
      rateUp: num(f.rateUp),
      rateDown: num(f.rateDown),
      ageMs: num(f.ageMs),
      error: typeof f.error === 'string' ? f.error : null,
      closed: f.closed === true || (f.closed === undefined && (f.state === 'closed' || f.state === 'failed')),
    });
  }
  return out;
}

export function parseLog(raw: unknown): LogEntry | null {
  const l = obj(raw);
  if (typeof l.message !== 'string') return null;
  return { at: num(l.at, Date.now()), message: l.message };
}

/** Closed flows come after the live ones, flagged `closed` (older peers: their final state says so). */
export function isEnded(f: TuiFlow): boolean {
  return f.closed;
}

/** Live flow count and summed rates: the header's figures, in step with the table. */
export function liveTotals(flows: readonly TuiFlow[]): { flows: number; rateUp: number; rateDown: number } {
  let n = 0;
  let up = 0;
  let down = 0;
  for (const f of flows) {
    if (isEnded(f)) continue;
    n++;
    up += f.rateUp;
    down += f.rateDown;
  }
  return { flows: n, rateUp: up, rateDown: down };
}

/** Live flows by rate (then bytes, then id), closed ones after them, newest first. */
export function sortFlows(flows: readonly TuiFlow[]): TuiFlow[] {
  const live = flows.filter((f) => !isEnded(f));
  const ended = flows.filter(isEnded);
  live.sort((a, b) =>
    b.rateUp + b.rateDown - (a.rateUp + a.rateDown) || b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown) || a.id - b.id);
  ended.reverse(); // the daemon sends them oldest first
  return [...live, ...ended];
}

/** Case-insensitive substring match on what a row shows (id, addresses, path, state). */
export function filterFlows(flows: readonly TuiFlow[], filter: string): TuiFlow[] {
  const q = filter.trim().toLowerCase();
  if (q === '') return [...flows];
  return flows.filter((f) =>
    [String(f.id), f.protocol, f.source, f.destination, f.target, f.path, f.state].some((v) => v.toLowerCase().includes(q)));
}

/** Who answers on the socket: zksd (direct / relay) or a zks client (socks5, p2p-client). */
export function daemonName(mode: string): string {
  return mode === 'direct' || mode === 'relay' ? 'zksd' : `zks ${mode}`;
}

export function modeLabel(mode: string): string {
  switch (mode) {
    case 'direct':
      return 'direct (the Worker connects)';
    case 'relay':
      return 'relay (room → exit peer)';
    case 'expose':
      return 'expose (agent of an HTTP tunnel)';
    default:
      return mode;
  }
}
