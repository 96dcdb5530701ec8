// The control socket's wire format: newline-delimited JSON, one request per line, one response per line with the
// same id. Versioned: every message carries "v": 1; a request with another version gets ZKS_ERR_CONTROL_VERSION.
// docs/CONTROL.md documents the messages. No I/O here (zksd, the proxies, the CLI and the TUI share it).
// FlowSnapshot and StatusSnapshot are part of version 1: fields are only ever added, so a reader treats a missing
// field as its neutral default (status.ts) and ignores unknown ones.

import { ZksError } from '../errors/zks-error';

export const CONTROL_VERSION = 1;
/** A request line longer than this is refused (and the rest of that line skipped). */
export const MAX_LINE_BYTES = 64 * 1024;

export const CONTROL_COMMANDS = [
  'status', 'flows', 'routes', 'route.add', 'route.del', 'killswitch', 'flow.close', 'subscribe', 'unsubscribe', 'down',
] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

/** Commands that only read. zksd serves the others (they change the host or the daemon) to root alone. */
export const READ_ONLY_COMMANDS: ReadonlySet<ControlCommand> = new Set<ControlCommand>(['status', 'flows', 'routes', 'subscribe', 'unsubscribe']);

export interface ControlRequest {
  v: number;
  id: number | string;
  cmd: ControlCommand;
  args?: Record<string, unknown>;
}

/** Subscription topics: `flows` every 250 ms, `status` every second, `log` as things happen. */
export const CONTROL_TOPICS = ['flows', 'status', 'log'] as const;
export type ControlTopic = (typeof CONTROL_TOPICS)[number];

/** An event line pushed to subscribers (no id; never a response). */
export interface ControlEvent {
  v: number;
  event: ControlTopic;
  data: unknown;
}

export function eventLine(topic: ControlTopic, data: unknown): string {
  return `${JSON.stringify({ v: CONTROL_VERSION, event: topic, data })}\n`;
}

/** One flow as the control socket shows it (zksd and the proxies alike). */
export interface FlowSnapshot {
  id: number;
  /** tcp, udp (zksd: one flow per application socket), icmp (zksd: the pings of one application to one host). */
  protocol: 'tcp' | 'udp' | 'icmp';
  source: string;
  destination: string;
  /** The CONNECT target (differs from destination for DNS-over-TCP to the resolver address). */
  target: string;
  /** worker (direct mode), exit (relay mode), dns (zksd: TCP to the resolver address), tunnel (a request to an agent). */
  path: 'worker' | 'exit' | 'dns' | 'tunnel';
  /**
   * Relay mode: how the relay link carrying this TCP flow reaches the exit peer now — room, direct (a direct TCP or
   * WebRTC path) or turn; null where that does not apply (direct mode, UDP and ping flows) or is not known.
   */
  via: string | null;
  state: string;
  bytesUp: number;
  bytesDown: number;
  /** Bytes per second over the last ~2 s (sampled every 250 ms). */
  rateUp: number;
  rateDown: number;
  ageMs: number;
  error: string | null;
  /** The flow is gone (kept in the recently-closed ring for display). */
  closed: boolean;
}

/** One relay link (a WebSocket to the Worker) as `status` shows it. */
export interface RelayLinkSnapshot {
  id: number;
  streams: number;
  /** -1 until the first keepalive answer. */
  rttMs: number;
  /** What the far end relays besides TCP (its CAPABILITIES, PROTOCOL.md §3.3): 'udp', 'icmp'; [] through a Worker. */
  carries: string[];
  /** UDP flows open on this link and its datagram counters (dropped: over the send backlog, never queued). */
  udpFlows: number;
  datagrams: { sent: number; received: number; dropped: number; late: number; malformed: number };
  /**
   * Where this link's records go: 'worker' (direct mode), 'room', or the direct path between client and exit peer,
   * 'direct' or 'turn' (PROTOCOL.md §3.6); '' from an older peer.
   */
  path: string;
  /** Round trip of the direct path's heartbeat, ms; -1 when it is not up. */
  pathRttMs: number;
  /** The direct path's candidate pair, "local ↔ remote", while it is up. */
  pathRoute: string | null;
  /** Why the last direct path attempt ended (null when none did). */
  pathError: string | null;
  /** Relay mode: the WebSocket was lost and the session is being resumed (its streams stall meanwhile; §11.7). */
  resuming?: boolean;
  /** Times this link's session was resumed on a new WebSocket. */
  resumes?: number;
  /** The relay this link's WebSocket goes to (relayDisplayUrl), when the client has several. */
  relay?: string;
}

/** What zksd and the proxies both report in `status` (docs/CONTROL.md). */
interface CommonStatus {
  pid: number | null;
  /** The relay URL without key or query (relayDisplayUrl). */
  relay: string;
  /** Relay mode: a short label of the room's public id (never the secret); null in direct mode. */
  room: string | null;
  /** Relay mode: whether the exit peer answers (a live relay link exists); null in direct mode. */
  exitPeer: boolean | null;
  /** null where there is none to toggle (the proxies). */
  killSwitch: boolean | null;
  /** null where bypass routes do not exist (the proxies). */
  bypass: string[] | null;
  uptimeMs: number;
  connections: RelayLinkSnapshot[];
  /** Live flows. */
  flows: number;
  /** Payload bytes since start, closed flows included. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes per second over the last ~2 s. */
  rateUp: number;
  rateDown: number;
  /**
   * UDP counters: zksd's flows, pings and IP reassembly (engine datagramStats); a proxy's SOCKS5 UDP
   * associations (proxyUdpCounters). Absent from older peers.
   */
  udp?: Record<string, number> | null;
  /** Several relays (`--relay` more than once): each, and whether it is in use or left until a health check answers. */
  relays?: Array<{ url: string; up: boolean; error: string | null }>;
}

/** zksd: the full-system VPN. */
export interface DaemonStatus extends CommonStatus {
  mode: 'direct' | 'relay';
  /** Relay mode with `--via worker`: TCP through the Worker first, the exit peer for UDP, ping and what it cannot reach. */
  via?: 'worker';
  relayEndpoints: string[];
  tun: string;
  mtu: number;
  offload: boolean;
  addresses: string[];
  ipv6: 'carry' | 'blackhole';
  resolver: string;
  dnsUpstream: string;
  memory: { rssMB: number; heapMB: number; externalMB: number } | null;
  /** Counters of the netstack, the TUN driver and the DNS forwarder (names as their `stats` objects). */
  netstack: Record<string, number> | null;
  driver: Record<string, number> | null;
  dns: Record<string, number> | null;
}

/** `zks socks5` / `zks p2p-client`: a local proxy. */
export interface ProxyStatus extends CommonStatus {
  mode: 'socks5' | 'p2p-client';
  /** The proxy's listen address (host:port). */
  listen: string;
}

/** An exposed tunnel as its agent sees it (`zks expose http://…` or `tcp://…`). */
export interface TunnelSnapshot {
  id: string;
  kind: 'http' | 'tcp';
  /** HTTP: the public URL (`…/tunnel/<id>/`); TCP: how to reach it (`zks access --id <id>`). The local service. */
  url: string;
  origin: string;
  /** public, password (HTTP Basic), or secret (a TCP tunnel: only holders of the tunnel secret). */
  access: 'public' | 'password' | 'secret';
  /** The agent holds a claimed WebSocket to the tunnel now (TCP: it is the room's exit). */
  connected: boolean;
  /** Requests (TCP: connections) since start, in flight now, answered with 5xx or failed. */
  requests: number;
  inFlight: number;
  failed: number;
  /** Requests per second over the last ~2 s. */
  requestRate: number;
}

/** `zks expose …`: an agent of a tunnel; its flows are the requests (TCP: connections) in flight. */
export interface ExposeStatus extends CommonStatus {
  mode: 'expose';
  tunnel: TunnelSnapshot;
}

/** The `status` result and event (control protocol version 1). */
export type StatusSnapshot = DaemonStatus | ProxyStatus | ExposeStatus;

export function isDaemonStatus(s: StatusSnapshot): s is DaemonStatus {
  return s.mode === 'direct' || s.mode === 'relay';
}

export type ControlResponse =
  | { v: number; id: number | string | null; ok: true; result: unknown }
  | { v: number; id: number | string | null; ok: false; error: { code: string; message: string } };

/** Parses one request line; a ZksError says why it is not a valid request (the id, when readable, is kept). */
export function parseRequest(line: string): ControlRequest | { error: ZksError; id: number | string | null } {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return { error: new ZksError('ZKS_ERR_CONTROL_REQUEST', 'request is not valid JSON'), id: null };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { error: new ZksError('ZKS_ERR_CONTROL_REQUEST', 'request must be a JSON object'), id: null };
  }
  const m = msg as Record<string, unknown>;
  const id = typeof m.id === 'number' || typeof m.id === 'string' ? m.id : null;
  if (id === null) return { error: new ZksError('ZKS_ERR_CONTROL_REQUEST', 'request needs an "id" (number or string)'), id };
  if (m.v !== CONTROL_VERSION) {
    return { error: new ZksError('ZKS_ERR_CONTROL_VERSION', `unsupported control protocol version ${String(m.v)}; this daemon speaks ${CONTROL_VERSION}`), id };
  }
  if (typeof m.cmd !== 'string' || !(CONTROL_COMMANDS as readonly string[]).includes(m.cmd)) {
    return { error: new ZksError('ZKS_ERR_CONTROL_REQUEST', `unknown command ${JSON.stringify(m.cmd)}; known: ${CONTROL_COMMANDS.join(', ')}`), id };
  }
  if (m.args !== undefined && (typeof m.args !== 'object' || m.args === null || Array.isArray(m.args))) {
    return { error: new ZksError('ZKS_ERR_CONTROL_REQUEST', '"args" must be an object'), id };
  }
  return { v: CONTROL_VERSION, id, cmd: m.cmd as ControlCommand, args: m.args as Record<string, unknown> | undefined };
}

export function okResponse(id: number | string | null, result: unknown): string {
  return `${JSON.stringify({ v: CONTROL_VERSION, id, ok: true, result })}\n`;
}

export function errorResponse(id: number | string | null, err: unknown): string {
  const e = err instanceof ZksError ? err : new ZksError('ZKS_ERR_INTERNAL', (err as Error)?.message ?? String(err));
  return `${JSON.stringify({ v: CONTROL_VERSION, id, ok: false, error: { code: e.code, message: e.message } })}\n`;
}

/** Splits a byte stream into lines, refusing lines longer than MAX_LINE_BYTES without buffering them. */
export class LineSplitter {
  private partial = '';
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOversized: () => void,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      const piece = chunk.slice(start, nl === -1 ? undefined : nl);
      if (!this.skipping) {
        if (this.partial.length + piece.length > MAX_LINE_BYTES) {
          this.partial = '';
          this.skipping = true;
          this.onOversized();
        } else {
          this.partial += piece;
        }
      }
      if (nl === -1) return;
      if (!this.skipping && this.partial.trim() !== '') this.onLine(this.partial);
      this.partial = '';
      this.skipping = false;
      start = nl + 1;
    }
  }
}
