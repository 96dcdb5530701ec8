// The DatagramFlow of a path that carries no UDP: the Worker (its `connect()` is TCP only), or an exit peer that
// did not announce Capability.UDP. Datagrams to port 53 are DNS queries and are answered through the tunnel as
// DNS-over-TCP (a DnsForwarder per resolver address, the same one zksd uses); every other datagram is refused —
// dropped, counted and, once per flow, logged with what to do instead. Never a silent black hole.

import { formatTarget, type Target } from '../protocol/address';
import { MAX_DATAGRAM_PAYLOAD, type DatagramFlow } from '../protocol/datagram-types';
import type { ZksError } from '../errors/zks-error';
import type { Dialer } from './dialer';
import { DnsForwarder } from './dns-forwarder';

/** Shared by all flows of one proxy (`zks status`). */
export interface NoUdpCounters {
  /** Queries taken to a resolver as DNS-over-TCP. */
  dnsOverTcp: number;
  /** Datagrams refused: not DNS, or one resolver address too many. */
  refusedNoUdp: number;
}

export interface DnsOnlyFlowOptions {
  dialer: Dialer;
  /** The log line for the first refused datagram of a flow: why UDP to `target` cannot go this way, what to do. */
  refusal(target: Target): string;
  counters: NoUdpCounters;
  log(line: string): void;
  /** Distinct resolver addresses one flow may use (default 8); each holds one tunnel stream while busy. */
  maxResolvers?: number;
}

const DNS_PORT = 53;
let nextFlowId = 1;

export class DnsOnlyFlow implements DatagramFlow {
  readonly id = nextFlowId++;
  onDatagram: ((source: Target, payload: Uint8Array) => void) | null = null;
  onClose: ((err: ZksError | null) => void) | null = null;
  datagramsSent = 0;
  datagramsReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  private readonly resolvers = new Map<string, DnsForwarder>();
  private refusedOnce = false;
  private isClosed = false;

  constructor(private readonly opts: DnsOnlyFlowOptions) {}

  get closed(): boolean {
    return this.isClosed;
  }

  send(target: Target, payload: Uint8Array): boolean {
    if (this.isClosed || payload.length > MAX_DATAGRAM_PAYLOAD) return false;
    if (target.port !== DNS_PORT) return this.refuse(this.opts.refusal(target));
    const resolver = this.resolver(target);
    if (resolver === null) {
      const max = this.opts.maxResolvers ?? 8;
      return this.refuse(`DNS to ${formatTarget(target)} refused: one association may use at most ${max} resolvers`);
    }
    if (!resolver.query(payload, null)) return false; // not a DNS query at all (counted by the forwarder)
    this.opts.counters.dnsOverTcp++;
    this.datagramsSent++;
    this.bytesSent += payload.length;
    return true;
  }

  private refuse(line: string): false {
    this.opts.counters.refusedNoUdp++;
    if (!this.refusedOnce) {
      this.refusedOnce = true;
      this.opts.log(line);
    }
    return false;
  }

  private resolver(target: Target): DnsForwarder | null {
    const key = formatTarget(target);
    const known = this.resolvers.get(key);
    if (known !== undefined) return known;
    if (this.resolvers.size >= (this.opts.maxResolvers ?? 8)) return null;
    const source = { host: target.host, port: target.port };
    const forwarder = new DnsForwarder({
      dialer: this.opts.dialer,
      upstream: source,
      answer: (message) => this.deliver(source, message),
      log: this.opts.log,
    });
    this.resolvers.set(key, forwarder);
    return forwarder;
  }

  private deliver(source: Target, message: Uint8Array): void {
    if (this.isClosed) return;
    this.datagramsReceived++;
    this.bytesReceived += message.length;
    this.onDatagram?.(source, message);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const r of this.resolvers.values()) r.stop();
    this.resolvers.clear();
    const onClose = this.onClose;
    this.onClose = null;
    this.onDatagram = null;
    onClose?.(null);
  }
}
