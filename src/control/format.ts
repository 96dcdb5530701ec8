// How the control socket's figures read as text — byte counts, rates, durations — for `zks status`/`zks flows`,
// `zksd status` and zks-tui alike, so every view shows the same figure the same way. Units are decimal (kB = 1000 B);
// a value is never shown as "1000" of a unit (it moves up one), and bad input (negative, NaN) shows as "?".

const BYTE_UNITS = [
  { size: 1e3, name: 'kB', digits: 1 },
  { size: 1e6, name: 'MB', digits: 1 },
  { size: 1e9, name: 'GB', digits: 2 },
] as const;

/** 0 B, 999 B, 1.0 kB, 999.9 kB, 1.0 MB, 1.00 GB — at most 8 columns below a terabyte. */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (Math.round(n) < 1000) return `${Math.round(n)} B`;
  for (let i = 0; i < BYTE_UNITS.length; i++) {
    const u = BYTE_UNITS[i];
    const text = (n / u.size).toFixed(u.digits);
    // Rounded up to 1000 of this unit: the next one says it better (999.96 kB → 1.0 MB).
    if (Number(text) < 1000 || i === BYTE_UNITS.length - 1) return `${text} ${u.name}`;
  }
  return '?'; // unreachable: the last unit always answers
}

export function rate(bytesPerSecond: number): string {
  return `${bytes(bytesPerSecond)}/s`;
}

/** 0s, 59s, 1m00s, 59m59s, 1h00m, 23h59m, 1d00h (whole seconds, rounded down). */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** zksd's UDP/ICMP summary from `status.udp`: live UDP flows, refusals, pings answered and how they are answered. */
export function datagramSummary(udp: Readonly<Record<string, number>>, mode: 'direct' | 'relay'): string {
  const n = (k: string): number => udp[k] ?? 0;
  const refused = mode === 'direct'
    ? ` · ${n('udpRefused')} refused (ICMP port unreachable: the Worker carries no UDP)`
    : n('udpRefused') > 0 ? ` · ${n('udpRefused')} refused` : '';
  const how = mode === 'direct' ? 'TCP connect to 443 via the Worker' : 'ICMP at the exit peer';
  return `${n('udpFlows')} UDP flows${refused} · pings ${n('echoAnswered')}/${n('echoForwarded')} answered (${how})`;
}

/** A relay link's path when it is not the Worker: " via room", " via direct, rtt 0.4 ms" (PROTOCOL.md §3.6). */
export function linkPathSuffix(c: { path?: string; pathRttMs?: number; resuming?: boolean; resumes?: number }): string {
  const resume = c.resuming ? ', RESUMING (WebSocket lost, streams stalled)' : (c.resumes ?? 0) > 0 ? `, resumed ${c.resumes}×` : '';
  if (!c.path || c.path === 'worker') return resume;
  return ` via ${c.path}${(c.pathRttMs ?? -1) >= 0 ? `, rtt ${c.pathRttMs!.toFixed(1)} ms` : ''}${resume}`;
}

/** One relay link: "#1 3 streams rtt 21.4 ms" and its path (linkPathSuffix). */
export function relayLinkText(c: { id: number; streams: number; rttMs: number; path?: string; pathRttMs?: number; resuming?: boolean; resumes?: number }): string {
  return `#${c.id} ${c.streams} streams${c.rttMs >= 0 ? ` rtt ${c.rttMs.toFixed(1)} ms` : ''}${linkPathSuffix(c)}`;
}
