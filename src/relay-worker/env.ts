// Worker configuration, read from bindings. ZKS_KEY is a Worker secret (`wrangler secret put ZKS_KEY`), never
// part of the repository; the dev-only switches are set by the local stack (`npm start`, tests) and left off
// by wrangler.toml.

import { decodeBase64Url } from '../crypto/handshake';
import type { ZksRoom } from './room';

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
  /** Relay rooms, one Durable Object per room id (wrangler.toml); without it every /room/ path is refused. */
  ZKS_ROOMS?: DurableObjectNamespace<ZksRoom>;
}

export interface RelayConfig {
  key: Uint8Array;
  allowPrivateTargets: boolean;
  dohUrl: string;
  maxStreams: number;
  connectTimeoutMs: number;
  firstRecordTimeoutMs: number;
  resolveFirst: boolean;
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
  if (key && key.length === 32) {
    config = {
      key,
      allowPrivateTargets: env.ZKS_ALLOW_PRIVATE_TARGETS === '1',
      dohUrl: env.ZKS_DOH_URL || 'https://cloudflare-dns.com/dns-query',
      maxStreams: intOr(env.ZKS_MAX_STREAMS, 6, 1, 1024),
      connectTimeoutMs: intOr(env.ZKS_CONNECT_TIMEOUT_MS, 10_000, 100, 60_000),
      firstRecordTimeoutMs: intOr(env.ZKS_FIRST_RECORD_TIMEOUT_MS, 10_000, 50, 60_000),
      resolveFirst: env.ZKS_RESOLVE === 'doh',
    };
  } else {
    console.error('zks relay: ZKS_KEY is missing or not 32 bytes of base64url; refusing all requests');
  }
  cached = { env, config };
  return config;
}
