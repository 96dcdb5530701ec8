// Worker configuration, read from bindings. ZKS_KEY is a Worker secret (`wrangler secret put ZKS_KEY`), never
// part of the repository; the dev-only switches are set by the local stack (`npm start`, tests) and left off
// by wrangler.toml.

import { decodeBase64Url } from '../crypto/handshake';
import { DEFAULT_STREAM_WINDOW, MIN_STREAM_WINDOW } from '../protocol/constants';
import type { ZksRoom } from './room';
import { DEFAULT_CLIENT_RATE, MAX_CLIENT_RATE, MIN_CLIENT_RATE } from './room-limits';
import { parseAddressRange, type AddressRange } from '../protocol/worker-reach';

export interface Env {
  /** 32-byte pre-shared key, base64url (from `zks keygen`). */
  ZKS_KEY?: string;
  /** "1" lets CONNECT reach loopback/private targets: for local development and tests only. */
  ZKS_ALLOW_PRIVATE_TARGETS?: string;
  /** DNS-over-HTTPS JSON endpoint used to tell "unknown host" from "refused" after a failed connect(). */
  ZKS_DOH_URL?: string;
  /** Streams one WebSocket may carry at once (Cloudflare allows 6 outbound connections per invocation). */
  ZKS_MAX_STREAMS?: string;
  ZKS_CONNECT_TIMEOUT_MS?: string;
  /** How long a WebSocket may stay open after the handshake without its first record (default 10 s). */
  ZKS_FIRST_RECORD_TIMEOUT_MS?: string;
  /** "doh": resolve names through ZKS_DOH_URL before connect() (the local stack uses this with its own resolver). */
  ZKS_RESOLVE?: string;
  /** Close a WebSocket from which nothing (not even a PING) arrived for this long; default 90 s (clients ping every 25 s). */
  ZKS_IDLE_TIMEOUT_MS?: string;
  /** Reset a stream that carried no byte either way for this long; default 10 min. */
  ZKS_STREAM_IDLE_TIMEOUT_MS?: string;
  /** Messages per second a room client may send (default 16 000; see room-limits.ts). */
  ZKS_ROOM_CLIENT_RATE?: string;
  /**
   * Address ranges (comma-separated CIDRs) this relay refuses to connect() to, like Cloudflare's own: a client with
   * an exit peer sends them there. Names are resolved first while it is set. A malformed list refuses every direct
   * connection (fail closed); rooms and tunnels, which never connect(), keep working.
   */
  ZKS_BLOCKED_RANGES?: string;
  /** Relay rooms, one Durable Object per room id (wrangler.toml); without it every /room/ path is refused. */
  ZKS_ROOMS?: DurableObjectNamespace<ZksRoom>;
  /**
   * HTTP tunnels, one ZksTunnel Durable Object per tunnel id (wrangler.toml); without it every /tunnel/ path is
   * refused. Untyped: tunnel.ts reads this file, and only its fetch() is called through the namespace.
   */
  ZKS_TUNNELS?: DurableObjectNamespace;
  /**
   * "1": direct-mode sessions live in a ZksSession Durable Object each (session-object.ts), which keeps their target
   * connections through a lost client WebSocket for ZKS_RESUME_GRACE_MS so the client can resume them. Off unless
   * set: a session's object is billed for its whole life (README "Resume in direct mode").
   */
  ZKS_DIRECT_RESUME?: string;
  /** How long a direct-mode session whose WebSocket was lost waits for its client (default 60 s). */
  ZKS_RESUME_GRACE_MS?: string;
  /** One ZksSession per direct-mode session (wrangler.toml); untyped for the same reason as ZKS_TUNNELS. */
  ZKS_SESSIONS?: DurableObjectNamespace;
}

export interface RelayConfig {
  key: Uint8Array;
  allowPrivateTargets: boolean;
  dohUrl: string;
  maxStreams: number;
  connectTimeoutMs: number;
  firstRecordTimeoutMs: number;
  /** Room clients' message rate, passed to the room (ROOM_CLIENT_RATE_HEADER). */
  roomClientRate: number;
  resolveFirst: boolean;
  /** ZKS_BLOCKED_RANGES, parsed; null when malformed (then every direct connection is refused). */
  blockedRanges: AddressRange[] | null;
  linkIdleTimeoutMs: number;
  streamIdleTimeoutMs: number;
  /** Memory policy (not configurable): send credit honoured per stream, whatever the client grants. */
  streamSendCredit: number;
  /** Memory policy: DATA bytes per WebSocket sent but not yet proven read (a PONG behind them) — workerd has no bufferedAmount. */
  linkUnackedBytes: number;
  /** Memory policy: the receive window granted per stream, so that uploads held for slow targets stay within LINK_RECEIVE_BYTES. */
  streamReceiveWindow: number;
  /** ZKS_DIRECT_RESUME: direct-mode sessions that ask for it go to a ZksSession and can be resumed. */
  directResume: boolean;
  /** ZKS_RESUME_GRACE_MS. */
  resumeGraceMs: number;
}

/** ≈ 2 MiB per stream, 8 MiB per WebSocket: an isolate (128 MB on Cloudflare) is shared by many tunnels. */
export const STREAM_SEND_CREDIT = 2 * 1024 * 1024;
export const LINK_UNACKED_BYTES = 8 * 1024 * 1024;
/** Upload bytes one WebSocket may have the Worker hold for targets that read slowly (its streams' windows together). */
export const LINK_RECEIVE_BYTES = 16 * 1024 * 1024;

function parseRanges(text: string | undefined): AddressRange[] | null {
  const out: AddressRange[] = [];
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const range = parseAddressRange(part);
    if (!range) return null;
    out.push(range);
  }
  return out;
}

let cached: { env: Env; config: RelayConfig | null } | null = null;

function intOr(value: string | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined ? NaN : Number(value);
  return Number.isInteger(n) && n >= min && n <= max ? n : fallback;
}

/** Parsed configuration, or null when no valid key is configured (then every request is refused). */
export function loadConfig(env: Env): RelayConfig | null {
  if (cached && cached.env === env) return cached.config;
  const key = env.ZKS_KEY ? decodeBase64Url(env.ZKS_KEY.trim()) : null;
  let config: RelayConfig | null = null;
  // Fail closed for what it guards (direct-mode connects: direct.ts refuses them all), not for rooms and tunnels.
  const blockedRanges = parseRanges(env.ZKS_BLOCKED_RANGES);
  if (!blockedRanges) console.error('zks relay: ZKS_BLOCKED_RANGES is not a comma-separated list of CIDRs; refusing every direct connection');
  if (env.ZKS_DIRECT_RESUME !== undefined && !['', '0', '1'].includes(env.ZKS_DIRECT_RESUME)) {
    console.error(`zks relay: ZKS_DIRECT_RESUME is "${env.ZKS_DIRECT_RESUME}", not "1" or "0"; direct-mode sessions are not kept`);
  }
  if (key && key.length === 32) {
    const maxStreams = intOr(env.ZKS_MAX_STREAMS, 6, 1, 1024);
    config = {
      key,
      allowPrivateTargets: env.ZKS_ALLOW_PRIVATE_TARGETS === '1',
      dohUrl: env.ZKS_DOH_URL || 'https://cloudflare-dns.com/dns-query',
      maxStreams,
      connectTimeoutMs: intOr(env.ZKS_CONNECT_TIMEOUT_MS, 10_000, 100, 60_000),
      roomClientRate: intOr(env.ZKS_ROOM_CLIENT_RATE, DEFAULT_CLIENT_RATE, MIN_CLIENT_RATE, MAX_CLIENT_RATE),
      firstRecordTimeoutMs: intOr(env.ZKS_FIRST_RECORD_TIMEOUT_MS, 10_000, 50, 60_000),
      resolveFirst: env.ZKS_RESOLVE === 'doh',
      blockedRanges,
      linkIdleTimeoutMs: intOr(env.ZKS_IDLE_TIMEOUT_MS, 90_000, 100, 3_600_000),
      streamIdleTimeoutMs: intOr(env.ZKS_STREAM_IDLE_TIMEOUT_MS, 600_000, 100, 86_400_000),
      streamSendCredit: STREAM_SEND_CREDIT,
      linkUnackedBytes: LINK_UNACKED_BYTES,
      streamReceiveWindow: Math.max(MIN_STREAM_WINDOW, Math.min(DEFAULT_STREAM_WINDOW, Math.floor(LINK_RECEIVE_BYTES / maxStreams))),
      directResume: env.ZKS_DIRECT_RESUME === '1',
      resumeGraceMs: intOr(env.ZKS_RESUME_GRACE_MS, 60_000, 100, 15 * 60_000),
    };
  } else {
    console.error('zks relay: ZKS_KEY is missing or not 32 bytes of base64url; refusing all requests');
  }
  cached = { env, config };
  return config;
}
