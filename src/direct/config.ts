// What the direct path may use (PROTOCOL.md §3.6): ICE servers are configured or absent — no public STUN or TURN
// default, so a direct attempt contacts no one but the peer unless the user says so. Parsed from the CLI flags
// and `zks config` (`--stun HOST:PORT`, `--turn turn:HOST:PORT --turn-user U --turn-pass P`, `--no-direct`).

import { ZksError } from '../errors/zks-error';
import { isIP, type Socket } from 'node:net';
import type { RtcIceServer } from './webrtc';

export interface TurnServer {
  host: string;
  port: number;
  username: string;
  password: string;
  /** UDP (default) or TCP to the TURN server. */
  transport: 'udp' | 'tcp';
}

export interface DirectConfig {
  stun?: Array<{ host: string; port: number }>;
  turn?: TurnServer[];
  /** Gather candidates on this local address only (a multi-homed host; tests on 127.0.0.1). */
  bindAddress?: string;
  /** Relayed (TURN) candidates only: the peers never learn each other's addresses. */
  relayOnly?: boolean;
  /** Local UDP ports of the peer connection (zksd: the ones its kill switch lets out). */
  portRange?: { min: number; max: number };
  /**
   * Awaited before a remote address is used — each peer candidate, and each STUN/TURN server (which must then be
   * an IP address): zksd routes it outside the TUN and opens its kill switch for it. A rejection refuses it.
   */
  allowRemote?: (address: string, port: number) => Promise<void>;
  /** Try a direct TCP connection first (PROTOCOL.md §3.7); default true. */
  tcp?: boolean;
  /** Exit peer: the TCP port to listen on during an attempt (0, the default: any free port). */
  tcpPort?: number;
  /** Exit peer: the addresses to offer instead of its interfaces' (a port forwarded on a NAT router). */
  tcpAdvertise?: Array<{ host: string; port?: number }>;
  /** Client: how long the TCP connections to the exit's addresses may take once they are known. */
  tcpConnectTimeoutMs?: number;
  /** Client: opens the TCP connection (zksd: a socket with its mark); plain net.connect otherwise. */
  connectTcp?: (address: string, port: number, localAddress?: string) => Promise<Socket>;
  /** An attempt not usable within this long is abandoned. */
  connectTimeoutMs?: number;
  /** First wait before the client tries again after a failure; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

export const DEFAULT_DIRECT = {
  stun: [] as Array<{ host: string; port: number }>,
  turn: [] as TurnServer[],
  relayOnly: false,
  tcp: true,
  tcpConnectTimeoutMs: 3_000,
  connectTimeoutMs: 10_000,
  retryMs: 30_000,
  maxRetryMs: 600_000,
};

export function iceServersOf(c: DirectConfig): RtcIceServer[] {
  return [
    ...(c.stun ?? []).map((s) => ({ hostname: s.host, port: s.port })),
    ...(c.turn ?? []).map((t) => ({
      hostname: t.host, port: t.port, username: t.username, password: t.password,
      relayType: t.transport === 'tcp' ? ('TurnTcp' as const) : ('TurnUdp' as const),
    })),
  ];
}

function hostPort(text: string, what: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:/?@\s]+)(?::(\d+))?$/.exec(text);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ZksError('ZKS_ERR_CONFIG', `${what} "${text}" is not HOST[:PORT] (port 1-65535; [::1]:3478 for IPv6)`);
  }
  return { host: m[1], port };
}

/** `--stun HOST[:PORT]` (3478 by default); a `stun:` prefix is accepted. */
export function parseStun(text: string): { host: string; port: number } {
  return hostPort(text.replace(/^stun:/i, ''), '--stun', 3478);
}

/** `--turn turn:HOST[:PORT][?transport=udp|tcp]` with its user and password (both required). */
export function parseTurn(text: string, username: string | undefined, password: string | undefined): TurnServer {
  const m = /^turn:(.+?)(?:\?transport=(udp|tcp))?$/i.exec(text.trim());
  if (!m) throw new ZksError('ZKS_ERR_CONFIG', `--turn "${text}" is not turn:HOST[:PORT][?transport=udp|tcp]`);
  if (!username || !password) throw new ZksError('ZKS_ERR_CONFIG', '--turn needs --turn-user and --turn-pass (TURN servers allocate only for authenticated users)');
  return { ...hostPort(m[1], '--turn', 3478), username, password, transport: (m[2]?.toLowerCase() ?? 'udp') as 'udp' | 'tcp' };
}

/** The ICE part of a direct path config from flag or setting texts (`--stun A,B`, `--turn`, its user and password). */
export function iceConfig(o: { stun?: string; turn?: string; turnUser?: string; turnPass?: string; turnOnly: boolean }): DirectConfig {
  const config: DirectConfig = {
    stun: o.stun ? o.stun.split(',').map((s) => parseStun(s.trim())) : [],
    turn: o.turn ? [parseTurn(o.turn, o.turnUser, o.turnPass)] : [],
    relayOnly: o.turnOnly,
  };
  if (config.relayOnly && config.turn!.length === 0) throw new ZksError('ZKS_ERR_CONFIG', '--turn-only needs --turn');
  return config;
}

/** The configured STUN/TURN servers through allowRemote (zksd routes them outside the TUN), when there is one. */
export async function allowIceServers(c: DirectConfig): Promise<void> {
  const allow = c.allowRemote;
  if (!allow) return;
  for (const s of [...(c.stun ?? []), ...(c.turn ?? [])]) {
    if (isIP(s.host) === 0) throw new Error(`STUN/TURN server ${s.host} must be an IP address here`);
    await allow(s.host, s.port);
  }
}
