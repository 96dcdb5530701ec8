// Plain-text views of the daemon's control-socket answers for `zks status`, `zks flows` and `zksd up`.

const MB = 1e6;

function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= MB) return `${(n / MB).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatClientStatus(s: Record<string, unknown>, conns: { id: number; streams: number; rttMs: number }[]): string {
  const rows: Array<[string, string]> = [
    ['mode', `${String(s.mode)} (proxy on ${String(s.listen)}; zksd is not running)`],
    ['relay', String(s.relay)],
    ['relay links', conns.length ? conns.map((c) => `#${c.id} ${c.streams} streams${c.rttMs >= 0 ? ` rtt ${c.rttMs.toFixed(1)} ms` : ''}`).join('; ') : 'none (reconnecting)'],
    ['flows', `${String(s.flows)} (${bytes(Number(s.bytesUp ?? 0))} up, ${bytes(Number(s.bytesDown ?? 0))} down)`],
    ['uptime', duration(Number(s.uptimeMs ?? 0))],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export function formatStatus(s: Record<string, unknown>): string {
  if (s.mode === 'socks5' || s.mode === 'p2p-client') {
    return formatClientStatus(s, (s.connections as { id: number; streams: number; rttMs: number }[] | undefined) ?? []);
  }
  const conns = (s.connections as { id: number; streams: number; rttMs: number }[] | undefined) ?? [];
  const bypass = (s.bypass as string[] | undefined) ?? [];
  const rows: Array<[string, string]> = [
    ['mode', `${String(s.mode)} (${s.mode === 'relay' ? 'room → exit peer' : 'the Worker connects'})`],
    ['relay', `${String(s.relay)} (${((s.relayEndpoints as string[] | undefined) ?? []).join(', ')})`],
    ['tun', `${String(s.tun)} mtu ${String(s.mtu)}${s.offload ? ' offload' : ''} — ${((s.addresses as string[] | undefined) ?? []).join(', ')}`],
    ['kill switch', s.killSwitch ? 'ON' : 'OFF'],
    ['dns', `${String(s.resolver)} → ${String(s.dnsUpstream)} (TCP through the tunnel)`],
    ['ipv6', String(s.ipv6)],
    ['bypass', bypass.length ? bypass.join(', ') : '(none)'],
    ['relay links', conns.length ? conns.map((c) => `#${c.id} ${c.streams} streams${c.rttMs >= 0 ? ` rtt ${c.rttMs.toFixed(1)} ms` : ''}`).join('; ') : 'none (reconnecting)'],
    ['flows', `${String(s.flows)} (${bytes(Number(s.bytesUp ?? 0))} up, ${bytes(Number(s.bytesDown ?? 0))} down)`],
    ['uptime', duration(Number(s.uptimeMs ?? 0))],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export interface FlowRow {
  id: number;
  protocol: string;
  source: string;
  destination: string;
  path: string;
  state: string;
  bytesUp: number;
  bytesDown: number;
  ageMs: number;
  error: string | null;
}

export function formatFlows(flows: FlowRow[]): string {
  if (flows.length === 0) return 'no flows';
  const head = ['ID', 'PROTO', 'SOURCE', 'DESTINATION', 'PATH', 'STATE', 'UP', 'DOWN', 'AGE'];
  const rows = flows.map((f) => [
    String(f.id), f.protocol, f.source, f.destination, f.path, f.error ? `${f.state}: ${f.error}` : f.state,
    bytes(f.bytesUp), bytes(f.bytesDown), duration(f.ageMs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
