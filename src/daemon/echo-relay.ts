// zksd's answer to ICMP echo requests from applications: each one is carried through the tunnel (DatagramDialer.echo)
// and answered with an echo reply only when the far end really answered — never faked; a timeout or a failure
// stays silent, so ping reports loss as it would without the tunnel. Relay mode: the exit sends a real ICMP echo,
// and only an 'icmp' answer counts (an exit that could only time a TCP connect proves nothing about ICMP). Direct
// mode: the Worker can only time a TCP connect, so the answer is a CONNECT to port 443 that completes — only a
// completed one: workerd reports an unreachable address as "refused" (relay-worker/resolve.ts), so a refusal
// through the Worker proves nothing. Documented in README's zksd section.
// Pings are grouped into sessions (application address, identifier, pinged address) for the flow registry.

import type { IcmpEcho } from '../netstack/iface';
import { addressText } from '../netstack/flows';
import { EchoFailure, type DatagramDialer, type EchoRequest, type EchoResult } from '../protocol/datagram-types';
import { ResetCode } from '../protocol/constants';
import type { Dialer } from './dialer';

/** What the relay needs from the engine. */
export interface EchoHost {
  reply(echo: IcmpEcho): void;
  newId(): number;
  opened(session: EchoSession): void;
  closed(session: EchoSession): void;
}

export interface EchoRelayOptions {
  /** Relay mode: asked for real echoes. null: nothing to ask (every request stays unanswered, counted). */
  dialer: DatagramDialer | null;
  /** 'icmp': relay mode (a real echo at the exit); 'tcp': direct mode (a timed TCP connect to port 443 via `streams`). */
  method: 'icmp' | 'tcp';
  /** Direct mode: the tunnel's CONNECT. */
  streams?: Dialer;
  /** How long the far end waits for its answer; default 10 s (ping itself waits as long as it runs). */
  timeoutMs?: number;
  /** Echoes in flight at once; more are dropped and counted. Default 256. */
  maxInFlight?: number;
  /** A session without requests for this long leaves the flow table; default 10 s. */
  idleMs?: number;
}

export interface EchoStats {
  echoForwarded: number;
  echoAnswered: number;
  /** The far end got no answer in time, or could not send (unreachable, forbidden, unsupported). */
  echoUnanswered: number;
  /** Relay mode: the exit answered with a TCP connect time, which is no ICMP answer. */
  echoNotIcmp: number;
  echoInFlightDropped: number;
}

/** The time a CONNECT to host:443 through the tunnel takes, when it completes (then it is closed at once). */
async function tcpConnectTime(streams: Dialer, host: string): Promise<EchoResult> {
  const started = performance.now();
  const r = await streams.open({ host, port: TCP_PORT });
  if (!r.ok) return { ok: false, code: EchoFailure.UNREACHABLE, message: r.message };
  r.stream.reset(ResetCode.CANCEL, 'echo done');
  return { ok: true, method: 'tcp', tcpPort: TCP_PORT, address: host, ttl: 0, rttMs: performance.now() - started, payload: new Uint8Array(0) };
}

/** Most echo data the tunnel carries (datagram-types: EchoRequest.payload). */
const MAX_ECHO_PAYLOAD = 1472;
const TCP_PORT = 443;

export class EchoSession {
  readonly openedAt = Date.now();
  bytesUp = 0;
  bytesDown = 0;
  requests = 0;
  replies = 0;
  inFlight = 0;
  lastRttMs = -1;
  lastActiveMs: number;
  error: string | null = null;

  constructor(readonly id: number, readonly key: string, readonly source: string, readonly destination: string, nowMs: number) {
    this.lastActiveMs = nowMs;
  }
}

export class EchoRelay {
  readonly stats: EchoStats = { echoForwarded: 0, echoAnswered: 0, echoUnanswered: 0, echoNotIcmp: 0, echoInFlightDropped: 0 };
  private readonly sessions = new Map<string, EchoSession>();
  private inFlight = 0;
  private stopped = false;

  constructor(private readonly host: EchoHost, private readonly opts: EchoRelayOptions) {}

  get method(): 'icmp' | 'tcp' { return this.opts.method; }

  handle(echo: IcmpEcho, nowMs: number): void {
    const dialer = this.opts.dialer;
    const streams = this.opts.streams;
    if ((this.opts.method === 'icmp' ? dialer === null : streams === undefined) || this.stopped) { this.stats.echoUnanswered++; return; }
    if (this.inFlight >= (this.opts.maxInFlight ?? 256)) { this.stats.echoInFlightDropped++; return; }
    const source = addressText(echo.src);
    const destination = addressText(echo.dst);
    const key = `${source}|${echo.ident}|${destination}`;
    let s = this.sessions.get(key);
    if (s === undefined) {
      s = new EchoSession(this.host.newId(), key, source, destination, nowMs);
      this.sessions.set(key, s);
      this.host.opened(s);
    }
    const session = s;
    session.lastActiveMs = nowMs;
    session.requests++;
    session.inFlight++;
    session.bytesUp += echo.data.length;
    this.inFlight++;
    this.stats.echoForwarded++;
    const req: EchoRequest = {
      host: destination,
      seq: echo.seq,
      // Longer data still gets its own bytes back in our reply; the tunnel carries only what the exit may send.
      payload: echo.data.subarray(0, MAX_ECHO_PAYLOAD),
      timeoutMs: this.opts.timeoutMs ?? 10_000,
    };
    const answer = this.opts.method === 'tcp' ? tcpConnectTime(streams as Dialer, destination) : (dialer as DatagramDialer).echo(req);
    void answer.then(
      (r) => {
        this.settle(session);
        if (!r.ok) { this.unanswered(session, r.message); return; }
        if (this.opts.method === 'icmp' && r.method !== 'icmp') { this.stats.echoNotIcmp++; this.unanswered(session, 'the exit could not send ICMP'); return; }
        if (this.stopped) return;
        this.stats.echoAnswered++;
        session.replies++;
        session.bytesDown += echo.data.length;
        session.lastRttMs = r.rttMs;
        session.error = null;
        this.host.reply(echo);
      },
      (err: Error) => {
        this.settle(session);
        this.unanswered(session, err.message);
      },
    );
  }

  private settle(session: EchoSession): void {
    this.inFlight--;
    session.inFlight--;
  }

  private unanswered(session: EchoSession, why: string): void {
    this.stats.echoUnanswered++;
    session.error = why;
  }

  /** Drops sessions with nothing in flight and no request for idleMs. */
  sweep(nowMs: number): void {
    const idle = this.opts.idleMs ?? 10_000;
    for (const s of this.sessions.values()) if (s.inFlight === 0 && nowMs - s.lastActiveMs >= idle) this.close(s);
  }

  close(session: EchoSession): void {
    if (this.sessions.get(session.key) !== session) return;
    this.sessions.delete(session.key);
    this.host.closed(session);
  }

  stop(): void {
    this.stopped = true;
    for (const s of [...this.sessions.values()]) this.close(s);
  }
}
