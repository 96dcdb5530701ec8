// A client with the Worker and an exit peer at once: each stream goes the way exit-choice.ts decides. A stream the
// Worker cannot reach (FORBIDDEN saying so: Cloudflare's network, port 25, a range the relay refuses) is opened
// again through the exit peer, and its host goes straight there for a while, so only the first connection pays
// for the refusal. Without an exit peer the refusal reaches the application with a hint naming the cure. A
// refusal of policy (a private address) is never retried elsewhere: it is the application's answer.

import { ConnectResult } from '../protocol/constants';
import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';
import type { Dialer } from './dialer';
import type { OpenResult, TunnelPool } from './pool';
import { chooseVia, type Via, type ViaRule } from './exit-choice';
import { isWorkerUnreachable } from '../protocol/worker-reach';

export interface ExitRouterOptions {
  worker: TunnelPool;
  exit: TunnelPool | null;
  defaultVia: Via;
  /** The user's rules, read per stream (a provider that reloads the saved ones when they change). */
  rules: () => readonly ViaRule[];
  log?: (line: string) => void;
  /** How long a host the Worker refused goes straight to the exit peer (default 10 min). */
  rememberMs?: number;
  now?: () => number;
}

export type RoutedOpenResult = OpenResult & { via: Via };

/** Hosts remembered at most; the oldest is forgotten first. */
const MAX_REMEMBERED = 1024;
export const EXIT_HINT = 'an exit peer can reach it: add --room SECRET (README "Automatic exit choice")';

export class ExitRouter implements Dialer {
  private readonly refused = new Map<string, { reason: string; until: number }>();

  constructor(private readonly opts: ExitRouterOptions) {
    if (opts.defaultVia === 'exit' && !opts.exit) throw new Error('ExitRouter: the default is the exit peer, but there is none');
  }

  get worker(): TunnelPool {
    return this.opts.worker;
  }

  get exit(): TunnelPool | null {
    return this.opts.exit;
  }

  /** Every pool in use, the default first. */
  get pools(): TunnelPool[] {
    const { worker, exit, defaultVia } = this.opts;
    if (!exit) return [worker];
    return defaultVia === 'exit' ? [exit, worker] : [worker, exit];
  }

  async open(target: Target): Promise<RoutedOpenResult> {
    const { worker, exit } = this.opts;
    const choice = chooseVia(target, this.opts.rules(), this.opts.defaultVia, exit !== null, this.remembered(target.host));
    if (choice.via === 'exit' && !exit) {
      return { ok: false, code: ConnectResult.GENERAL_FAILURE, via: 'exit', message: `route ${choice.detail} sends ${target.host} to an exit peer, but none is configured (--room)` };
    }
    const first = await (choice.via === 'exit' ? exit! : worker).open(target);
    const unreachable = !first.ok && first.code === ConnectResult.FORBIDDEN && isWorkerUnreachable(first.message);
    if (first.ok || choice.via !== 'worker' || !unreachable || choice.why === 'rule') {
      return { ...first, via: choice.via };
    }
    if (!exit) return { ...first, via: 'worker', message: `${first.message} (${EXIT_HINT})` };
    this.remember(target.host, first.message);
    this.opts.log?.(`${target.host}: the Worker cannot reach it (${first.message}); through the exit peer instead`);
    return { ...(await exit.open(target)), via: 'exit' };
  }

  /** The path carrying `stream` (room, direct, turn, worker), or null once it is gone. */
  pathOf(stream: MuxStream): string | null {
    for (const pool of this.pools) {
      const path = pool.pathOf(stream);
      if (path !== null) return path;
    }
    return null;
  }

  async stop(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.stop()));
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private remembered(host: string): string | null {
    const entry = this.refused.get(host);
    if (!entry) return null;
    if (entry.until > this.now()) return entry.reason;
    this.refused.delete(host);
    return null;
  }

  private remember(host: string, reason: string): void {
    this.refused.delete(host);
    if (this.refused.size >= MAX_REMEMBERED) this.refused.delete(this.refused.keys().next().value!);
    this.refused.set(host, { reason, until: this.now() + (this.opts.rememberMs ?? 600_000) });
  }
}
