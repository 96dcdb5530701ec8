// The pool of relay WebSockets. A Worker invocation may hold only 6 outbound connections, so streams are
// spread over several WebSockets (at most `maxStreamsPerConnection` each). One connection is kept warm so
// a new stream costs one round trip, lost connections reset their streams (never silently truncate) and are
// replaced with exponential backoff; surplus connections idle for `idleCloseMs` are closed.

import { DatagramActivity } from '../protocol/delay-pacer';
import { ConnectResult, CONNECT_RESULT_NAMES, type ConnectResultCode } from '../protocol/constants';
import { formatTarget, type Target } from '../protocol/address';
import { ZksError } from '../errors/zks-error';
import type { MuxStream } from '../protocol/stream';
import { TunnelConnection, type ConnectionOptions } from './connection';
import { installLinkDiagnostics } from '../link/diagnostics';
import type { DatagramDialer, DatagramFlow, EchoRequest, EchoResult } from '../protocol/datagram-types';
import { PoolDatagrams } from './datagram-dialer';
import { probeOver, RelaySet } from './relay-set';

installLinkDiagnostics();

export interface PoolOptions extends Omit<ConnectionOptions, 'onClose'> {
  /** Several relays: connections spread over those that are up (`url` is then the first); see relay-set.ts. */
  relayUrls?: string[];
  maxStreamsPerConnection?: number;
  maxConnections?: number;
  /** Time a stream request may wait for a working relay connection before it fails. */
  connectTimeoutMs?: number;
  idleCloseMs?: number;
  log?: (line: string) => void;
}

export type OpenResult =
  | { ok: true; stream: MuxStream; connectionId: number }
  | { ok: false; code: ConnectResultCode; message: string };

interface Slot {
  conn: TunnelConnection | null;
  ready: Promise<TunnelConnection>;
  reserved: number;
  /** When the sweep first saw this connection carry nothing (keepalive PONGs arrive on idle links, so not lastReceiveAt). */
  idleSince: number | null;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 8_000;

export class TunnelPool implements DatagramDialer {
  private readonly slots: Slot[] = [];
  private backoffMs = 0;
  private nextAttemptAt = 0;
  private lastError: ZksError | null = null;
  private stopped = false;
  private sweepTimer: NodeJS.Timeout;
  readonly maxStreams: number;
  readonly maxConnections: number;
  private readonly datagrams = new PoolDatagrams(this);
  /** Where this pool's WebSockets go: one relay, or several with health checks. */
  readonly relays: RelaySet;
  private readonly ownsRelays: boolean;
  private everUp = false;

  constructor(private readonly opts: PoolOptions) {
    // the dedicated datagram connection and the stream connections share the path's queues (delay-pacer.ts)
    this.ownsRelays = opts.relays === undefined;
    // Health checks take the same way as the WebSockets (zksd: marked sockets to the pinned addresses).
    this.relays = opts.relays ?? new RelaySet(opts.relayUrls ?? [opts.url], { log: opts.log, probe: opts.openTcp ? probeOver(opts.openTcp) : undefined });
    this.opts = { ...opts, relays: this.relays, datagramActivity: opts.datagramActivity ?? new DatagramActivity() };
    this.maxStreams = opts.maxStreamsPerConnection ?? 6;
    this.maxConnections = opts.maxConnections ?? 512;
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(opts.idleCloseMs ?? 60_000, 10_000));
    this.sweepTimer.unref();
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** Whether this pool goes through a room to an exit peer (relay mode), not to the Worker's connect(). */
  get hasRoom(): boolean {
    return this.opts.room !== undefined;
  }

  /** The path of the relay link carrying `stream` now (room, direct, turn, worker); null once it is gone. */
  pathOf(stream: MuxStream): string | null {
    for (const c of this.connections) if (c.mux.streams.get(stream.id) === stream) return c.path;
    return null;
  }

  /** A connection is being resumed on a new WebSocket: the relay (or exit peer) is expected back. */
  private get resuming(): boolean {
    return this.slots.some((s) => s.conn?.resuming === true && !s.conn.closed);
  }

  get connections(): TunnelConnection[] {
    return this.slots.flatMap((s) => (s.conn && !s.conn.closed ? [s.conn] : []));
  }

  /** Opens the warm connection; resolves when it is up (rejects with the reason when the relay is unusable). */
  async start(): Promise<void> {
    if (this.relays.size === 1) {
      await this.addSlot().ready;
      return;
    }
    // One connection per relay at once: the first up is enough, a dead or black-holed relay never delays the start.
    const attempts = this.relays.urls.map(() => this.addSlot().ready);
    try {
      await Promise.any(attempts);
    } catch (err) {
      throw (err as AggregateError).errors[0];
    }
  }

  /**
   * Opens a stream to `target` and waits for the relay's CONNECT_RESULT. While the relay is unreachable this
   * fails after one connection attempt (or at once during backoff) instead of hanging the application.
   */
  async open(target: Target): Promise<OpenResult> {
    const deadline = Date.now() + (this.opts.connectTimeoutMs ?? 10_000);
    const unavailable = (): OpenResult => ({
      ok: false,
      code: ConnectResult.GENERAL_FAILURE,
      message: `relay unavailable: ${this.lastError ? this.lastError.message : 'no relay connection available'}`,
    });
    for (;;) {
      if (this.stopped) return { ok: false, code: ConnectResult.GENERAL_FAILURE, message: 'client is shutting down' };
      const slot = this.reserve();
      if (!slot) {
        // Backing off after failures: fail now, unless a connection is being resumed (a deploy, a restart: the
        // relay is likely back within seconds). Or every connection is full: wait for a free slot.
        if (Date.now() >= deadline || (Date.now() < this.nextAttemptAt && !this.resuming)) return unavailable();
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      let conn: TunnelConnection;
      try {
        conn = await slot.ready;
      } catch {
        slot.reserved--;
        if (Date.now() >= deadline) return unavailable();
        // That relay was left and another is up (no backoff was set): the stream goes there.
        if (this.relays.size > 1 && this.relays.anyUp && Date.now() >= this.nextAttemptAt) continue;
        // The relay or its exit peer is away while a session resumes: wait for it rather than fail the stream.
        if (this.resuming) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        return unavailable();
      }
      slot.reserved--;
      if (conn.closed) continue;
      // Its WebSocket is lost and the session is being resumed: the stream waits for that, but not past the
      // connect deadline (a relay that stays away fails new streams after it, not after the whole grace period).
      if (conn.resuming) {
        if (Date.now() >= deadline) return { ok: false, code: ConnectResult.GENERAL_FAILURE, message: `relay unavailable: the session is being resumed (${conn.lostWhy})` };
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      return await this.openOn(conn, target);
    }
  }

  private openOn(conn: TunnelConnection, target: Target): Promise<OpenResult> {
    return new Promise<OpenResult>((resolve) => {
      let stream: MuxStream;
      try {
        stream = conn.mux.openStream(target);
      } catch (err) {
        resolve({ ok: false, code: ConnectResult.GENERAL_FAILURE, message: (err as Error).message });
        return;
      }
      stream.onResult = (code, message) => {
        if (code === ConnectResult.OK) resolve({ ok: true, stream, connectionId: conn.id });
        else resolve({ ok: false, code, message: message || CONNECT_RESULT_NAMES[code] });
      };
      stream.onClose = (err) => {
        // Closed before any result: the connection died while we waited.
        resolve({ ok: false, code: ConnectResult.GENERAL_FAILURE, message: err?.message ?? `stream to ${formatTarget(target)} closed` });
      };
    });
  }

  /** A UDP flow through a connection whose peer relays UDP (relay mode); ZKS_ERR_UNSUPPORTED through a Worker. */
  openDatagramFlow(): Promise<DatagramFlow | ZksError> {
    return this.datagrams.openDatagramFlow();
  }

  /** One echo: real ICMP at an exit peer, else the time of a TCP connect through the Worker (method 'tcp'). */
  echo(req: EchoRequest): Promise<EchoResult> {
    return this.datagrams.echo(req);
  }

  /** A live connection for datagrams (they take no stream slot), waiting for the warm one if it is coming up. */
  async anyConnection(): Promise<TunnelConnection | ZksError> {
    if (this.stopped) return new ZksError('ZKS_ERR_CONNECTION_LOST', 'client is shutting down');
    const live = this.connections[0];
    if (live) return live;
    let slot = this.slots[0];
    if (!slot) {
      if (Date.now() < this.nextAttemptAt) return this.lastError ?? new ZksError('ZKS_ERR_RELAY_UNREACHABLE', 'no relay connection available');
      slot = this.addSlot();
    }
    try {
      const conn = await slot.ready;
      return conn.closed ? new ZksError('ZKS_ERR_CONNECTION_LOST', 'the relay connection closed') : conn;
    } catch (err) {
      return err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err));
    }
  }

  /** A connection of its own for datagrams (PoolDatagrams): not in the stream slots, so it never carries a stream. */
  async openDedicated(): Promise<TunnelConnection | ZksError> {
    if (this.stopped) return new ZksError('ZKS_ERR_CONNECTION_LOST', 'client is shutting down');
    try {
      const url = this.relays.pick();
      const conn = await TunnelConnection.open({
        ...this.opts,
        url,
        onClose: (c, err) => {
          if (err && !this.stopped) this.log(`datagram connection #${c.id} lost: ${err.message} (its UDP flows ended)`);
        },
      });
      if (this.stopped) conn.close();
      return conn;
    } catch (err) {
      return err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', String(err));
    }
  }

  /** The datagram connection when it is up (beside `connections`, which carry streams). */
  get datagramConnection(): TunnelConnection | null {
    return this.datagrams.connection;
  }

  /** Finds (or creates) a connection with a free stream slot and reserves it. */
  private reserve(): Slot | null {
    const free = (s: Slot) => {
      const load = (s.conn && !s.conn.closed ? s.conn.mux.streams.size : 0) + s.reserved;
      return (s.conn === null || !s.conn.closed) && load < this.maxStreams;
    };
    // A connection being resumed (its WebSocket lost) stalls a new stream until it is back: any other first. Not a
    // new one instead — during an outage that would fail at once where the resumed one carries the stream — unless
    // another relay is up: a new connection there carries the stream now.
    const room = this.slots.length < this.maxConnections && Date.now() >= this.nextAttemptAt;
    const elsewhere = room && this.relays.size > 1 && this.relays.anyUp;
    const found = this.slots.find((s) => free(s) && !s.conn?.resuming) ?? (elsewhere ? null : this.slots.find(free)) ?? null;
    if (found) {
      found.reserved++;
      return found;
    }
    if (!room) return null;
    const slot = this.addSlot();
    slot.reserved++;
    return slot;
  }

  private addSlot(): Slot {
    const slot: Slot = { conn: null, reserved: 0, idleSince: null, ready: null as unknown as Promise<TunnelConnection> };
    const url = this.relays.pick();
    slot.ready = TunnelConnection.open({
      ...this.opts, url, onClose: (c, err) => this.onConnectionClosed(slot, c, err), onResumed: (c) => this.relayBack(c.relayUrl),
    }).then(
      (conn) => {
        if (this.stopped) {
          // stop() came while this one was on its way: nothing may outlive the pool.
          conn.close();
          throw new ZksError('ZKS_ERR_CONNECTION_LOST', 'client is shutting down');
        }
        this.relays.up(url);
        slot.conn = conn;
        // "again" only after something was up: at start, one of several relays failing first is no outage.
        if (this.everUp && (this.backoffMs > 0 || this.lastError)) this.log(`relay connection #${conn.id} up again (${conn.suite})`);
        this.everUp = true;
        this.backoffMs = 0;
        this.nextAttemptAt = 0;
        this.lastError = null;
        return conn;
      },
      (err: ZksError) => {
        this.removeSlot(slot);
        if (isRelayFault(err)) this.relays.down(url, err.message, { probe: err.code !== 'ZKS_ERR_EXIT_OFFLINE' });
        if (isRelayFault(err) && this.relays.size > 1 && this.relays.anyUp) {
          // Another relay serves: no backoff, the next connection goes there.
          this.lastError = err;
          throw err;
        }
        this.backoffMs = this.backoffMs ? Math.min(this.backoffMs * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
        this.nextAttemptAt = Date.now() + this.backoffMs;
        if (this.lastError?.message !== err.message) this.log(`relay connection failed: ${err.message} (retrying in ${this.backoffMs} ms)`);
        this.lastError = err;
        throw err;
      },
    );
    slot.ready.catch(() => {});
    this.slots.push(slot);
    return slot;
  }

  /**
   * A session resumed: its relay and exit peer are there again, so the back-off of the failures meanwhile ends (it
   * would refuse new streams for seconds with a stale "relay unavailable").
   */
  private relayBack(url: string): void {
    this.relays.up(url);
    this.backoffMs = 0;
    this.nextAttemptAt = 0;
    this.lastError = null;
  }

  private removeSlot(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }

  private onConnectionClosed(slot: Slot, conn: TunnelConnection, err: ZksError | null): void {
    this.removeSlot(slot);
    if (this.stopped) return;
    if (err) {
      if (isRelayFault(err)) this.relays.down(conn.relayUrl, err.message, { probe: err.code !== 'ZKS_ERR_EXIT_OFFLINE' });
      const n = conn.mux.streamsOpened;
      // Through a Worker that keeps no sessions the target connections went with the WebSocket: nothing to resume.
      const why = conn.viaRoom || conn.sessionKept ? ''
        : this.opts.resumeGraceMs === 0 ? '; not resumed: --resume-grace 0'
        : '; this relay keeps no direct-mode sessions (ZKS_DIRECT_RESUME), so they cannot be resumed: README "Resume"';
      this.log(`relay connection #${conn.id} lost: ${err.message} (its open streams were reset; ${n} streams carried${why})`);
      this.lastError = err;
    }
    // Keep one connection warm so the next stream does not pay for a handshake.
    if (this.connections.length === 0 && this.slots.length === 0) {
      const delay = err ? BACKOFF_MIN_MS : 0;
      setTimeout(() => {
        if (!this.stopped && this.slots.length === 0) this.addSlot();
      }, delay).unref();
    }
  }

  private sweep(): void {
    const idleMs = this.opts.idleCloseMs ?? 60_000;
    this.datagrams.sweep(idleMs);
    const now = Date.now();
    let keep = 1; // the warm connection
    for (const s of this.slots) {
      const conn = s.conn;
      if (!conn || conn.closed) continue;
      if (conn.mux.streams.size > 0 || conn.mux.datagrams.flows.size > 0 || s.reserved > 0) {
        s.idleSince = null;
        continue;
      }
      s.idleSince ??= now;
      if (keep > 0) {
        keep--;
        continue;
      }
      if (now - s.idleSince >= idleMs) conn.close();
    }
  }

  /** Closes every connection; open streams are reset. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ownsRelays) this.relays.stop();
    clearInterval(this.sweepTimer);
    await this.datagrams.stop();
    for (const s of [...this.slots]) s.conn?.close();
    this.slots.length = 0;
  }
}

/**
 * Failures that say the relay (or its room's exit) is not there, as opposed to a refusal that another relay would
 * repeat (a wrong key, a refused proof). EXIT_OFFLINE: with several relays the exit may be attached to another.
 */
function isRelayFault(err: ZksError): boolean {
  return ['ZKS_ERR_RELAY_UNREACHABLE', 'ZKS_ERR_TIMEOUT', 'ZKS_ERR_CONNECTION_LOST', 'ZKS_ERR_EXIT_OFFLINE'].includes(err.code);
}
