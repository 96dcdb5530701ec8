// `zks expose http://HOST:PORT --id ID`: the agent of an HTTP tunnel (docs/PROTOCOL.md §12, docs/design/expose.md).
// It holds a WebSocket to `/tunnel-agent/<id>` (the Worker key's HELLO, as a direct-mode client), claims the id
// with the verifier of its tunnel secret (SIGNAL TUNNEL_CLAIM, answered by TUNNEL_READY or a 4403 close), and
// serves every stream the tunnel opens as one request to the local server (http-origin.ts). It reconnects by
// itself with a backoff (a Worker deploy cuts every WebSocket) and serves again without a restart.

import { Agent as HttpAgent } from 'node:http';
import { TunnelConnection } from '../client/connection';
import { nodeCrypto } from '../crypto/node';
import { tunnelClaimVerifier } from '../crypto/room';
import { ZksError } from '../errors/zks-error';
import { SignalKind } from '../protocol/signal-codec';
import { encodeClaim, type TunnelClaim } from '../protocol/tunnel-http';
import { newRequestRecord, serveRequestStream, type RequestRecord } from './http-origin';
import { RequestFlow, RequestRate, requestFlowRegistry, startExposeControl } from './control';
import type { ControlService } from '../control/service';
import type { MuxStream } from '../protocol/stream';

export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 8_000;
const STABLE_MS = 5_000;
const CLAIM_TIMEOUT_MS = 10_000;
/** Upload credit per request stream: a request body crosses the Worker in one stream, so it gets a deep window. */
const AGENT_STREAM_WINDOW = 8 * 1024 * 1024;

export interface ExposeHttpOptions {
  relay: string;
  key: Uint8Array;
  id: string;
  secret: string;
  origin: { host: string; port: number };
  /** 'public', or the HTTP Basic user and password the tunnel checks. */
  access: 'public' | { user: string; password: string };
  maxConcurrent: number;
  ratePerSecond: number;
  maxBodyBytes: number | null;
  keepPrefix: boolean;
  log?: (line: string) => void;
  /** One line per request (method, path without query, status, bytes, ms); default: `log`. */
  logRequest?: (line: string) => void;
  /** Serve a control socket for `zks status` / zks-tui (the CLI turns it on; tests may leave it off). */
  control?: { url: string };
}

/** Counters for `zks status` and the TUI. */
export interface TunnelCounters {
  requests: number;
  inFlight: number;
  failed: number;
  bytesIn: number;
  bytesOut: number;
}

export class HttpExposeAgent {
  private conn: TunnelConnection | null = null;
  private closing = false;
  private backoffMs = BACKOFF_MIN_MS;
  private connectedAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly originAgent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  private readonly log: (line: string) => void;
  readonly counters: TunnelCounters = { requests: 0, inFlight: 0, failed: 0, bytesIn: 0, bytesOut: 0 };
  private readonly flows = requestFlowRegistry();
  private readonly rate = new RequestRate();
  private nextFlowId = 1;
  private control: ControlService | null = null;

  private constructor(
    private readonly opts: ExposeHttpOptions,
    private readonly claim: string,
  ) {
    this.log = opts.log ?? (() => {});
  }

  /** Connects and claims once; rejects with ZKS_ERR_AUTH, ZKS_ERR_TUNNEL_TAKEN, ZKS_ERR_RELAY_UNREACHABLE, … */
  static async start(opts: ExposeHttpOptions): Promise<HttpExposeAgent> {
    const verifier = await tunnelClaimVerifier(nodeCrypto, opts.secret, opts.id);
    const access: TunnelClaim['access'] = opts.access === 'public'
      ? 'public'
      : await nodeCrypto.sha256(new TextEncoder().encode(`${opts.access.user}:${opts.access.password}`));
    const claim = encodeClaim({
      verifier, access, maxConcurrent: opts.maxConcurrent, ratePerSecond: opts.ratePerSecond,
      maxBodyBytes: opts.maxBodyBytes, keepPrefix: opts.keepPrefix,
    });
    const agent = new HttpExposeAgent(opts, claim);
    agent.conn = await agent.connect();
    agent.connectedAt = Date.now();
    if (opts.control) {
      const url = opts.control.url;
      agent.control = await startExposeControl({
        id: opts.id, relay: opts.relay, flows: agent.flows, log: agent.log,
        connections: () => (agent.conn ? [agent.conn] : []),
        tunnel: () => ({
          id: opts.id, kind: 'http', url, origin: `http://${opts.origin.host}:${opts.origin.port}`,
          access: opts.access === 'public' ? 'public' : 'password', connected: agent.connected,
          requests: agent.counters.requests, inFlight: agent.counters.inFlight, failed: agent.counters.failed,
          requestRate: agent.rate.perSecond(),
        }),
      }).catch((err: Error) => {
        agent.log(`no control socket (zks status / zks-tui will not see this tunnel): ${err.message}`);
        return null;
      });
    }
    return agent;
  }

  get connected(): boolean {
    return this.conn !== null && !this.conn.closed;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const conn = this.conn;
    this.conn = null;
    conn?.close();
    this.originAgent.destroy();
    await this.control?.close();
  }

  /**
   * One connection and its claim. Settles once: with the connection after TUNNEL_READY, or with why not. A
   * connection that opens after the attempt gave up is closed at once; only the agent's current connection's
   * loss schedules a reconnect.
   */
  private connect(): Promise<TunnelConnection> {
    return new Promise<TunnelConnection>((resolve, reject) => {
      let settled = false;
      let conn: TunnelConnection | null = null;
      const giveUp = (err: ZksError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn?.terminate();
        reject(err);
      };
      const timer = setTimeout(
        () => giveUp(new ZksError('ZKS_ERR_TIMEOUT', `the tunnel did not accept the claim within ${CLAIM_TIMEOUT_MS} ms`)),
        CLAIM_TIMEOUT_MS,
      );
      TunnelConnection.open({
        url: this.opts.relay,
        key: this.opts.key,
        window: AGENT_STREAM_WINDOW,
        tunnelAgent: {
          id: this.opts.id,
          onStream: (stream) => this.serve(stream),
          onSignal: (kind) => {
            if (kind !== SignalKind.TUNNEL_READY || settled || !conn) return;
            settled = true;
            clearTimeout(timer);
            resolve(conn);
          },
        },
        onClose: (c, err) => {
          if (!settled) return giveUp(claimRefusal(err));
          if (c === this.conn) this.lost(claimRefusal(err));
        },
      }).then((c) => {
        if (settled) return c.terminate(); // the attempt timed out while the WebSocket was opening
        conn = c;
        c.mux.sendSignal(SignalKind.TUNNEL_CLAIM, this.claim);
      }, (err: unknown) => giveUp(err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err))));
    });
  }

  private serve(stream: MuxStream): void {
    const record = newRequestRecord();
    let flow: RequestFlow | null = null;
    const onHead = () => {
      this.counters.requests++;
      this.counters.inFlight++;
      this.rate.hit();
      flow = new RequestFlow(this.nextFlowId++, stream, record);
      this.flows.add(flow.id, flow);
    };
    serveRequestStream(stream, { ...this.opts.origin, agent: this.originAgent }, record, (r) => {
      if (!flow) return; // a stream the tunnel kept spare, closed without a request: nothing happened
      this.flows.remove(flow.id, { state: r.status ? String(r.status) : 'failed', error: r.error });
      this.requestDone(r);
    }, onHead);
  }

  private requestDone(r: RequestRecord): void {
    this.counters.inFlight--;
    this.counters.bytesIn += r.bytesIn;
    this.counters.bytesOut += r.bytesOut;
    if (r.error !== null || r.status === 0 || r.status >= 500) this.counters.failed++;
    const line = `${r.method} ${r.path} ${r.status || '-'} in ${r.bytesIn} B out ${r.bytesOut} B ${r.ms.toFixed(1)} ms${r.error ? ` (${r.error})` : ''}`;
    (this.opts.logRequest ?? this.log)(line);
  }

  private lost(err: ZksError | null): void {
    this.conn = null;
    if (this.closing) return;
    if (Date.now() - this.connectedAt >= STABLE_MS) this.backoffMs = BACKOFF_MIN_MS;
    this.scheduleRetry(`lost the tunnel connection: ${err?.message ?? 'closed'}`);
  }

  private scheduleRetry(why: string): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.log(`${why}; retrying in ${delay} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    try {
      const conn = await this.connect();
      if (this.closing) return conn.close();
      this.conn = conn;
      this.connectedAt = Date.now();
      this.log(`tunnel "${this.opts.id}" serving again`);
    } catch (err) {
      if (this.closing) return;
      const e = err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err));
      // A refused key or a claimed id will not change in 250 ms: wait the longest interval.
      if (e.code === 'ZKS_ERR_AUTH' || e.code === 'ZKS_ERR_TUNNEL_TAKEN') this.backoffMs = BACKOFF_MAX_MS;
      this.scheduleRetry(`cannot reach the tunnel: ${e.message}`);
    }
  }
}

/** The tunnel's 4403 close says the id is someone else's; every other loss is what the link reported. */
function claimRefusal(err: ZksError | null): ZksError {
  if (err?.message.includes('ZKS_ERR_TUNNEL_TAKEN')) {
    return new ZksError('ZKS_ERR_TUNNEL_TAKEN', 'this tunnel id is claimed with another secret: use that secret, or another --id');
  }
  return err ?? new ZksError('ZKS_ERR_CONNECTION_LOST', 'the tunnel closed the connection');
}
