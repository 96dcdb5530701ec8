// Plain-text views of the control socket's answers for `zks status`, `zks flows`, `zksd up` and `zksd status`:
// the StatusSnapshot of zksd or of a proxy (control/protocol.ts), figures formatted by control/format.ts.

import { bytes, datagramSummary, duration, relayLinkText } from '../control/format';
import { isDaemonStatus, type FlowSnapshot, type RelayLinkSnapshot, type StatusSnapshot } from '../control/protocol';

function relayLinks(conns: readonly RelayLinkSnapshot[]): string {
  if (conns.length === 0) return 'none (reconnecting)';
  return conns.map((c) => `${relayLinkText(c)}${c.relay ? ` on ${c.relay}` : ''}`).join('; ');
}

/** The relay, or with several each one and whether it is up or left (and why). */
function relaysText(s: { relay: string; relays?: Array<{ url: string; up: boolean; error: string | null }> }): string {
  return s.relays ? s.relays.map((r) => `${r.url} ${r.up ? 'up' : `left (${r.error ?? 'down'})`}`).join(', ') : s.relay;
}

function table(rows: ReadonlyArray<[string, string]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export function formatStatus(s: StatusSnapshot): string {
  const flows: [string, string] = ['flows', `${s.flows} (${bytes(s.bytesUp)} up, ${bytes(s.bytesDown)} down)`];
  const uptime: [string, string] = ['uptime', duration(s.uptimeMs)];
  if (s.mode === 'expose') {
    const t = s.tunnel;
    const access = t.access === 'public' ? 'public' : t.access === 'password' ? 'password required' : 'tunnel secret required';
    const what = t.kind === 'tcp' ? 'connections' : 'requests';
    return table([
      ['mode', `expose (agent of ${t.kind.toUpperCase()} tunnel "${t.id}", ${access})`],
      ['tunnel', `${t.url} → ${t.origin} (${t.connected ? 'connected' : t.kind === 'tcp' ? 'standing by or reconnecting' : 'reconnecting'})`],
      ['relay', s.relay],
      [what, `${t.requests} (${t.inFlight} open, ${t.failed} failed, ${t.requestRate.toFixed(1)}/s) — ${bytes(s.bytesUp)} in, ${bytes(s.bytesDown)} out`],
      uptime,
    ]);
  }
  if (!isDaemonStatus(s)) {
    return table([
      ['mode', `${s.mode} (proxy on ${s.listen}; zksd is not running)`],
      ['relay', relaysText(s)],
      ['relay links', relayLinks(s.connections)],
      flows,
      uptime,
    ]);
  }
  const bypass = s.bypass ?? [];
  return table([
    ['mode', `${s.mode} (${s.mode === 'relay' ? s.via === 'worker' ? 'TCP through the Worker first; UDP, ping and what it cannot reach: room → exit peer' : 'room → exit peer' : 'the Worker connects'})`],
    ['relay', s.relays ? `${relaysText(s)} (${s.relayEndpoints.join(', ')})` : `${s.relay} (${s.relayEndpoints.join(', ')})`],
    ['tun', `${s.tun} mtu ${s.mtu}${s.offload ? ' offload' : ''} — ${s.addresses.join(', ')}`],
    ['kill switch', s.killSwitch ? 'ON' : 'OFF'],
    ['dns', `${s.resolver} → ${s.dnsUpstream} (TCP through the tunnel)`],
    ['ipv6', s.ipv6],
    ['bypass', bypass.length ? bypass.join(', ') : '(none)'],
    ['relay links', relayLinks(s.connections)],
    flows,
    ...(s.udp ? [['udp/icmp', datagramSummary(s.udp, s.mode)] as [string, string]] : []),
    uptime,
  ]);
}

export type FlowRow = Pick<FlowSnapshot, 'id' | 'source' | 'destination' | 'state' | 'bytesUp' | 'bytesDown' | 'ageMs' | 'error'> &
  { protocol: string; path: string; via?: string | null };

export function formatFlows(flows: readonly FlowRow[]): string {
  if (flows.length === 0) return 'no flows';
  const head = ['ID', 'PROTO', 'SOURCE', 'DESTINATION', 'PATH', 'STATE', 'UP', 'DOWN', 'AGE'];
  const rows = flows.map((f) => [
    String(f.id), f.protocol, f.source, f.destination, f.via ? `${f.path}/${f.via}` : f.path, f.error ? `${f.state}: ${f.error}` : f.state,
    bytes(f.bytesUp), bytes(f.bytesDown), duration(f.ageMs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
