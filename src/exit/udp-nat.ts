// The exit peer's UDP NAT for one client session (issue 10, RFC 4787 behaviour as games and WebRTC need it):
// each client flow gets its own unconnected node:dgram socket on an ephemeral port, used for every destination
// (endpoint-independent mapping, REQ-1), and every datagram that reaches that port comes back to the flow with its
// source, whoever sent it (endpoint-independent filtering, REQ-8). A flow ends after `idleMs` without traffic in
// either direction (≥ 2 min, REQ-5; `dnsIdleMs` when its last destination port is 53), at the per-session cap, or
// when its target is refused.
//
// Choices, so callers can rely on them:
// - Families: a flow opens a udp4 or a udp6 (IPV6_V6ONLY) socket by the resolved address; a flow that later
//   targets the other family gets a second socket with its own ephemeral port (its external address differs
//   anyway). A name resolving to both families prefers the family the flow already has a socket for.
//   IPv4-mapped IPv6 targets (::ffff:a.b.c.d) go out as IPv4.
// - Names: resolved only when a flow's destination name changes (the last answer is cached per flow for its life);
//   datagrams arriving while a lookup runs wait, at most MAX_PENDING_DATAGRAMS of them (more are dropped, counted).
// - Policy (same as TCP CONNECT, src/exit/connect.ts): without allowLan a loopback/private target, or a name with
//   ANY such address, ends the flow with FORBIDDEN; a name that does not resolve, or ENETUNREACH/EHOSTUNREACH on
//   send, ends it with UNREACHABLE. Other send errors (ICMP-reported ECONNREFUSED, EMSGSIZE, EPERM...) are counted
//   and the flow stays: UDP promises nothing per datagram.
// - Refresh: traffic either way resets the idle timer (REQ-6 requires outbound; inbound is the MAY we take, so a
//   peer that only pushes, like a game server, keeps its flow). Linux reports no ICMP errors to these unconnected
//   sockets, so ICMP "port unreachable" never ends a mapping (REQ-11 asks exactly that).
// - Refused flows are counted in full but logged only at the 1st, 2nd, 4th, 8th... refusal of the session.
// - send() keeps a reference to `payload` until the kernel has it (as socket.write does): do not reuse its memory.
// - Sockets (nat-socket.ts): the data path addon's batched ones when it is built, else node:dgram; the behaviour
//   above is the same with both.
// Nothing here throws out of a socket event; the callbacks (deliver/closed) are the caller's code.

import { debuglog } from 'node:util';
import { formatIPv4, formatTarget, hostKind, isLocalOrPrivate, parseIPv6, type Target } from '../protocol/address';
import { DatagramClose, type DatagramCloseCode } from '../protocol/datagram-types';
import { defaultLookup, FORBIDDEN_MESSAGE, type LookupFn } from './connect';
import { IdleSweeper, systemClock, type IdleClock } from './idle-sweeper';
import { NatSockets, type NatSocket } from './nat-socket';

const debug = debuglog('zks:udp');

export const DEFAULT_UDP_MAX_FLOWS = 512;
export const DEFAULT_UDP_IDLE_MS = 120_000;
export const DEFAULT_UDP_DNS_IDLE_MS = 30_000;
/** Datagrams one flow may hold while its destination name is being resolved. */
export const MAX_PENDING_DATAGRAMS = 8;

export interface UdpNatOptions {
  /** Allow loopback/private/link-local/multicast targets (`--allow-lan`); checked after resolution. */
  allowLan: boolean;
  lookup?: LookupFn;
  /** Live flows per session; a new flow beyond it is ended with LIMIT. Default 512. */
  maxFlows?: number;
  /** Idle timeout, reset by traffic either way. Default 120 000 ms (RFC 4787 REQ-5: at least 2 min). */
  idleMs?: number;
  /** Idle timeout of a flow whose last destination port is 53. Default 30 000 ms. */
  dnsIdleMs?: number;
  /** A datagram for the client: `source` is the remote address:port that sent it to the flow's socket. */
  deliver(flow: number, source: Target, payload: Uint8Array): void;
  /** The NAT ended `flow` (idle, refused, unreachable); it is forgotten before this is called. */
  closed(flow: number, code: DatagramCloseCode, message: string): void;
  log?(line: string): void;
  /** Clock and timer for idle expiry (tests drive it by hand). Default: performance.now + unref'd setTimeout. */
  clock?: IdleClock;
  /** 'batched' (default): the data path addon's sockets when it is built, else node:dgram; 'dgram': always node:dgram. */
  sockets?: 'batched' | 'dgram';
}

export interface UdpNatStats {
  flows: number;
  flowsOpened: number;
  datagramsOut: number;
  datagramsIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Flows ended by policy, cap, failed lookup or an unreachable network. */
  refused: number;
  sendErrors: number;
  /** Datagrams dropped because too many waited for a lookup. */
  dropped: number;
}

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException | null)?.code ?? 'EUNKNOWN';

/** ::ffff:a.b.c.d → a.b.c.d (a v6-only socket cannot send to it); any other address unchanged. */
function unmapped(address: string): string {
  if (!address.includes('.') || !address.includes(':')) return address;
  const b = parseIPv6(address);
  if (!b || !b.subarray(0, 10).every((x) => x === 0) || b[10] !== 0xff || b[11] !== 0xff) return address;
  return formatIPv4(b.subarray(12));
}

/** One client flow. A plain class with fixed fields: thousands of idle ones must stay small. */
class NatFlow {
  sock4: NatSocket | null = null;
  sock6: NatSocket | null = null;
  /** The last literal destination host as the client gave it, and the address it passed the policy as. */
  lastHost: string | null = null;
  lastHostAddress = '';
  lastActive: number;
  /** The last destination port was 53: the short idle timeout applies. */
  dns = false;
  /** The last name resolved for this flow and the address chosen for it. */
  name: string | null = null;
  nameAddress: string | null = null;
  /** Non-null while a lookup runs: datagrams waiting for it. */
  pending: Array<{ target: Target; payload: Uint8Array }> | null = null;
  constructor(
    readonly id: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

export class UdpNat {
  private readonly flows = new Map<number, NatFlow>();
  private readonly lookup: LookupFn;
  private readonly maxFlows: number;
  private readonly idleMs: number;
  private readonly dnsIdleMs: number;
  private readonly clock: IdleClock;
  private readonly sweeper: IdleSweeper;
  private readonly counters = {
    flowsOpened: 0, datagramsOut: 0, datagramsIn: 0, bytesOut: 0, bytesIn: 0, refused: 0, sendErrors: 0, dropped: 0,
  };
  private readonly sockets: NatSockets<NatFlow>;

  constructor(private readonly opts: UdpNatOptions) {
    this.lookup = opts.lookup ?? defaultLookup;
    this.maxFlows = opts.maxFlows ?? DEFAULT_UDP_MAX_FLOWS;
    this.idleMs = opts.idleMs ?? DEFAULT_UDP_IDLE_MS;
    this.dnsIdleMs = opts.dnsIdleMs ?? DEFAULT_UDP_DNS_IDLE_MS;
    this.clock = opts.clock ?? systemClock;
    this.sweeper = new IdleSweeper(this.clock, (now) => this.expireIdle(now));
    this.sockets = new NatSockets<NatFlow>({
      received: (f, payload, host, port) => this.received(f, payload, host, port),
      sendFailed: (f, address, port, code, count) => this.sendFailed(f, address, port, code, count),
      failed: (f, code, closed) => {
        // Counted; a socket that is gone is replaced by the next datagram, one that is not keeps working.
        this.counters.sendErrors++;
        debug('flow %d: socket error %s', f.id, code);
        if (!closed) return;
        if (f.sock4?.closed) f.sock4 = null;
        if (f.sock6?.closed) f.sock6 = null;
      },
    }, opts.sockets);
  }

  get size(): number {
    return this.flows.size;
  }

  stats(): UdpNatStats {
    return { flows: this.flows.size, ...this.counters };
  }

  /** One datagram from the client; the first of a flow opens its socket. Never throws. */
  send(flow: number, target: Target, payload: Uint8Array): void {
    let f = this.flows.get(flow);
    if (!f) {
      if (this.flows.size >= this.maxFlows) {
        this.noteRefusal(flow, `${this.maxFlows} UDP flows already open in this session`);
        this.opts.closed(
          flow,
          DatagramClose.LIMIT,
          `the exit peer relays at most ${this.maxFlows} UDP flows per session (--udp-max-flows); close idle ones first`,
        );
        return;
      }
      f = new NatFlow(flow, this.clock.now());
      this.flows.set(flow, f);
      this.counters.flowsOpened++;
      this.sweeper.expectBy(f.lastActive + this.idleMs);
    }
    this.route(f, target, payload);
  }

  /** The client closed the flow: free its sockets, no closed() callback. */
  close(flow: number): void {
    const f = this.flows.get(flow);
    if (f) this.forget(f);
  }

  /** The session ended: every flow is freed, no callbacks. */
  closeAll(): void {
    for (const f of [...this.flows.values()]) this.forget(f);
    this.sweeper.stop();
  }

  private live(f: NatFlow): boolean {
    return this.flows.get(f.id) === f;
  }

  private route(f: NatFlow, target: Target, payload: Uint8Array): void {
    if (f.pending) {
      if (f.pending.length >= MAX_PENDING_DATAGRAMS) this.counters.dropped++;
      else f.pending.push({ target, payload });
      return;
    }
    // Most flows talk to one address: it is checked and converted once.
    if (target.host === f.lastHost) return this.transmit(f, f.lastHostAddress, target.port, payload);
    if (hostKind(target.host) !== 'domain') {
      const address = unmapped(target.host);
      if (!this.opts.allowLan && isLocalOrPrivate(address)) return this.refuse(f, DatagramClose.FORBIDDEN, FORBIDDEN_MESSAGE);
      f.lastHost = target.host;
      f.lastHostAddress = address;
      return this.transmit(f, address, target.port, payload);
    }
    if (target.host === f.name && f.nameAddress !== null) return this.transmit(f, f.nameAddress, target.port, payload);
    // "localhost" and friends are refused by name, before any lookup (as CONNECT does).
    if (!this.opts.allowLan && isLocalOrPrivate(target.host)) return this.refuse(f, DatagramClose.FORBIDDEN, FORBIDDEN_MESSAGE);
    f.pending = [{ target, payload }];
    void this.resolve(f, target.host);
  }

  private async resolve(f: NatFlow, name: string): Promise<void> {
    let addresses: string[];
    try {
      addresses = (await this.lookup(name, { all: true, verbatim: true })).map((a) => unmapped(a.address));
    } catch (err) {
      if (this.live(f)) this.refuse(f, DatagramClose.UNREACHABLE, `${name}: no such host (${errnoOf(err)})`);
      return;
    }
    if (!this.live(f)) return;
    if (addresses.length === 0) return this.refuse(f, DatagramClose.UNREACHABLE, `${name}: no such host`);
    // ANY private answer refuses the name: a resolver that mixes one in is exactly the rebinding case.
    if (!this.opts.allowLan && addresses.some((a) => isLocalOrPrivate(a))) {
      return this.refuse(f, DatagramClose.FORBIDDEN, FORBIDDEN_MESSAGE);
    }
    const v6Only = f.sock6 !== null && f.sock4 === null;
    const v4Only = f.sock4 !== null && f.sock6 === null;
    f.name = name;
    f.nameAddress =
      addresses.find((a) => (v4Only && !a.includes(':')) || (v6Only && a.includes(':'))) ?? addresses[0];
    const waiting = f.pending ?? [];
    f.pending = null;
    // In arrival order; one naming yet another host starts the next lookup and the rest wait again.
    for (const d of waiting) if (this.live(f)) this.route(f, d.target, d.payload);
  }

  private transmit(f: NatFlow, address: string, port: number, payload: Uint8Array): void {
    const v6 = address.includes(':');
    const sock = (v6 ? f.sock6 : f.sock4) ?? this.openSocket(f, v6);
    if (!sock) return;
    f.lastActive = this.clock.now();
    const dns = port === 53;
    if (dns && !f.dns) this.sweeper.expectBy(f.lastActive + this.dnsIdleMs);
    f.dns = dns;
    this.counters.datagramsOut++;
    this.counters.bytesOut += payload.byteLength;
    sock.send(payload, address, port);
  }

  private sendFailed(f: NatFlow, address: string, port: number, code: string, count: number): void {
    this.counters.sendErrors += count;
    debug('flow %d: send to %s failed: %s', f.id, formatTarget({ host: address, port }), code);
    if ((code === 'ENETUNREACH' || code === 'EHOSTUNREACH') && this.live(f)) {
      const why = code === 'ENETUNREACH' ? 'network unreachable' : 'no route to host';
      this.refuse(f, DatagramClose.UNREACHABLE, `${formatTarget({ host: address, port })}: ${why}`);
    }
  }

  /** A bound socket for `f` in one family, or null when the system refused one (the flow is then ended). */
  private openSocket(f: NatFlow, v6: boolean): NatSocket | null {
    let sock: NatSocket;
    try {
      sock = this.sockets.open(v6, f);
    } catch (err) {
      const code = errnoOf(err);
      const outOfSockets = code === 'EMFILE' || code === 'ENFILE' || code === 'ENOBUFS';
      this.refuse(
        f,
        outOfSockets ? DatagramClose.LIMIT : DatagramClose.UNREACHABLE,
        `the exit peer could not open a UDP${v6 ? 'v6' : 'v4'} socket (${code})`,
      );
      return null;
    }
    if (v6) f.sock6 = sock;
    else f.sock4 = sock;
    return sock;
  }

  /** A datagram to one of `f`'s sockets, from anyone (endpoint-independent filtering). */
  private received(f: NatFlow, msg: Uint8Array, host: string, port: number): void {
    if (!this.live(f)) return;
    f.lastActive = this.clock.now();
    this.counters.datagramsIn++;
    this.counters.bytesIn += msg.byteLength;
    this.opts.deliver(f.id, { host, port }, msg);
  }

  /** Ends `f` by the NAT's decision and tells the client why. */
  private refuse(f: NatFlow, code: DatagramCloseCode, message: string): void {
    this.noteRefusal(f.id, message);
    this.forget(f);
    this.opts.closed(f.id, code, message);
  }

  /** Counts a refused flow; logs the 1st, 2nd, 4th, 8th... so a flood of new flows cannot flood the log. */
  private noteRefusal(flow: number, message: string): void {
    const n = ++this.counters.refused;
    if ((n & (n - 1)) !== 0) return;
    this.opts.log?.(`udp flow ${flow} refused: ${message}${n > 1 ? ` (${n} flows refused in this session so far)` : ''}`);
  }

  private forget(f: NatFlow): void {
    if (!this.live(f)) return;
    this.flows.delete(f.id);
    f.sock4?.close();
    f.sock6?.close();
    f.sock4 = f.sock6 = null;
    f.pending = null;
    if (this.flows.size === 0) this.sweeper.stop();
  }

  /** Sweeper callback: ends every flow idle past its timeout; returns the next deadline. */
  private expireIdle(now: number): number {
    let next = Infinity;
    const expired: NatFlow[] = [];
    for (const f of this.flows.values()) {
      const deadline = f.lastActive + (f.dns ? this.dnsIdleMs : this.idleMs);
      if (deadline <= now) expired.push(f);
      else if (deadline < next) next = deadline;
    }
    for (const f of expired) {
      if (!this.live(f)) continue; // a closed() callback may have closed others
      const idleMs = f.dns ? this.dnsIdleMs : this.idleMs;
      this.forget(f);
      this.opts.closed(f.id, DatagramClose.NORMAL, `idle for ${Math.round(idleMs / 1000)} s`);
    }
    return next;
  }
}
