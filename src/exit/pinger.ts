// Exit side of an ICMP_ECHO request: resolve the host, apply the LAN policy of TCP CONNECT (connect.ts: every
// resolved address checked, --allow-lan), then a real ICMP echo when this process may open ICMP sockets, else (or
// when asked: tcpOnly) the time of a TCP connect to tcpPort — a refusal (RST) also proves the host is up. The result
// says which. One ICMP socket per family carries every echo (icmp-channel.ts). The result's rttMs is measured here;
// the requester replaces it with its own (tunnel included). hop() is the traceroute probe: an echo limited to N hops.

import { connect } from 'node:net';
import { hostKind, isLocalOrPrivate } from '../protocol/address';
import { EchoFailure, type EchoFailureCode, type EchoRequest, type EchoResult } from '../protocol/datagram-types';
import { IcmpSocket, IcmpSocketError, type IcmpFamily } from '../native/icmp-socket';
import { FORBIDDEN_MESSAGE, classifyLookupError, defaultLookup, type LookupFn } from './connect';
import { IcmpChannel, realTimers, type ChannelOutcome, type Timers } from './icmp-channel';
import { MAX_ECHO_PAYLOAD } from './icmp-wire';

export { realTimers, type Timers } from './icmp-channel';

export const DEFAULT_TCP_PORT = 443;

export interface PingerOptions {
  /** Allow loopback, private, link-local and multicast targets (`--allow-lan`). */
  allowLan: boolean;
  lookup?: LookupFn;
  timers?: Timers;
  /** One line per reason ICMP is unusable (logged once per family), e.g. the ping_group_range advice. */
  log?: (line: string) => void;
  /** Socket kinds to try, in order (default: ping socket, then raw). */
  icmpKinds?: ReadonlyArray<'dgram' | 'raw'>;
}

/** What one traceroute probe (Pinger.hop) found. */
export type HopResult =
  | { kind: 'reply'; address: string; ttl: number; rttMs: number }
  | { kind: 'ttl-exceeded' | 'unreachable'; from: string; rttMs: number; message: string }
  | { kind: 'timeout' }
  | { kind: 'failed'; code: EchoFailureCode; message: string };

export interface PingerCounters {
  icmpEchoes: number;
  tcpEchoes: number;
  /** Echoes that wanted ICMP but were timed with TCP, because ICMP sockets are not permitted/available here. */
  icmpFallbacks: number;
  forbidden: number;
  /** ICMP sockets opened (one per family, again only after one failed). */
  icmpSockets: number;
}

export class Pinger {
  readonly counters: PingerCounters = { icmpEchoes: 0, tcpEchoes: 0, icmpFallbacks: 0, forbidden: 0, icmpSockets: 0 };
  private readonly channels = new Map<IcmpFamily, IcmpChannel>();
  /** Why ICMP cannot be used for a family (cached: it depends on privileges, sysctls and the addon build). */
  private readonly unavailable = new Map<IcmpFamily, IcmpSocketError>();
  private readonly timers: Timers;
  private readonly lookup: LookupFn;
  private closed = false;

  constructor(private readonly opts: PingerOptions) {
    this.timers = opts.timers ?? realTimers;
    this.lookup = opts.lookup ?? defaultLookup;
  }

  /** How ICMP over `family` is done here: 'dgram' | 'raw', or the error that makes it fall back to TCP. */
  icmpMethod(family: IcmpFamily): 'dgram' | 'raw' | IcmpSocketError {
    const ch = this.channel(family);
    return ch instanceof IcmpChannel ? ch.socket.kind : ch;
  }

  /** Never rejects: every failure is an EchoResult with ok: false. */
  async echo(req: EchoRequest): Promise<EchoResult> {
    const payload = req.payload ?? new Uint8Array(0);
    const tcpPort = req.tcpPort ?? DEFAULT_TCP_PORT;
    if (this.closed) return fail(EchoFailure.UNSUPPORTED, 'the exit is shutting down');
    if (payload.length > MAX_ECHO_PAYLOAD) return fail(EchoFailure.UNSUPPORTED, `payload of ${payload.length} bytes; at most ${MAX_ECHO_PAYLOAD}`);
    if (!Number.isInteger(tcpPort) || tcpPort < 1 || tcpPort > 65535) return fail(EchoFailure.UNSUPPORTED, `bad TCP port ${tcpPort}`);
    const started = this.timers.now();
    const timeoutMs = Number.isFinite(req.timeoutMs) && req.timeoutMs > 0 ? req.timeoutMs : 1;

    const resolved = await this.resolve(req.host.replace(/^\[|\]$/g, ''), timeoutMs);
    if (!resolved.ok) {
      if (resolved.code === EchoFailure.FORBIDDEN) this.counters.forbidden++;
      return resolved;
    }
    if (this.closed) return fail(EchoFailure.UNSUPPORTED, 'the exit is shutting down'); // closed while resolving
    const { address } = resolved;
    const left = Math.max(1, Math.round(timeoutMs - (this.timers.now() - started)));
    const family: IcmpFamily = hostKind(address) === 'ipv4' ? 4 : 6;

    let outcome: ChannelOutcome;
    let method: 'icmp' | 'tcp' = 'tcp';
    const channel = req.tcpOnly ? null : this.channel(family);
    if (channel instanceof IcmpChannel) {
      method = 'icmp';
      this.counters.icmpEchoes++;
      outcome = await channel.echo(address, payload, left);
    } else {
      if (channel) this.counters.icmpFallbacks++;
      this.counters.tcpEchoes++;
      outcome = await this.tcpEcho(address, tcpPort, left);
    }
    if (!outcome.ok) return fail(outcome.code, outcome.message);
    // TCP echoes nothing back: its payload is empty, never a copy of ours.
    return { ok: true, method, tcpPort, address, ttl: outcome.ttl, rttMs: outcome.rttMs, payload: outcome.payload };
  }

  /**
   * One traceroute probe: an ICMP echo to `host` that may cross at most `ttl` routers. A router where it runs out
   * answers "time exceeded" (ttl-exceeded, `from` it); the host itself answers with a reply. ICMP only: a TCP connect
   * tells nothing about the hops, so without ICMP sockets this fails (UNSUPPORTED) instead of falling back.
   */
  async hop(host: string, ttl: number, timeoutMs: number): Promise<HopResult> {
    if (this.closed) return { kind: 'failed', code: EchoFailure.UNSUPPORTED, message: 'the exit is shutting down' };
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) return { kind: 'failed', code: EchoFailure.UNSUPPORTED, message: `bad TTL ${ttl}: 1 to 255` };
    const started = this.timers.now();
    const resolved = await this.resolve(host.replace(/^\[|\]$/g, ''), timeoutMs);
    if (!resolved.ok) return { kind: 'failed', code: resolved.code, message: resolved.message };
    if (this.closed) return { kind: 'failed', code: EchoFailure.UNSUPPORTED, message: 'the exit is shutting down' };
    const channel = this.channel(hostKind(resolved.address) === 'ipv4' ? 4 : 6);
    if (!(channel instanceof IcmpChannel)) return { kind: 'failed', code: EchoFailure.UNSUPPORTED, message: channel.message };
    this.counters.icmpEchoes++;
    const left = Math.max(1, Math.round(timeoutMs - (this.timers.now() - started)));
    const outcome = await channel.echo(resolved.address, new Uint8Array(0), left, ttl);
    if (outcome.ok) return { kind: 'reply', address: resolved.address, ttl: outcome.ttl, rttMs: outcome.rttMs };
    if (outcome.icmp) return { kind: outcome.icmp.kind, from: outcome.icmp.from, rttMs: outcome.icmp.rttMs, message: outcome.message };
    if (outcome.code === EchoFailure.TIMEOUT) return { kind: 'timeout' };
    return { kind: 'failed', code: outcome.code, message: outcome.message };
  }

  /** Closes the ICMP sockets; echoes in flight end as UNSUPPORTED. Idempotent. */
  close(): void {
    this.closed = true;
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
  }

  /** The channel for a family, opened on first use; the reason (logged once) when ICMP is unusable. */
  private channel(family: IcmpFamily): IcmpChannel | IcmpSocketError {
    if (this.closed) return new IcmpSocketError('io', 'the pinger is closed'); // never reopen a socket after close()
    const known = this.unavailable.get(family);
    if (known) return known;
    const open = this.channels.get(family);
    if (open?.usable) return open;
    try {
      const ch = new IcmpChannel(IcmpSocket.open(family, this.opts.icmpKinds), this.timers);
      this.channels.set(family, ch);
      this.counters.icmpSockets++;
      return ch;
    } catch (e) {
      const err = e instanceof IcmpSocketError ? e : new IcmpSocketError('io', String((e as Error)?.message ?? e));
      this.unavailable.set(family, err);
      this.opts.log?.(`zks exit: pings over IPv${family} are timed with TCP connects: ${err.message}`);
      return err;
    }
  }

  private async resolve(host: string, timeoutMs: number): Promise<{ ok: true; address: string } | Extract<EchoResult, { ok: false }>> {
    const forbidden = (a: string) => !this.opts.allowLan && isLocalOrPrivate(a);
    if (forbidden(host)) return fail(EchoFailure.FORBIDDEN, FORBIDDEN_MESSAGE);
    if (hostKind(host) !== 'domain') return { ok: true, address: host };
    let timer: unknown;
    const timeout = new Promise<'timeout'>((r) => (timer = this.timers.setTimeout(() => r('timeout'), timeoutMs)));
    try {
      const answer = await Promise.race([this.lookup(host, { all: true, verbatim: true }), timeout]);
      if (answer === 'timeout') return fail(EchoFailure.TIMEOUT, `${host}: no answer from the resolver within ${timeoutMs} ms`);
      if (answer.length === 0) return fail(EchoFailure.UNREACHABLE, `${host}: no such host`);
      // ANY private answer refuses the name, as for CONNECT: a resolver mixing one in is the rebinding case.
      if (answer.some((a) => forbidden(a.address))) return fail(EchoFailure.FORBIDDEN, FORBIDDEN_MESSAGE);
      return { ok: true, address: answer[0].address };
    } catch (err) {
      return fail(EchoFailure.UNREACHABLE, classifyLookupError(host, err).message);
    } finally {
      this.timers.clearTimeout(timer);
    }
  }

  /** The time a TCP connect takes to be answered: accepted or refused (RST), both mean the host is up. */
  private tcpEcho(address: string, port: number, timeoutMs: number): Promise<ChannelOutcome> {
    return new Promise((resolve) => {
      const sentAt = this.timers.now();
      const sock = connect({ host: address, port });
      let done = false;
      const finish = (outcome: ChannelOutcome) => {
        if (done) return;
        done = true;
        this.timers.clearTimeout(timer);
        sock.destroy();
        resolve(outcome);
      };
      const up = () => finish({ ok: true, ttl: 0, payload: new Uint8Array(0), rttMs: this.timers.now() - sentAt });
      const timer = this.timers.setTimeout(
        () => finish({ ok: false, code: EchoFailure.TIMEOUT, message: `no answer from ${address} port ${port} within ${timeoutMs} ms` }),
        timeoutMs,
      );
      sock.once('connect', up);
      sock.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') up();
        else finish({ ok: false, code: EchoFailure.UNREACHABLE, message: `${address} port ${port}: ${tcpErrorText(err)}` });
      });
    });
  }
}

function tcpErrorText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENETUNREACH':
      return 'network unreachable';
    default:
      return `connect failed (${err.code ?? err.message})`;
  }
}

function fail(code: Extract<EchoResult, { ok: false }>['code'], message: string): Extract<EchoResult, { ok: false }> {
  return { ok: false, code, message };
}
