// The soak's UDP flows over a Route (SOCKS5 UDP ASSOCIATE or zksd's TUN) to the traffic server's echo port: a long
// flow sends one numbered datagram every interval for the whole run, checks every echo against what it sent, counts
// the lost ones (lost while a WebSocket is down is expected: resume does not replay datagrams) and the longest
// silence, and must answer again at the end; a short flow is one datagram, resent each second until answered.
import { checkDatagram, datagram } from './pattern';
import type { FlowResult, Target } from './flows';
import type { Route, UdpFlow } from './routes';

export interface UdpStats {
  sent: number;
  /** Distinct datagrams echoed intact. */
  received: number;
  duplicates: number;
  corrupt: number;
  /** Longest time between two echoes while the flow was sending, ms. */
  maxSilenceMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class UdpLongFlow {
  readonly stats: UdpStats = { sent: 0, received: 0, duplicates: 0, corrupt: 0, maxSilenceMs: 0 };
  private flow: UdpFlow | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly seen = new Set<number>();
  private lastEcho = 0;
  private readonly t0 = performance.now();
  error: string | null = null;

  /** Why the flow can no longer carry datagrams (not opened, or its association ended), if so. */
  get ended(): string | null {
    return this.error ?? this.flow?.ended ?? null;
  }

  constructor(private readonly id: number, private readonly size: number) {}

  async start(route: Route, to: Target, intervalMs: number, timeoutMs: number): Promise<void> {
    try {
      this.flow = await route.udp(to.host, to.udp, timeoutMs);
    } catch (e) {
      this.error = `UDP flow not opened: ${(e as Error).message}`;
      return;
    }
    this.flow.onMessage = (m) => this.take(m);
    this.lastEcho = performance.now();
    this.timer = setInterval(() => this.sendNext(), intervalMs);
  }

  private sendNext(): void {
    if (!this.flow || this.flow.ended) return;
    this.flow.send(datagram(this.id, this.stats.sent++, this.size));
  }

  private take(m: Buffer): void {
    const d = checkDatagram(m, this.size);
    if (!d || d.flow !== this.id) return void this.stats.corrupt++;
    if (this.seen.has(d.seq)) return void this.stats.duplicates++;
    this.seen.add(d.seq);
    this.stats.received++;
    const now = performance.now();
    if (this.timer) this.stats.maxSilenceMs = Math.max(this.stats.maxSilenceMs, now - this.lastEcho);
    this.lastEcho = now;
  }

  /** Stops the steady sending; then datagrams once a second until one comes back (the flow still works). */
  async check(timeoutMs: number): Promise<FlowResult & { udp: UdpStats }> {
    clearInterval(this.timer);
    this.timer = undefined;
    const t0 = performance.now();
    const base = { sent: 0, received: 0, corrupt: this.stats.corrupt > 0, udp: this.stats };
    const done = (r: Partial<FlowResult>) => {
      this.flow?.close();
      const ms = performance.now() - this.t0;
      return { ...base, ok: false, ms, ...r, sent: this.stats.sent * this.size, received: this.stats.received * this.size };
    };
    if (this.error || !this.flow) return done({ error: this.error ?? 'never opened' });
    const before = this.stats.received;
    while (performance.now() - t0 < timeoutMs) {
      if (this.flow.ended) return done({ error: `flow ended: ${this.flow.ended}` });
      this.sendNext();
      for (let i = 0; i < 10 && this.stats.received === before; i++) await sleep(100);
      if (this.stats.received > before) {
        const ok = this.stats.corrupt === 0;
        return done({ ok, error: ok ? undefined : `${this.stats.corrupt} corrupt datagrams` });
      }
    }
    return done({ error: `no echo in the final ${Math.round(timeoutMs / 1000)} s` });
  }
}

/** One datagram, resent every second until its echo comes back intact. */
export async function udpShort(route: Route, to: Target, id: number, size: number, deadlineMs: number): Promise<FlowResult> {
  const t0 = performance.now();
  let flow: UdpFlow | undefined;
  const r = (x: Partial<FlowResult>): FlowResult => ({ ok: false, sent: 0, received: 0, corrupt: false, ms: performance.now() - t0, ...x });
  try {
    flow = await route.udp(to.host, to.udp, deadlineMs);
    let answer: 'ok' | 'corrupt' | null = null;
    let wake = () => {};
    flow.onMessage = (m) => {
      const d = checkDatagram(m, size);
      answer = d && d.flow === id && d.seq === 0 ? 'ok' : 'corrupt';
      wake();
    };
    let sends = 0;
    while (performance.now() - t0 < deadlineMs && answer === null) {
      if (flow.ended) return r({ error: `flow ended: ${flow.ended}`, sent: sends * size });
      flow.send(datagram(id, 0, size));
      sends++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        wake = () => (clearTimeout(timer), resolve());
      });
    }
    const got = answer as 'ok' | 'corrupt' | null;
    if (got === null) return r({ error: `no answer in ${Math.round(deadlineMs / 1000)} s (${sends} sent)`, sent: sends * size });
    return r({ ok: got === 'ok', corrupt: got === 'corrupt', sent: size, received: size, error: got === 'ok' ? undefined : 'corrupt answer' });
  } catch (e) {
    return r({ error: (e as Error).message });
  } finally {
    flow?.close();
  }
}
