// The direct TCP path of one relay-mode session (PROTOCOL.md §3.7, docs/design/paths.md §10): where the client can
// reach the exit peer's addresses, one TCP connection between them carries the session's records — a cost per large
// segment, as on the room's own TCP, not per 1.2 KB packet as on a DataChannel. The client asks (TCP_OFFER); the
// exit listens for this attempt only and answers its addresses and a nonce (TCP_ANSWER); the client connects to
// all of them at once and the first connection whose PATH_HELLO / PATH_WELCOME check out becomes a path of the
// SecureLink. Whatever goes wrong ends the attempt (TCP_CLOSE tells the peer); the room resends what was lost.

import { randomBytes } from 'node:crypto';
import { connect, isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { SignalKind, type SignalKindValue } from '../protocol/signal-codec';
import { HoldReason } from '../link/paths';
import type { SecureLink } from '../link/secure-link';
import { DEFAULT_DIRECT, type DirectConfig } from './config';
import { MIN_OFFER_INTERVAL_MS } from './direct-limits';
import { unusableCandidateAddress } from './sdp-lines';
import { formatTcpAnswer, parseTcpAnswer, pathHello, welcomeValid, MAX_TCP_CANDIDATES, PATH_WELCOME_SIZE, TCP_NONCE_SIZE, type TcpCandidate } from './tcp-hello';
import { waitForTcpPath } from './tcp-listener';
import { TcpPath } from './tcp-path';

export interface TcpDirectOptions {
  role: 'offer' | 'answer';
  link: SecureLink;
  config: DirectConfig;
  /** tcp-hello.ts deriveTcpPathKey. */
  key: Uint8Array;
  log(line: string): void;
  /** The path came up or went away (the owner picks the path in use). */
  changed(): void;
}

export interface TcpDirectStatus {
  up: boolean;
  rttMs: number;
  route: string | null;
}

interface Attempt {
  readonly started: number;
  timer: ReturnType<typeof setTimeout>;
  sockets: Set<Socket>;
  path: TcpPath | null;
  pathId: number;
  route: string | null;
  /** Exit: stops waiting on the listener. */
  stopListening: (() => void) | null;
  answered: boolean;
}

/** "host:port" for logs and status; an IPv4 peer on a dual-stack listener shows as IPv4, not ::ffff:a.b.c.d. */
function at(address: string, port: number): string {
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  return plain.includes(':') ? `[${plain}]:${port}` : `${plain}:${port}`;
}
const errorText = (err: unknown): string => (err as Error)?.message ?? String(err);

/** The exit's addresses worth offering: configured ones, the bind address, or every non-loopback interface address. */
/** At most MAX_TCP_CANDIDATES; an IPv4-only listener (`host` 0.0.0.0) offers no IPv6 address. */
export function localTcpCandidates(config: DirectConfig, port: number, host: string): TcpCandidate[] {
  if (config.tcpAdvertise?.length) return config.tcpAdvertise.slice(0, MAX_TCP_CANDIDATES).map((c) => ({ address: c.host, port: c.port ?? port }));
  const bind = config.bindAddress;
  if (bind && bind !== '0.0.0.0' && bind !== '::') return [{ address: bind, port }];
  const found: TcpCandidate[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      // Link-local addresses need a scope (IPv6) or a shared link the peer cannot know.
      if (a.internal || linkLocal(a.address) || (host === '0.0.0.0' && a.family !== 'IPv4')) continue;
      found.push({ address: a.address, port });
    }
  }
  return found.slice(0, MAX_TCP_CANDIDATES);
}

function linkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address) || address.startsWith('169.254.');
}

export class TcpDirect {
  private attempt: Attempt | null = null;
  private closed = false;
  private lastOfferAt = -Infinity;
  private readonly config: typeof DEFAULT_DIRECT & DirectConfig;
  attempts = 0;
  failures = 0;
  lastError: string | null = null;

  constructor(private readonly opts: TcpDirectOptions) {
    this.config = { ...DEFAULT_DIRECT, ...opts.config };
  }

  get status(): TcpDirectStatus {
    const p = this.attempt?.path;
    return { up: !!p, rttMs: p ? p.rttMs : -1, route: p ? this.attempt!.route : null };
  }

  /** The link's path id while up, else null. */
  get pathId(): number | null {
    return this.attempt?.path ? this.attempt.pathId : null;
  }

  get connecting(): boolean {
    return this.attempt !== null && !this.attempt.path;
  }

  /** Client: asks the exit peer for a TCP path (replacing an attempt in progress, never one that is up). */
  start(): void {
    if (this.opts.role !== 'offer' || this.closed || this.attempt?.path) return;
    this.newAttempt(this.config.connectTimeoutMs, 'no TCP_ANSWER');
    this.signal(SignalKind.TCP_OFFER, '');
  }

  onSignal(kind: SignalKindValue, text: string): void {
    if (this.closed) return;
    if (kind === SignalKind.TCP_OFFER) return this.onOffer();
    if (kind === SignalKind.TCP_ANSWER) return this.onAnswer(text);
    if (kind === SignalKind.TCP_CLOSE && this.attempt) this.end(this.attempt, `the peer ended the TCP path${text ? `: ${text}` : ''}`, false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.attempt) this.end(this.attempt, 'the session ended', false);
  }

  private newAttempt(timeoutMs: number, what: string): Attempt {
    if (this.attempt) this.end(this.attempt, 'replaced by a new attempt', false);
    this.attempts++;
    const a: Attempt = {
      started: performance.now(), sockets: new Set(), path: null, pathId: -1, route: null, stopListening: null, answered: false,
      timer: setTimeout(() => this.end(a, `${what} within ${timeoutMs} ms`), timeoutMs),
    };
    a.timer.unref?.();
    this.attempt = a;
    return a;
  }

  // ---- exit peer ----

  private onOffer(): void {
    if (this.opts.role !== 'answer') return this.opts.log('direct TCP path: ignored an offer from the exit peer');
    const now = performance.now();
    if (now - this.lastOfferAt < MIN_OFFER_INTERVAL_MS) {
      this.opts.log(`direct TCP path: ignored an offer ${Math.round(now - this.lastOfferAt)} ms after the last one`);
      return this.signal(SignalKind.TCP_CLOSE, 'offers too frequent');
    }
    this.lastOfferAt = now;
    const a = this.newAttempt(this.config.connectTimeoutMs, 'no TCP connection');
    const nonce = randomBytes(TCP_NONCE_SIZE);
    const bind = this.config.bindAddress ?? '::';
    const waiting = { key: this.opts.key, nonce, connected: (s: Socket, rest: Uint8Array) => this.up(a, s, rest, `${at(s.localAddress ?? '?', s.localPort ?? 0)} ↔ ${at(s.remoteAddress ?? '?', s.remotePort ?? 0)}`) };
    const listen = (host: string) => waitForTcpPath(host, this.config.tcpPort ?? 0, waiting).then((l) => ({ ...l, host }));
    // '::' takes IPv4 too; a host without IPv6 gets 0.0.0.0.
    listen(bind)
      .catch((err: unknown) => (bind === '::' ? listen('0.0.0.0') : Promise.reject(err)))
      .then(({ port, stop, host }) => {
        if (this.attempt !== a) return stop();
        a.stopListening = stop;
        const candidates = localTcpCandidates(this.config, port, host);
        if (candidates.length === 0) return this.end(a, 'no local address to offer');
        this.signal(SignalKind.TCP_ANSWER, formatTcpAnswer({ nonce, candidates }));
      })
      .catch((err: unknown) => this.end(a, `cannot listen for a TCP path: ${errorText(err)}`));
  }

  // ---- client ----

  private onAnswer(text: string): void {
    const a = this.attempt;
    if (this.opts.role !== 'offer' || !a || a.answered) return this.opts.log('direct TCP path: ignored an answer nobody asked for');
    a.answered = true;
    const answer = parseTcpAnswer(text);
    if (typeof answer === 'string') return this.end(a, answer);
    const ownLoopback = unusableCandidateAddress(this.config.bindAddress ?? '0.0.0.0');
    const candidates = answer.candidates.filter((c) => ownLoopback || !unusableCandidateAddress(c.address));
    if (candidates.length === 0) return this.end(a, 'the exit peer offered no address this client may use');
    const failures: string[] = [];
    clearTimeout(a.timer);
    const ms = this.config.tcpConnectTimeoutMs;
    a.timer = setTimeout(() => this.end(a, `no TCP connection within ${ms} ms${failures.length ? ` (${failures.join('; ')})` : ''}`), ms);
    a.timer.unref?.();
    let pending = candidates.length;
    const failed = (c: TcpCandidate, why: string) => {
      failures.push(`${at(c.address, c.port)} ${why}`);
      if (--pending === 0 && this.attempt === a && !a.path) this.end(a, `no TCP connection: ${failures.join('; ')}`);
    };
    for (const c of candidates) {
      this.tryCandidate(a, c, answer.nonce).catch((err: unknown) => failed(c, errorText(err)));
    }
  }

  private async tryCandidate(a: Attempt, c: TcpCandidate, exitNonce: Uint8Array): Promise<void> {
    await this.config.allowRemote?.(c.address, c.port); // zksd: routed outside the TUN, let through the kill switch
    if (this.attempt !== a || a.path) return;
    const socket = await (this.config.connectTcp ?? plainConnect)(c.address, c.port, this.config.bindAddress);
    socket.on('error', () => undefined); // whoever reads it next reports failures; none may go unhandled meanwhile
    if (this.attempt !== a || a.path) return void socket.destroy();
    a.sockets.add(socket);
    const clientNonce = randomBytes(TCP_NONCE_SIZE);
    socket.write(pathHello(this.opts.key, exitNonce, clientNonce));
    const got = await readExactly(socket, PATH_WELCOME_SIZE);
    a.sockets.delete(socket);
    if (this.attempt !== a || a.path) return void socket.destroy();
    if (!welcomeValid(this.opts.key, exitNonce, clientNonce, got.head)) {
      socket.destroy();
      throw new Error('answered without a valid PATH_WELCOME (not our exit peer)');
    }
    this.up(a, socket, got.rest, `${at(socket.localAddress ?? '?', socket.localPort ?? 0)} ↔ ${at(c.address, c.port)}`);
  }

  // ---- both ----

  private up(a: Attempt, socket: Socket, rest: Uint8Array, route: string): void {
    if (this.attempt !== a || a.path) return void socket.destroy();
    clearTimeout(a.timer);
    for (const s of a.sockets) s.destroy();
    a.sockets.clear();
    a.stopListening = null;
    a.route = route;
    const link = this.opts.link;
    const path = new TcpPath(socket, {
      record: (m) => link.receive(m),
      dead: (why) => this.end(a, why),
      backlogged: (held) => {
        if (this.attempt === a && link.activePath === a.pathId) link.mux.holdSending(held, HoldReason.PATH);
      },
    });
    a.path = path;
    a.pathId = link.addPath(path);
    path.start(rest);
    socket.resume();
    this.opts.log(`direct TCP path up (${route}) after ${Math.round(performance.now() - a.started)} ms`);
    this.opts.changed(); // the owner moves new records onto it
  }

  private end(a: Attempt, reason: string, tell = true): void {
    if (this.attempt !== a) return;
    this.attempt = null;
    clearTimeout(a.timer);
    a.stopListening?.();
    for (const s of a.sockets) s.destroy();
    const link = this.opts.link;
    const wasUp = a.path !== null;
    if (a.path) {
      a.path.stop();
      link.pathLost(a.pathId); // records it may have lost go again on the path in use (and its hold goes with it)
    }
    if (this.closed) return;
    if (tell) this.signal(SignalKind.TCP_CLOSE, reason);
    this.failures++;
    this.lastError = reason;
    const where = link.activePath === 0 ? 'the room' : 'the WebRTC path';
    this.opts.log(`direct TCP path ${wasUp ? 'lost' : 'not established'}: ${reason}; traffic ${wasUp ? 'back' : 'stays'} on ${where}`);
    this.opts.changed();
  }

  private signal(kind: SignalKindValue, text: string): void {
    this.opts.link.mux.sendSignal(kind, text);
  }
}

function plainConnect(address: string, port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const local = localAddress && isIP(localAddress) === isIP(address) ? { localAddress } : {};
    const socket = connect({ host: address, port, ...local });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** The first `n` bytes from `socket` and whatever came with them; reading pauses after them. */
function readExactly(socket: Socket, n: number): Promise<{ head: Uint8Array; rest: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < n) return;
      cleanup();
      socket.pause();
      const all = Buffer.concat(chunks);
      resolve({ head: all.subarray(0, n), rest: all.subarray(n) });
    };
    const onError = (err: Error) => (cleanup(), reject(err));
    const onClose = () => (cleanup(), reject(new Error('closed before its PATH_WELCOME')));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
