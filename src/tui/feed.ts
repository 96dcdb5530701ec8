// The TUI's data layer: finds a control socket that answers, takes a first snapshot (status + flows), subscribes
// to flows/status/log events and keeps the latest of each. When the peer goes away it says so and retries with a
// bounded backoff (250 ms doubling to 1 s). No React here: the view reads getState() through subscribe(),
// the shape useSyncExternalStore wants, and tests drive it against a real control server.

import { dirname } from 'node:path';
import { ControlClient } from '../control/client';
import { proxyControlPath, userControlDir } from '../control/paths';
import { checkPrivateDir } from '../control/run-dir';
import type { ControlCommand, ControlEvent } from '../control/protocol';
import { ZksError } from '../errors/zks-error';
import { readStatus } from '../control/status';
import { daemonName, parseFlows, parseLog, type LogEntry, type TuiFlow, type TuiStatus } from './model';

export interface FeedState {
  phase: 'waiting' | 'connected';
  /** The socket in use while connected; null while waiting. */
  socket: string | null;
  candidates: readonly string[];
  status: TuiStatus | null;
  flows: TuiFlow[];
  /** Newest last; bounded. */
  log: LogEntry[];
  /** Why the last attempt failed when a retry alone will not fix it (permission denied). */
  problem: string | null;
  /** Rounds over every candidate that found nothing (since start). */
  failedRounds: number;
}

export interface FeedOptions {
  sockets: readonly string[];
  /** Longest wait between attempts. */
  retryMaxMs?: number;
  connectTimeoutMs?: number;
  logLimit?: number;
}

const FIRST_RETRY_MS = 250;

export class ControlFeed {
  private state: FeedState;
  private readonly listeners = new Set<() => void>();
  private client: ControlClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = true;
  private readonly retryMaxMs: number;
  private readonly connectTimeoutMs: number;
  private readonly logLimit: number;

  constructor(opts: FeedOptions) {
    if (opts.sockets.length === 0) throw new ZksError('ZKS_ERR_CONFIG', 'no control socket to watch');
    this.retryMaxMs = opts.retryMaxMs ?? 1_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1_000;
    this.logLimit = opts.logLimit ?? 100;
    this.state = { phase: 'waiting', socket: null, candidates: [...opts.sockets], status: null, flows: [], log: [], problem: null, failedRounds: 0 };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.attempt();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    if (c) {
      c.onClose = null;
      c.onEvent = null;
      c.destroy();
    }
  }

  getState = (): FeedState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Resolves once connected (or rejects after timeoutMs) — for --once snapshots and tests. */
  whenConnected(timeoutMs: number): Promise<FeedState> {
    return this.until((s) => s.phase === 'connected', timeoutMs, 'no control socket answered');
  }

  until(pred: (s: FeedState) => boolean, timeoutMs: number, what = 'condition not met'): Promise<FeedState> {
    if (pred(this.state)) return Promise.resolve(this.state);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ZksError('ZKS_ERR_TIMEOUT', `${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.subscribe(() => {
        if (!pred(this.state)) return;
        clearTimeout(timer);
        off();
        resolve(this.state);
      });
    });
  }

  async setKillSwitch(on: boolean): Promise<boolean> {
    const r = (await this.command('killswitch', { on })) as { killSwitch?: unknown };
    const value = typeof r?.killSwitch === 'boolean' ? r.killSwitch : on;
    // Show the answer now rather than at the next status event (up to a second later).
    if (this.state.status) this.set({ status: { ...this.state.status, killSwitch: value } });
    return value;
  }

  async addBypass(cidr: string): Promise<string[]> {
    const r = (await this.command('route.add', { cidr })) as { bypass?: unknown };
    const bypass = Array.isArray(r?.bypass) ? r.bypass.filter((c): c is string => typeof c === 'string') : [];
    if (this.state.status) this.set({ status: { ...this.state.status, bypass } });
    return bypass;
  }

  async closeFlow(id: number): Promise<void> {
    await this.command('flow.close', { id });
  }

  /** A line from the TUI itself (connection changes), shown like the daemon's log events. */
  note(message: string): void {
    this.set({ log: this.withLog({ at: Date.now(), message }) });
  }

  private command(cmd: ControlCommand, args: Record<string, unknown>): Promise<unknown> {
    const c = this.client;
    if (c === null || this.state.phase !== 'connected') {
      return Promise.reject(new ZksError('ZKS_ERR_NOT_RUNNING', 'not connected: waiting for the daemon'));
    }
    return c.request(cmd, args);
  }

  private async attempt(): Promise<void> {
    this.timer = null;
    let problem: string | null = null;
    for (const path of this.state.candidates) {
      if (this.stopped) return;
      let c: ControlClient;
      try {
        // A proxy's socket counts only in the user's own private dir (someone else may have made /tmp/zks-<uid>).
        if (path === proxyControlPath() || dirname(path) === userControlDir()) checkPrivateDir(dirname(path));
        c = await ControlClient.connect(path, this.connectTimeoutMs);
      } catch (err) {
        // Nothing listening is the normal waiting case; a refusal by file mode needs the user to act.
        if (err instanceof ZksError && err.code === 'ZKS_ERR_CONFIG') problem = err.message;
        continue;
      }
      if (this.stopped) return void c.destroy();
      if (await this.attach(c, path)) return;
    }
    this.set({ problem, failedRounds: this.state.failedRounds + 1 });
    this.retry();
  }

  /** First snapshot, then events; false (connection dropped) when the peer does not answer. */
  private async attach(c: ControlClient, path: string): Promise<boolean> {
    let lost = false;
    c.onClose = () => {
      lost = true;
      if (this.client === c) this.lost(path);
    };
    c.onEvent = (ev) => {
      if (this.client === c) this.event(ev);
    };
    try {
      const answers = Promise.all([c.request('status'), c.request('flows', { closed: true }), c.request('subscribe', { topics: ['flows', 'status', 'log'] })]);
      const [status, flows] = await withTimeout(answers, this.connectTimeoutMs * 3);
      if (lost || this.stopped) throw new ZksError('ZKS_ERR_NOT_RUNNING', 'closed');
      this.client = c;
      this.failures = 0;
      const st = readStatus(status);
      if (st === null) throw new ZksError('ZKS_ERR_CONTROL_VERSION', 'status names no mode this version knows');
      this.set({
        phase: 'connected', socket: path, status: st, flows: parseFlows(flows), problem: null,
        log: this.withLog({ at: Date.now(), message: `connected to ${daemonName(st.mode)} at ${path}` }),
      });
      return true;
    } catch {
      c.onClose = null;
      c.onEvent = null;
      c.destroy();
      return false;
    }
  }

  private event(ev: ControlEvent): void {
    switch (ev.event) {
      case 'flows':
        this.set({ flows: parseFlows(ev.data) });
        break;
      case 'status':
        this.set({ status: readStatus(ev.data) ?? this.state.status });
        break;
      case 'log': {
        const entry = parseLog(ev.data);
        if (entry) this.set({ log: this.withLog(entry) });
        break;
      }
    }
  }

  private lost(path: string): void {
    this.client = null;
    // Stale numbers would look live: drop them and show the waiting screen.
    this.set({ phase: 'waiting', socket: null, status: null, flows: [], log: this.withLog({ at: Date.now(), message: `lost the connection to ${path}; reconnecting` }) });
    this.failures = 0;
    this.retry();
  }

  private retry(): void {
    if (this.stopped || this.timer) return;
    const delay = Math.min(this.retryMaxMs, FIRST_RETRY_MS * 2 ** this.failures++);
    this.timer = setTimeout(() => void this.attempt(), delay);
  }

  private withLog(entry: LogEntry): LogEntry[] {
    const log = [...this.state.log, entry];
    return log.length > this.logLimit ? log.slice(log.length - this.logLimit) : log;
  }

  private set(patch: Partial<FeedState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ZksError('ZKS_ERR_TIMEOUT', `no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
