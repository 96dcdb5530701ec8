// Plain-text snapshots for when stdout is not a terminal (pipes, logs, CI): the status summary and the same flow
// table rows as the live view, without colour or cursor movement.

import { bytes, datagramSummary, duration, linkPathSuffix, rate, rtt } from './format';
import { isDaemonStatus } from '../control/protocol';
import { modeLabel, sortFlows, type TuiFlow, type TuiStatus } from './model';
import { tableLayout } from './table';

export function plainStatus(s: TuiStatus, socket: string): string {
  const rows: Array<[string, string]> = [
    ['socket', socket],
    ['mode', modeLabel(s.mode)],
    ['relay', s.relay || '?'],
  ];
  if (s.mode === 'expose') {
    const t = s.tunnel;
    const access = t.access === 'public' ? 'public' : t.access === 'password' ? 'password required' : 'tunnel secret required';
    rows.push(['tunnel', `${t.kind} ${t.url} → ${t.origin} (${t.connected ? 'connected' : 'not connected'}, ${access})`]);
    rows.push([t.kind === 'tcp' ? 'connections' : 'requests', `${t.requests} (${t.inFlight} open, ${t.failed} failed, ${t.requestRate.toFixed(1)}/s)`]);
  }
  if (s.room !== null) rows.push(['room', s.room]);
  if (s.exitPeer !== null) rows.push(['exit peer', s.exitPeer ? 'online' : 'offline']);
  rows.push(
    ['kill switch', s.killSwitch === null ? 'n/a' : s.killSwitch ? 'ON' : 'OFF'],
    ['relay links', s.connections.length ? s.connections.map((c) => `#${c.id} ${c.streams} streams ${rtt(c.rttMs)}${linkPathSuffix(c)}`).join('; ') : 'none (reconnecting)'],
    ['bypass', s.bypass === null ? 'n/a' : s.bypass.length ? s.bypass.join(', ') : '(none)'],
    ['flows', `${s.flows} live · ↓ ${rate(s.rateDown)} ↑ ${rate(s.rateUp)} · total ↓ ${bytes(s.bytesDown)} ↑ ${bytes(s.bytesUp)}`],
  );
  if (isDaemonStatus(s) && s.udp) rows.push(['udp/icmp', datagramSummary(s.udp, s.mode)]);
  rows.push(['uptime', duration(s.uptimeMs)]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export function plainFlows(flows: readonly TuiFlow[], width: number): string {
  if (flows.length === 0) return 'no flows';
  const layout = tableLayout(width);
  return [layout.header, ...sortFlows(flows).map(layout.row)].map((l) => l.trimEnd()).join('\n');
}

export function plainSnapshot(s: TuiStatus, flows: readonly TuiFlow[], socket: string, width: number): string {
  return `${plainStatus(s, socket)}\n\n${plainFlows(flows, width)}\n`;
}
