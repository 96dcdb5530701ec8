// An HTTP tunnel (Durable Object, one per tunnel id; docs/PROTOCOL.md §12): agents (`zks expose http://…`) hold
// WebSockets to it, each a session keyed by the Worker key; public requests to `/tunnel/<id>…` are carried to
// them one mux stream each (tunnel-forward.ts). The first agent's claim fixes the id's verifier in storage; an
// agent with another secret is refused (4403) and nothing else is touched. Several agents with the same secret
// share the requests (the one with the fewest in flight gets the next) and stand in for each other.
//
//   agent ──upgrade (HELLO)──▶ Worker ──▶ tunnel ──REPLY──▶ agent ──TUNNEL_CLAIM──▶ tunnel ──TUNNEL_READY──▶ agent
//   browser ──GET /tunnel/<id>/x──▶ Worker ──▶ tunnel ──stream: head, body──▶ agent ──▶ local server
//
// Not the Hibernation API: the sessions' keys live in memory, so the object stays resident while an agent is
// connected (the agents ping every 25 s). Without a connected agent nothing but the verifier is kept.

import { DurableObject } from 'cloudflare:workers';
import { verifyClientHello } from '../crypto/handshake';
import { decodeBase64Url, equalBytes } from '../crypto/bytes';
import { webCrypto } from '../crypto/webcrypto';
import { ZksError } from '../errors/zks-error';
import { CloseCode, ConnectResult } from '../protocol/constants';
import { SignalKind } from '../protocol/signal-codec';
import { parseClaim, type TunnelClaim } from '../protocol/tunnel-http';
import type { SecureLink } from '../link/secure-link';
import { acceptLink } from './accept-link';
import { loadConfig, type Env } from './env';
import { RateBucket } from './room-limits';
import { forwardRequest, requestHead } from './tunnel-forward';
import { SpareStreams } from './tunnel-streams';
import { tunnelErrorPage } from './tunnel-pages';

/** Set by the Worker after its checks (any incoming value is overwritten): 'agent' or 'public'. */
export const TUNNEL_ROLE_HEADER = 'X-Zks-Tunnel-Role';
export const TUNNEL_ID_HEADER = 'X-Zks-Tunnel-Id';
/** The close code an agent gets when the id is claimed with another secret. */
export const TUNNEL_TAKEN_CLOSE = 4403;
const CLAIM_TIMEOUT_MS = 10_000;
const HEAD_TIMEOUT_MS = 30_000;
/** Agents serving at once, and agents still to claim (a newer one closes the oldest of those). */
const MAX_AGENTS = 16;
const MAX_PENDING_AGENTS = 8;
const VERIFIER_KEY = 'verifier';
/** Failed Basic-auth attempts per second a tunnel answers with 401 (burst twice that); more get 429. */
const AUTH_FAILURES_PER_SECOND = 10;
const INTERNAL_HEADERS = [TUNNEL_ROLE_HEADER.toLowerCase(), TUNNEL_ID_HEADER.toLowerCase()];

interface Agent {
  socket: WebSocket;
  link: SecureLink | null;
  /** Streams opened ahead of requests, once the agent's claim is accepted. */
  streams: SpareStreams | null;
  claim: TunnelClaim | null;
  inFlight: number;
  since: number;
}

const refuse = () => new Response('Unauthorized', { status: 401 });

export class ZksTunnel extends DurableObject<Env> {
  private readonly agents = new Set<Agent>();
  /** The claimed verifier; undefined until read from storage, null when the id was never claimed. */
  private verifier: Uint8Array | null | undefined;
  private inFlight = 0;
  private bucket: { rate: number; bucket: RateBucket } | null = null;
  private readonly authFailures = new RateBucket(AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_PER_SECOND * 2, Date.now());

  override async fetch(request: Request): Promise<Response> {
    const id = request.headers.get(TUNNEL_ID_HEADER) ?? '';
    switch (request.headers.get(TUNNEL_ROLE_HEADER)) {
      case 'agent':
        return this.acceptAgent(request);
      case 'public':
        return this.serve(request, id);
      default:
        return refuse();
    }
  }

  private async loadVerifier(): Promise<Uint8Array | null> {
    if (this.verifier === undefined) {
      const stored = await this.ctx.storage.get<Uint8Array>(VERIFIER_KEY);
      if (this.verifier === undefined) this.verifier = stored ? new Uint8Array(stored) : null;
    }
    return this.verifier;
  }

  private async acceptAgent(request: Request): Promise<Response> {
    const config = loadConfig(this.env);
    const offered = request.headers.get('Sec-WebSocket-Protocol') ?? '';
    const token = offered.split(',').map((p) => p.trim()).find((p) => p.startsWith('zks1.'));
    const hello = token ? decodeBase64Url(token.slice(5)) : null;
    if (!config || !hello) return refuse();
    const verified = await verifyClientHello(webCrypto, config.key, hello);
    if (verified instanceof ZksError) return refuse();
    const serving = [...this.agents].filter((a) => a.claim);
    if (serving.length >= MAX_AGENTS) return new Response(`this tunnel already has ${MAX_AGENTS} agents`, { status: 503 });
    const pending = [...this.agents].filter((a) => !a.claim);
    if (pending.length >= MAX_PENDING_AGENTS) this.dropAgent(pending[0], CloseCode.HANDSHAKE_FAILED, 'ZKS_ERR_TIMEOUT: a newer agent came before this one claimed');

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    server.accept();
    (server as unknown as { binaryType: string }).binaryType = 'arraybuffer';
    const agent: Agent = { socket: server, link: null, streams: null, claim: null, inFlight: 0, since: Date.now() };
    this.agents.add(agent);
    agent.link = await acceptLink(server, config.key, verified, config, {
      // An upload is one stream: it may use the link's whole unacknowledged budget (LINK_UNACKED_BYTES still caps it).
      maxSendCredit: config.linkUnackedBytes,
      onStream: (stream) => stream.reject(ConnectResult.FORBIDDEN, 'an HTTP tunnel opens no streams towards the relay'),
      onSignal: (kind, text) => {
        this.onSignal(agent, kind, text).catch((err: Error) => {
          console.error('zks relay: tunnel claim failed:', err.message);
          this.dropAgent(agent, CloseCode.PROTOCOL_ERROR, 'ZKS_ERR_INTERNAL: the tunnel could not store the claim');
        });
      },
      onClose: () => this.agents.delete(agent),
    });
    if (!agent.link) this.agents.delete(agent);
    const timer = setTimeout(() => {
      if (!agent.claim) this.dropAgent(agent, CloseCode.HANDSHAKE_FAILED, `ZKS_ERR_TIMEOUT: no claim within ${CLAIM_TIMEOUT_MS} ms`);
    }, CLAIM_TIMEOUT_MS);
    server.addEventListener('close', () => clearTimeout(timer));
    return new Response(null, { status: 101, webSocket: client, headers: { 'Sec-WebSocket-Protocol': 'zks1' } });
  }

  private dropAgent(agent: Agent, code: number, reason: string): void {
    this.agents.delete(agent);
    agent.link?.socketClosed(reason);
    try {
      agent.socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  private async onSignal(agent: Agent, kind: number, text: string): Promise<void> {
    if (kind !== SignalKind.TUNNEL_CLAIM || agent.claim || !this.agents.has(agent)) return;
    const claim = parseClaim(text);
    if (claim instanceof ZksError) return this.dropAgent(agent, CloseCode.PROTOCOL_ERROR, `${claim.code}: ${claim.message}`);
    const stored = await this.loadVerifier();
    if (stored === null) {
      this.verifier = claim.verifier;
      await this.ctx.storage.put(VERIFIER_KEY, claim.verifier);
    } else if (!equalBytes(stored, claim.verifier)) {
      return this.dropAgent(agent, TUNNEL_TAKEN_CLOSE, 'ZKS_ERR_TUNNEL_TAKEN: this tunnel id is claimed with another secret');
    }
    if (!this.agents.has(agent)) return; // gone while storage answered
    agent.claim = claim;
    const serving = [...this.agents].filter((a) => a.claim).length;
    agent.link?.mux.sendSignal(SignalKind.TUNNEL_READY, JSON.stringify({ agents: serving }));
    if (agent.link) {
      agent.streams = new SpareStreams(agent.link);
      agent.streams.fill();
    }
  }

  private unauthorized(id: string): Response {
    return tunnelErrorPage(401, 'This tunnel needs a user name and password.', {
      'www-authenticate': `Basic realm="zks tunnel ${id}", charset="UTF-8"`,
    });
  }

  /** The settings requests are held to: the newest serving agent's (agents of one tunnel normally agree). */
  private settings(serving: Agent[]): TunnelClaim {
    return serving.reduce((a, b) => (b.since > a.since ? b : a)).claim!;
  }

  private async serve(request: Request, id: string): Promise<Response> {
    const serving = [...this.agents].filter((a) => a.claim && a.streams && a.link && !a.link.mux.isClosed);
    if (serving.length === 0) {
      // Never claimed: the same bare answer as any unknown path (nothing to enumerate).
      if ((await this.loadVerifier()) === null) return refuse();
      return tunnelErrorPage(502, "The tunnel's agent is not connected.");
    }
    const claim = this.settings(serving);
    if (claim.access !== 'public') {
      // Guessing is bounded: failed attempts spend a bucket of their own, and while it is empty no password is
      // checked at all (a right guess would otherwise still get through at any rate).
      if (!this.authFailures.canTake(Date.now())) {
        return tunnelErrorPage(429, 'Too many failed logins; try again later.', { 'retry-after': '1' });
      }
      if (!(await basicAuthMatches(request.headers.get('authorization'), claim.access))) {
        this.authFailures.take(Date.now());
        return this.unauthorized(id);
      }
    }
    if (this.inFlight >= claim.maxConcurrent) {
      return tunnelErrorPage(429, `This tunnel serves at most ${claim.maxConcurrent} requests at once.`, { 'retry-after': '1' });
    }
    if (!this.bucket || this.bucket.rate !== claim.ratePerSecond) {
      this.bucket = { rate: claim.ratePerSecond, bucket: new RateBucket(claim.ratePerSecond, claim.ratePerSecond, Date.now()) };
    }
    if (!this.bucket.bucket.take(Date.now())) {
      return tunnelErrorPage(429, `This tunnel serves at most ${claim.ratePerSecond} requests per second.`, { 'retry-after': '1' });
    }
    const upgrade = request.headers.get('upgrade');
    if (upgrade && upgrade.toLowerCase() !== 'websocket') {
      return tunnelErrorPage(501, `This tunnel carries WebSocket upgrades only, not "${upgrade.slice(0, 32)}".`);
    }
    const opts = {
      id, keepPrefix: claim.keepPrefix, maxBodyBytes: claim.maxBodyBytes, headTimeoutMs: HEAD_TIMEOUT_MS,
      dropHeaders: new Set(claim.access === 'public' ? INTERNAL_HEADERS : [...INTERNAL_HEADERS, 'authorization']),
    };
    const head = requestHead(request, opts);
    if (head instanceof Response) return head;
    const agent = serving.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    agent.inFlight++;
    this.inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      agent.inFlight--;
      this.inFlight--;
    };
    try {
      return await forwardRequest(request, agent.streams!, head, opts, release);
    } catch (err) {
      release();
      throw err;
    }
  }
}

/** HTTP Basic credentials against the SHA-256 the agent registered, compared in constant time. */
async function basicAuthMatches(header: string | null, expected: Uint8Array): Promise<boolean> {
  const m = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(header ?? '');
  if (!m) return false;
  let raw: string;
  try {
    raw = atob(m[1]);
  } catch {
    return false;
  }
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  return equalBytes(await webCrypto.sha256(bytes), expected);
}
