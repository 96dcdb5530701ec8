// Reading and writing the `status` snapshot (StatusSnapshot in protocol.ts): one tolerant reader for every
// consumer (zks status, zksd status, zks-tui) — a missing or mistyped field becomes its neutral default, since an
// older peer sends fewer fields — and the relay's display form, which zksd and the proxies both show.

import type { DaemonStatus, ExposeStatus, ProxyStatus, RelayLinkSnapshot, StatusSnapshot } from './protocol';
import type { TunnelConnection } from '../client/connection';
import { Capability } from '../protocol/datagram-types';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);
const boolOrNull = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const counters = (v: unknown): Record<string, number> | null => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number' && Number.isFinite(x)) out[k] = x;
  return out;
};

/** The relay URL as status shows it: scheme, host and path, never a query (where a key could sit). */
export function relayDisplayUrl(relay: string): string {
  const url = new URL(relay);
  return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

/** One relay link as `status` shows it (zksd and the proxies alike). */
export function relayLinkSnapshot(c: TunnelConnection): RelayLinkSnapshot {
  const d = c.mux.datagrams;
  const caps = d.knownPeerCapabilities ?? 0;
  const direct = c.direct?.status ?? null;
  const up = direct?.state === 'direct' || direct?.state === 'turn';
  return {
    id: c.id,
    streams: c.mux.streams.size,
    rttMs: c.mux.rttMs,
    carries: [...(caps & Capability.UDP ? ['udp'] : []), ...(caps & Capability.ICMP_ECHO ? ['icmp'] : [])],
    udpFlows: d.flows.size,
    datagrams: {
      sent: d.stats.datagramsSent, received: d.stats.datagramsReceived, dropped: d.stats.datagramsDropped,
      late: d.stats.datagramsLate, malformed: d.stats.malformed,
    },
    path: c.path,
    pathRttMs: up ? direct!.rttMs : -1,
    pathRoute: up ? direct!.route : null,
    pathError: direct?.lastError ?? null,
    resuming: c.resuming,
    resumes: c.resumes,
  };
}

/** "host:port", with IPv6 addresses in brackets. */
export function endpointText(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** A `status` answer or event as a StatusSnapshot; null when it names no mode this version knows. */
export function readStatus(raw: unknown): StatusSnapshot | null {
  const s = obj(raw);
  const room = s.room;
  const common = {
    pid: typeof s.pid === 'number' ? s.pid : null,
    relay: str(s.relay),
    // A room may be reported as its label or as { name, exitPeer } (early versions) — accept both.
    room: typeof room === 'string' ? room : typeof obj(room).name === 'string' ? (obj(room).name as string) : null,
    exitPeer: boolOrNull(s.exitPeer ?? s.exitPeerOnline ?? obj(room).exitPeer),
    killSwitch: boolOrNull(s.killSwitch),
    bypass: Array.isArray(s.bypass) ? strings(s.bypass) : null,
    uptimeMs: num(s.uptimeMs),
    connections: (Array.isArray(s.connections) ? s.connections.map(obj) : []).map((c): RelayLinkSnapshot => {
      const d = obj(c.datagrams);
      return {
        id: num(c.id), streams: num(c.streams), rttMs: num(c.rttMs, -1), carries: strings(c.carries), udpFlows: num(c.udpFlows),
        datagrams: { sent: num(d.sent), received: num(d.received), dropped: num(d.dropped), late: num(d.late), malformed: num(d.malformed) },
        path: str(c.path), pathRttMs: num(c.pathRttMs, -1),
        pathRoute: typeof c.pathRoute === 'string' ? c.pathRoute : null, pathError: typeof c.pathError === 'string' ? c.pathError : null,
        ...(c.resuming === undefined ? {} : { resuming: c.resuming === true }), ...(c.resumes === undefined ? {} : { resumes: num(c.resumes) }),
        ...(typeof c.relay === 'string' ? { relay: c.relay } : {}),
      };
    }),
    flows: num(s.flows),
    bytesUp: num(s.bytesUp),
    bytesDown: num(s.bytesDown),
    rateUp: num(s.rateUp),
    rateDown: num(s.rateDown),
    ...(s.udp === undefined ? {} : { udp: counters(s.udp) }),
    ...(Array.isArray(s.relays)
      ? { relays: s.relays.map(obj).map((r) => ({ url: str(r.url), up: r.up === true, error: typeof r.error === 'string' ? r.error : null })) }
      : {}),
  };
  if (s.mode === 'socks5' || s.mode === 'p2p-client') {
    const proxy: ProxyStatus = { ...common, mode: s.mode, listen: str(s.listen) };
    return proxy;
  }
  if (s.mode === 'expose') {
    const t = obj(s.tunnel);
    const expose: ExposeStatus = {
      ...common, mode: 'expose',
      tunnel: {
        id: str(t.id), kind: t.kind === 'tcp' ? 'tcp' : 'http', url: str(t.url), origin: str(t.origin),
        access: t.access === 'public' || t.access === 'secret' ? t.access : 'password',
        connected: t.connected === true, requests: num(t.requests), inFlight: num(t.inFlight), failed: num(t.failed),
        requestRate: num(t.requestRate),
      },
    };
    return expose;
  }
  if (s.mode !== 'direct' && s.mode !== 'relay') return null;
  const memory = obj(s.memory);
  const daemon: DaemonStatus = {
    ...common,
    mode: s.mode,
    relayEndpoints: strings(s.relayEndpoints),
    ...(s.via === 'worker' ? { via: 'worker' as const } : {}),
    tun: str(s.tun),
    mtu: num(s.mtu),
    offload: s.offload === true,
    addresses: strings(s.addresses),
    ipv6: s.ipv6 === 'blackhole' ? 'blackhole' : 'carry',
    resolver: str(s.resolver),
    dnsUpstream: str(s.dnsUpstream),
    memory: s.memory === undefined ? null : { rssMB: num(memory.rssMB), heapMB: num(memory.heapMB), externalMB: num(memory.externalMB) },
    netstack: counters(s.netstack),
    driver: counters(s.driver),
    dns: counters(s.dns),
  };
  return daemon;
}
