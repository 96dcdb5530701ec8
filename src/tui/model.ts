// What the TUI knows about a daemon or client: status, flows and log lines read from control-socket events
// (docs/CONTROL.md). Parsing is tolerant — a missing or mistyped field becomes a neutral default — because zksd,
// `zks socks5` and `zks p2p-client` answer with different subsets, and an older peer must not crash the view.

import type { FlowSnapshot } from '../daemon/control/protocol';

export interface RelayLink {
  id: number;
  streams: number;
  /** -1 until the first keepalive answer. */
  rttMs: number;
}

export interface TuiStatus {
  mode: string;
  relay: string;
  pid: number | null;
  /** null where there is none to toggle (socks5 / p2p-client modes). */
  killSwitch: boolean | null;
  /** null where bypass routes do not exist (socks5 / p2p-client modes). */
  bypass: string[] | null;
  /** Relay mode: the room name and whether its exit peer is present; null when the peer does not say. */
  room: string | null;
  exitPeerOnline: boolean | null;
  connections: RelayLink[];
  flows: number;
  uptimeMs: number;
  bytesUp: number;
  bytesDown: number;
  rateUp: number;
  rateDown: number;
}

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
const boolOrNull = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

export function parseStatus(raw: unknown): TuiStatus {
  const s = obj(raw);
  const conns = Array.isArray(s.connections) ? s.connections.map(obj) : [];
  const room = s.room;
  return {
    mode: str(s.mode, 'unknown'),
    relay: str(s.relay),
    pid: typeof s.pid === 'number' ? s.pid : null,
    killSwitch: boolOrNull(s.killSwitch),
    bypass: Array.isArray(s.bypass) ? s.bypass.filter((c): c is string => typeof c === 'string') : null,
    // A room may be reported as its name or as { name, exitPeer } — accept both.
    room: typeof room === 'string' ? room : typeof obj(room).name === 'string' ? (obj(room).name as string) : null,
    exitPeerOnline: boolOrNull(s.exitPeerOnline ?? s.exitPeer ?? obj(room).exitPeer),
    connections: conns.map((c) => ({ id: num(c.id), streams: num(c.streams), rttMs: num(c.rttMs, -1) })),
    flows: num(s.flows),
    uptimeMs: num(s.uptimeMs),
    bytesUp: num(s.bytesUp),
    bytesDown: num(s.bytesDown),
    rateUp: num(s.rateUp),
    rateDown: num(s.rateDown),
  };
}

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
    default:
      return mode;
  }
}
