// Several relays (`--relay` given more than once): which one the next WebSocket goes to. New connections take the
// relays that are up in turn; a relay whose dial failed or whose WebSocket died is left ("down") and health-checked
// with a plain HTTP request (any answer means its Worker is there) at a backoff of 1 s → 30 s until it answers.
// A resume prefers a relay other than the one that was just lost (the exit peer is attached on each).

import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface RelaySetOptions {
  /** Health check: resolves true when the relay answers at all. Default: an HTTP GET of its URL (http/https). */
  probe?: (url: string) => Promise<boolean>;
  log?: (line: string) => void;
  now?: () => number;
}

interface RelayState {
  url: string;
  up: boolean;
  /** Current wait between health checks while down. */
  backoffMs: number;
  probeTimer: ReturnType<typeof setTimeout> | null;
  lastError: string | null;
  /** Bumped by every down(): a probe answer from before it says nothing about now. */
  generation: number;
  /** Taken back after the backoff without an HTTP check (see down()). */
  probeByDial: boolean;
}

const PROBE_MIN_MS = 1_000;
const PROBE_MAX_MS = 30_000;

export class RelaySet {
  private readonly relays: RelayState[];
  private turn = 0;
  private stopped = false;
  private readonly aborts = new AbortController();

  constructor(urls: readonly string[], private readonly opts: RelaySetOptions = {}) {
    if (urls.length === 0) throw new Error('RelaySet: no relay');
    this.relays = [...new Set(urls)].map((url) => ({ url, up: true, backoffMs: PROBE_MIN_MS, probeTimer: null, lastError: null, generation: 0, probeByDial: false }));
  }

  get urls(): string[] {
    return this.relays.map((r) => r.url);
  }

  get size(): number {
    return this.relays.length;
  }

  isUp(url: string): boolean {
    return this.state(url)?.up ?? false;
  }

  get anyUp(): boolean {
    return this.relays.some((r) => r.up);
  }

  /**
   * The relay for the next WebSocket: the relays that are up in turn, `avoid` only when it is the only one up.
   * When none is up, the next in turn anyway (a dial is the best health check there is, and the pool backs off).
   */
  pick(avoid?: string): string {
    const up = this.relays.filter((r) => r.up);
    const candidates = up.length > 1 && avoid !== undefined ? up.filter((r) => r.url !== avoid) : up;
    const from = candidates.length > 0 ? candidates : this.relays;
    return from[this.turn++ % from.length]!.url;
  }

  /**
   * A dial failed or a WebSocket died without being asked to: the relay is left until a health check answers.
   * `probe: false` when an HTTP answer would prove nothing (the relay is there, its room's exit peer is not): the
   * relay is then taken back after the same backoff, and the next dial decides.
   */
  down(url: string, why: string, opts: { probe?: boolean } = {}): void {
    const r = this.state(url);
    if (!r || this.stopped) return;
    r.lastError = why;
    r.generation++;
    r.probeByDial = opts.probe === false;
    if (!r.up) return;
    r.up = false;
    if (this.relays.length > 1) this.opts.log?.(`relay ${url} left: ${why} (${r.probeByDial ? 'tried again later' : 'health-checked until it answers'})`);
    this.scheduleProbe(r);
  }

  /** A WebSocket to the relay completed its handshake. */
  up(url: string): void {
    const r = this.state(url);
    if (!r) return;
    if (r.probeTimer) clearTimeout(r.probeTimer);
    r.probeTimer = null;
    r.backoffMs = PROBE_MIN_MS;
    if (r.up) return;
    r.up = true;
    if (this.relays.length > 1) this.opts.log?.(`relay ${url} is back`);
  }

  snapshot(): Array<{ url: string; up: boolean; lastError: string | null }> {
    return this.relays.map(({ url, up, lastError }) => ({ url, up, lastError }));
  }

  stop(): void {
    this.stopped = true;
    this.aborts.abort();
    for (const r of this.relays) if (r.probeTimer) clearTimeout(r.probeTimer);
  }

  private state(url: string): RelayState | undefined {
    return this.relays.find((r) => r.url === url);
  }

  private scheduleProbe(r: RelayState): void {
    // One relay: its next dial is the check (the pool backs off), nothing else to switch to meanwhile.
    if (this.stopped || r.probeTimer || this.relays.length < 2) return;
    const wait = r.backoffMs;
    r.backoffMs = Math.min(PROBE_MAX_MS, r.backoffMs * 2);
    r.probeTimer = setTimeout(() => {
      r.probeTimer = null;
      if (r.probeByDial) return this.up(r.url);
      const generation = r.generation;
      const probe = this.opts.probe ?? ((url: string) => httpProbe(url, this.aborts.signal));
      void probe(r.url).catch(() => false).then((ok) => {
        if (this.stopped || r.up || r.generation !== generation) return;
        if (ok) this.up(r.url);
        else this.scheduleProbe(r);
      });
    }, wait);
    r.probeTimer.unref?.();
  }
}

/** Any HTTP answer from the relay's origin within 5 s (a Worker answers 401/404 to a plain GET): it is there. */
export async function httpProbe(url: string, stop?: AbortSignal): Promise<boolean> {
  const u = new URL(url);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  const signal = stop ? AbortSignal.any([stop, AbortSignal.timeout(5_000)]) : AbortSignal.timeout(5_000);
  try {
    const res = await fetch(u, { method: 'GET', signal, redirect: 'manual' });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/**
 * The same check over a TCP connection `openTcp` makes (zksd: a socket its kill switch lets out, to the addresses
 * it pinned; a plain fetch would be dropped): any bytes back within 5 s to a plain GET mean the relay is there.
 */
export function probeOver(openTcp: (host: string, port: number) => Promise<Socket>, stop?: AbortSignal): (url: string) => Promise<boolean> {
  return async (url) => {
    const u = new URL(url);
    const secure = u.protocol === 'wss:' || u.protocol === 'https:';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || (secure ? 443 : 80));
    let socket: Socket | null = null;
    const timer = setTimeout(() => socket?.destroy(), 5_000);
    const onStop = () => socket?.destroy();
    stop?.addEventListener('abort', onStop);
    try {
      const tcp = await openTcp(host, port);
      socket = secure ? tlsConnect({ socket: tcp, servername: isIP(host) ? undefined : host }) : tcp;
      const s = socket;
      return await new Promise<boolean>((resolve) => {
        s.once('data', () => resolve(true));
        s.once('error', () => resolve(false));
        s.once('close', () => resolve(false));
        s.write(`GET ${u.pathname || '/'} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
      });
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
      socket?.destroy();
    }
  };
}
