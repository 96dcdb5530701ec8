// Runs the real relay Worker locally in workerd through the Miniflare API (offline, no login, no telemetry,
// no extra proxy process). The Worker source is bundled with esbuild on the fly, so `npm start`, the tests and
// the benchmark all run exactly the code `wrangler deploy` ships.

import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import type { Readable } from 'node:stream';
import { ZksError } from '../errors/zks-error';
import { startLocalResolver, type LocalResolver } from './local-resolver';

export const COMPATIBILITY_DATE = '2026-04-01';
// The folder, not index.ts: esbuild picks index.ts from src/ (tsx, tests) and index.js from dist/ (the built CLI).
const WORKER_ENTRY = fileURLToPath(new URL('../relay-worker', import.meta.url));

export interface DevWorkerOptions {
  key: string; // base64url
  host?: string;
  port?: number; // 0 = any free port
  /** Let CONNECT reach loopback/private targets (local development only). */
  allowPrivateTargets?: boolean;
  /**
   * DNS-over-HTTPS JSON endpoint; when set the Worker resolves names through it before connect(). Without it and
   * without allowPrivateTargets, a local resolver is started for the Worker (see startDevWorker).
   */
  dohUrl?: string;
  /** For that local resolver: answer from the hosts file only (tests: no query leaves this machine). */
  hostsOnly?: boolean;
  maxStreams?: number;
  connectTimeoutMs?: number;
  /** Close a WebSocket that sends no record this long after its handshake (tests shorten it). */
  firstRecordTimeoutMs?: number;
  entry?: string; // another Worker (benchmark fixtures)
  /**
   * Direct-mode sessions are kept this long for their client to resume them (ZKS_DIRECT_RESUME,
   * ZKS_RESUME_GRACE_MS); 0 turns that off. Default 60 s: self-hosted, nobody bills the objects' duration.
   */
  resumeGraceMs?: number;
  /** More Worker bindings (env.ts), e.g. ZKS_IDLE_TIMEOUT_MS in tests. */
  bindings?: Record<string, string>;
}

export interface DevWorker {
  url: string; // ws://host:port
  port: number;
  dispose(): Promise<void>;
}

export async function bundleWorker(entry = WORKER_ENTRY): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external: ['cloudflare:*'],
    write: false,
    minify: false,
    logLevel: 'silent',
    mainFields: ['module', 'main'],
    conditions: ['workerd', 'worker', 'browser'],
  });
  return out.outputFiles[0].text;
}

export async function startDevWorker(opts: DevWorkerOptions): Promise<DevWorker> {
  const script = await bundleWorker(opts.entry);
  const bindings: Record<string, string> = { ZKS_KEY: opts.key };
  if (opts.allowPrivateTargets) bindings.ZKS_ALLOW_PRIVATE_TARGETS = '1';
  // Self-hosted and refusing private targets: left to itself, workerd resolves names with this machine's resolver
  // (hosts file included: `vm` → 127.0.0.1) *after* the Worker's literal-only check. So the Worker resolves through
  // our endpoint instead and checks the address it will connect to (relay-worker/direct.ts).
  let resolver: LocalResolver | null = null;
  if (!opts.allowPrivateTargets && !opts.dohUrl) resolver = await startLocalResolver({ hostsOnly: opts.hostsOnly });
  const dohUrl = opts.dohUrl ?? resolver?.url;
  if (dohUrl) {
    bindings.ZKS_DOH_URL = dohUrl;
    bindings.ZKS_RESOLVE = 'doh';
  }
  if (opts.maxStreams) bindings.ZKS_MAX_STREAMS = String(opts.maxStreams);
  if (opts.connectTimeoutMs) bindings.ZKS_CONNECT_TIMEOUT_MS = String(opts.connectTimeoutMs);
  if (opts.firstRecordTimeoutMs) bindings.ZKS_FIRST_RECORD_TIMEOUT_MS = String(opts.firstRecordTimeoutMs);
  bindings.ZKS_DIRECT_RESUME = opts.resumeGraceMs === 0 ? '0' : '1';
  if (opts.resumeGraceMs) bindings.ZKS_RESUME_GRACE_MS = String(opts.resumeGraceMs);
  Object.assign(bindings, opts.bindings);
  const host = opts.host ?? '127.0.0.1';
  let started = false;
  const held: Buffer[] = [];
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    // The relay's room, tunnel and session classes (wrangler.toml); fixture Workers passed as `entry` have none.
    ...(opts.entry ? {} : {
      durableObjects: {
        ZKS_ROOMS: { className: 'ZksRoom', useSQLite: true },
        ZKS_TUNNELS: { className: 'ZksTunnel', useSQLite: true },
        ZKS_SESSIONS: { className: 'ZksSession', useSQLite: true },
      },
    }),
    host,
    port: opts.port ?? 0,
    log: undefined,
    // workerd's own output: held back until it is up (a failed start is reported once, as a clear ZksError,
    // instead of a C++ stack trace), then passed through (the Worker's console.error lines).
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      for (const stream of [stdout, stderr]) {
        stream.on('data', (chunk: Buffer) => {
          if (started) process.stderr.write(chunk);
          else held.push(chunk);
        });
      }
    },
  });
  let url: URL;
  try {
    url = await mf.ready;
  } catch (err) {
    await mf.dispose().catch(() => {});
    await resolver?.close();
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_ADDRESS_IN_USE') for (const chunk of held) process.stderr.write(chunk);
    const where = `${host}:${opts.port ?? 0}`;
    throw new ZksError('ZKS_ERR_CONFIG', code === 'ERR_ADDRESS_IN_USE'
      ? `${where} is already in use: stop the other process or choose another port (--worker / --listen)`
      : `the local Worker runtime (workerd) failed to start on ${where}: ${(err as Error).message}`);
  }
  started = true;
  for (const chunk of held.splice(0)) process.stderr.write(chunk);
  // On a non-loopback host Miniflare's ready URL is its loopback entry socket, not the port we asked for.
  const port = opts.port ? opts.port : Number(url.port);
  return {
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    dispose: async () => {
      await mf.dispose();
      await resolver?.close();
    },
  };
}
