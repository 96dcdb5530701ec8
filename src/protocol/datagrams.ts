// The datagram side of a session (docs/PROTOCOL.md §3.3–3.5): capability exchange, UDP flows and ICMP echoes.
// Owned by the Mux, which hands it the frames it decodes; frames it sends go into their own RecordBatch, emitted
// ahead of the bulk DATA batch, so a datagram never waits behind a record of TCP data being assembled.
// Datagrams are not flow-controlled: when the transport already holds `maxBacklog` unsent bytes a datagram is
// dropped and counted (a router's tail drop), never queued without bound. No timers or I/O here.

import type { Target } from './address';
import { FrameType } from './constants';
import { EchoKind, type DatagramFrame, type EchoMessage } from './datagram-codec';
import {
  Capability, DatagramClose, EchoFailure, MAX_DATAGRAM_PAYLOAD, MAX_ECHO_PAYLOAD,
  type DatagramCloseCode, type DatagramFlow, type EchoFailureCode, type EchoOutcome, type EchoRequest, type EchoResult,
} from './datagram-types';
import { ZksError } from '../errors/zks-error';
import { ProtocolError } from './errors';

export interface DatagramPortOptions {
  role: 'client' | 'server';
  /** Capability bits this side serves (an exit peer: UDP | ICMP_ECHO; a client: 0). */
  localCaps: number;
  /** The handshake said the peer speaks CAPABILITIES; if not, it is an older peer that handles no optional frame. */
  peerAnnounces: boolean;
  /** Queue a frame in the datagram batch (sent ahead of bulk DATA). */
  push(frame: DatagramFrame): void;
  /** Bytes the transport holds unsent; datagrams are dropped above maxBacklog. */
  backlog?: () => number;
  maxBacklog?: number;
  /** A flow the peer opened (the exit peer: a client's UDP flow); its first datagram follows at once. */
  onFlow?: (flow: MuxDatagramFlow) => void;
  /** An echo request from the peer; answer exactly once with `respond`. */
  onEcho?: (req: EchoRequest, respond: (outcome: EchoOutcome) => void) => void;
  now: () => number;
}

export interface DatagramStats {
  flowsOpened: number;
  flowsRefused: number;
  datagramsSent: number;
  datagramsReceived: number;
  /** Dropped on send: transport backlog over the limit, payload too large or an unusable address. */
  datagramsDropped: number;
  /** Received for a flow that is gone (late replies after a close), or without a known address. */
  datagramsLate: number;
  malformed: number;
  echoesSent: number;
  echoesAnswered: number;
}

/** Bytes a transport may hold unsent before datagrams are dropped rather than queued behind them. */
export const DEFAULT_DATAGRAM_BACKLOG = 4 * 1024 * 1024;
/** Echo requests from the peer being worked on at once; more are answered BUSY. */
export const MAX_ECHOES_IN_FLIGHT = 256;

const CLOSE_NAMES: Record<number, string> = {
  [DatagramClose.NORMAL]: 'closed', [DatagramClose.FORBIDDEN]: 'forbidden', [DatagramClose.UNREACHABLE]: 'unreachable',
  [DatagramClose.LIMIT]: 'too many flows', [DatagramClose.UNSUPPORTED]: 'unsupported', [DatagramClose.PROTOCOL]: 'protocol error',
};

const sameTarget = (a: Target | null, b: Target) => a !== null && a.port === b.port && a.host === b.host;

/** A closed-by-peer code as the error a flow's owner sees (null: an ordinary end). */
function closeError(code: number, message: string): ZksError | null {
  if (code === DatagramClose.NORMAL) return null;
  const text = `UDP flow ${CLOSE_NAMES[code] ?? `closed (code ${code})`}${message ? `: ${message}` : ''}`;
  return new ZksError(code === DatagramClose.UNSUPPORTED ? 'ZKS_ERR_UNSUPPORTED' : 'ZKS_ERR_UDP', text);
}

export class MuxDatagramFlow implements DatagramFlow {
  onDatagram: ((source: Target, payload: Uint8Array) => void) | null = null;
  onClose: ((err: ZksError | null) => void) | null = null;
  closed = false;
  datagramsSent = 0;
  datagramsReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  /** The address last written to the wire / last read from it (sent only when it changes, §3.4). */
  lastSent: Target | null = null;
  lastReceived: Target | null = null;

  constructor(private readonly port: DatagramPort, readonly id: number) {}

  send(target: Target, payload: Uint8Array): boolean {
    return this.port.sendOn(this, target, payload);
  }

  close(): void {
    this.port.end(this, DatagramClose.NORMAL, '', null);
  }

  /** Ends the flow with a reason the peer sees (the exit: refused by policy, over the cap, idle). */
  refuse(code: DatagramCloseCode, message: string): void {
    this.port.end(this, code, message, closeError(code, message));
  }
}

interface PendingEcho {
  sentAt: number;
  resolve: (r: EchoResult) => void;
}

export class DatagramPort {
  readonly flows = new Map<number, MuxDatagramFlow>();
  private explicit = false;
  readonly stats: DatagramStats = {
    flowsOpened: 0, flowsRefused: 0, datagramsSent: 0, datagramsReceived: 0, datagramsDropped: 0, datagramsLate: 0,
    malformed: 0, echoesSent: 0, echoesAnswered: 0,
  };
  private nextFlowId: number;
  private lastPeerFlowId = 0;
  private nextEchoId: number;
  private readonly echoes = new Map<number, PendingEcho>();
  private echoesInFlight = 0;
  private peerCaps: number | null;
  private readonly capsWaiters: Array<(caps: number) => void> = [];
  private closed = false;

  constructor(private readonly opts: DatagramPortOptions) {
    this.nextFlowId = opts.role === 'client' ? 1 : 2;
    this.nextEchoId = this.nextFlowId;
    this.peerCaps = opts.peerAnnounces ? null : 0;
  }

  /** The peer's capability bits, once known (at once for an older peer; 0 when the session ends first). */
  peerCapabilities(): Promise<number> {
    if (this.peerCaps !== null) return Promise.resolve(this.peerCaps);
    return new Promise((resolve) => this.capsWaiters.push(resolve));
  }

  /** Known capability bits of the peer, or null while its CAPABILITIES frame is still on the way. */
  get knownPeerCapabilities(): number | null {
    return this.peerCaps;
  }

  /** A new UDP flow; a ZksError when the peer does not relay UDP (or has not said so yet). */
  openFlow(): MuxDatagramFlow | ZksError {
    if (this.closed) return new ZksError('ZKS_ERR_CONNECTION_LOST', 'session is closed');
    if (this.peerCaps === null || (this.peerCaps & Capability.UDP) === 0) {
      return new ZksError('ZKS_ERR_UNSUPPORTED', 'the other end of this tunnel does not relay UDP (the Worker cannot send UDP: use an exit peer, relay mode)');
    }
    const flow = new MuxDatagramFlow(this, this.nextFlowId);
    this.nextFlowId += 2;
    this.flows.set(flow.id, flow);
    this.stats.flowsOpened++;
    return flow;
  }

  /** Sends one echo request; resolves with the peer's answer (or a failure when the session ends first). */
  echo(req: EchoRequest): Promise<EchoResult> {
    if (this.closed) return Promise.resolve({ ok: false, code: EchoFailure.UNREACHABLE, message: 'session is closed' });
    if (this.peerCaps === null || (this.peerCaps & Capability.ICMP_ECHO) === 0) {
      return Promise.resolve({ ok: false, code: EchoFailure.UNSUPPORTED, message: 'the other end of this tunnel does not answer echo requests' });
    }
    const id = this.nextEchoId;
    this.nextEchoId = (this.nextEchoId + 2) >>> 0 || (this.opts.role === 'client' ? 1 : 2);
    const payload = req.payload ?? new Uint8Array(0);
    if (payload.length > MAX_ECHO_PAYLOAD) {
      return Promise.resolve({ ok: false, code: EchoFailure.UNSUPPORTED, message: `echo payload over ${MAX_ECHO_PAYLOAD} bytes` });
    }
    let frame: DatagramFrame;
    try {
      frame = {
        type: FrameType.ICMP_ECHO, stream: id,
        echo: {
          kind: EchoKind.REQUEST, seq: req.seq & 0xffff, tcpOnly: req.tcpOnly ?? false, tcpPort: req.tcpPort ?? 443,
          timeoutMs: Math.max(1, Math.min(0xffff, Math.round(req.timeoutMs))), host: req.host, data: payload,
        },
      };
      this.opts.push(frame); // encodes the host: a bad one throws here
    } catch (err) {
      return Promise.resolve({ ok: false, code: EchoFailure.UNREACHABLE, message: (err as Error).message });
    }
    this.stats.echoesSent++;
    return new Promise((resolve) => this.echoes.set(id, { sentAt: this.opts.now(), resolve }));
  }

  /**
   * Every UDP_DATAGRAM carries its address while set: datagrams then travel on a channel that may lose or reorder
   * them (the direct path's datagram records, PROTOCOL.md §3.6), where "same address as the last one" would be read
   * against a datagram that never arrived. Changing it forgets what was last sent, so the next one names its address.
   */
  set explicitAddresses(on: boolean) {
    if (on === this.explicit) return;
    this.explicit = on;
    for (const flow of this.flows.values()) flow.lastSent = null;
  }

  // ---- called by the flows ----

  sendOn(flow: MuxDatagramFlow, target: Target, payload: Uint8Array): boolean {
    if (flow.closed || this.closed) return false;
    const backlog = this.opts.backlog?.() ?? 0;
    if (payload.length > MAX_DATAGRAM_PAYLOAD || backlog > (this.opts.maxBacklog ?? DEFAULT_DATAGRAM_BACKLOG)) {
      this.stats.datagramsDropped++;
      return false;
    }
    const address = !this.explicit && sameTarget(flow.lastSent, target) ? null : target;
    try {
      this.opts.push({ type: FrameType.UDP_DATAGRAM, stream: flow.id, address, data: payload });
    } catch {
      this.stats.datagramsDropped++; // an address that cannot be encoded (a caller bug): this datagram only
      return false;
    }
    if (address) flow.lastSent = { host: address.host, port: address.port };
    flow.datagramsSent++;
    flow.bytesSent += payload.length;
    this.stats.datagramsSent++;
    return true;
  }

  end(flow: MuxDatagramFlow, code: DatagramCloseCode, message: string, err: ZksError | null): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete(flow.id);
    if (!this.closed) this.opts.push({ type: FrameType.UDP_DATAGRAM, stream: flow.id, address: null, data: new Uint8Array(0), close: { code, message } });
    flow.onClose?.(err);
  }

  // ---- frames from the peer ----

  receive(f: DatagramFrame): ProtocolError | null {
    switch (f.type) {
      case FrameType.CAPABILITIES:
        if (this.peerCaps !== null) return new ProtocolError('ZKS_ERR_MALFORMED_FRAME', 'CAPABILITIES from a peer that already announced them, or did not say it would');
        this.settleCaps(f.caps);
        return null;
      case FrameType.UDP_DATAGRAM:
        this.datagram(f);
        return null;
      case FrameType.ICMP_ECHO:
        this.echoFrame(f.stream, f.echo);
        return null;
    }
  }

  /** A datagram or echo frame that was well delimited but invalid (bad address, zero timeout): dropped, counted. */
  invalid(frameType: number, id: number, error: ProtocolError): void {
    this.stats.malformed++;
    if (frameType === FrameType.ICMP_ECHO && this.isPeerId(id)) {
      this.opts.push({ type: FrameType.ICMP_ECHO, stream: id, echo: { kind: EchoKind.FAILED, seq: 0, code: EchoFailure.UNSUPPORTED, message: error.message } });
    }
  }

  private isPeerId(id: number): boolean {
    return (id & 1) === (this.opts.role === 'client' ? 0 : 1);
  }

  private settleCaps(caps: number): void {
    this.peerCaps = caps >>> 0;
    for (const w of this.capsWaiters.splice(0)) w(this.peerCaps);
  }

  private datagram(f: Extract<DatagramFrame, { type: typeof FrameType.UDP_DATAGRAM }>): void {
    let flow = this.flows.get(f.stream);
    if (f.close) {
      if (!flow) return;
      flow.closed = true;
      this.flows.delete(flow.id);
      flow.onClose?.(closeError(f.close.code, f.close.message));
      return;
    }
    if (!flow) {
      // A lower id than the peer's newest flow is an old flow (late datagrams after a close are normal), unless it
      // carries its destination: flows are opened in id order but their first datagrams leave in the application's
      // order (SOCKS5 associations open concurrently), and such a first datagram must not kill its flow for good.
      if (!this.isPeerId(f.stream) || (f.stream <= this.lastPeerFlowId && !f.address)) {
        this.stats.datagramsLate++;
        return;
      }
      this.lastPeerFlowId = Math.max(this.lastPeerFlowId, f.stream);
      const accepted = this.acceptFlow(f.stream, f.address);
      if (!accepted) return;
      flow = accepted;
    }
    const address = f.address ?? flow.lastReceived;
    if (!address) {
      this.stats.datagramsLate++;
      return;
    }
    if (f.address) flow.lastReceived = f.address;
    flow.datagramsReceived++;
    flow.bytesReceived += f.data.length;
    this.stats.datagramsReceived++;
    flow.onDatagram?.(address, f.data);
  }

  /** The first datagram of a flow the peer opened: accepted when this side relays UDP, else refused once. */
  private acceptFlow(id: number, address: Target | null): MuxDatagramFlow | null {
    const refuse = (code: DatagramCloseCode, message: string) => {
      this.stats.flowsRefused++;
      this.opts.push({ type: FrameType.UDP_DATAGRAM, stream: id, address: null, data: new Uint8Array(0), close: { code, message } });
      return null;
    };
    if ((this.opts.localCaps & Capability.UDP) === 0 || !this.opts.onFlow) return refuse(DatagramClose.UNSUPPORTED, 'this side does not relay UDP');
    if (!address) return refuse(DatagramClose.PROTOCOL, 'the first datagram of a flow must carry its destination');
    const flow = new MuxDatagramFlow(this, id);
    this.flows.set(id, flow);
    this.stats.flowsOpened++;
    this.opts.onFlow(flow);
    return flow.closed ? null : flow;
  }

  private echoFrame(id: number, e: EchoMessage): void {
    if (e.kind !== EchoKind.REQUEST) {
      const pending = this.echoes.get(id);
      if (!pending) return;
      this.echoes.delete(id);
      this.stats.echoesAnswered++;
      if (e.kind === EchoKind.FAILED) pending.resolve({ ok: false, code: e.code, message: e.message });
      else pending.resolve({ ok: true, method: e.method, tcpPort: e.tcpPort, address: e.address, ttl: e.ttl, rttMs: this.opts.now() - pending.sentAt, payload: e.data.slice() });
      return;
    }
    const fail = (code: EchoFailureCode, message: string) =>
      this.opts.push({ type: FrameType.ICMP_ECHO, stream: id, echo: { kind: EchoKind.FAILED, seq: e.seq, code, message } });
    if ((this.opts.localCaps & Capability.ICMP_ECHO) === 0 || !this.opts.onEcho) return void fail(EchoFailure.UNSUPPORTED, 'this side does not answer echo requests');
    if (this.echoesInFlight >= MAX_ECHOES_IN_FLIGHT) return void fail(EchoFailure.BUSY, `more than ${MAX_ECHOES_IN_FLIGHT} echoes in flight`);
    this.echoesInFlight++;
    let answered = false;
    const req: EchoRequest = { host: e.host, seq: e.seq, payload: e.data.slice(), timeoutMs: e.timeoutMs, tcpOnly: e.tcpOnly, tcpPort: e.tcpPort };
    this.opts.onEcho(req, (outcome) => {
      if (answered) return;
      answered = true;
      this.echoesInFlight--;
      if (this.closed) return;
      if (!outcome.ok) return void fail(outcome.code, outcome.message);
      try {
        this.opts.push({
          type: FrameType.ICMP_ECHO, stream: id,
          echo: { kind: EchoKind.REPLY, seq: e.seq, method: outcome.method, tcpPort: outcome.tcpPort, ttl: outcome.ttl & 0xff, address: outcome.address, data: outcome.payload.subarray(0, MAX_ECHO_PAYLOAD) },
        });
      } catch (err) {
        fail(EchoFailure.UNREACHABLE, (err as Error).message);
      }
    });
  }

  /** The session ended: every flow closes with `err`, every pending echo fails. */
  teardown(err: ZksError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.peerCaps === null) this.settleCaps(0);
    const flows = [...this.flows.values()];
    this.flows.clear();
    for (const f of flows) {
      f.closed = true;
      f.onClose?.(err);
    }
    const echoes = [...this.echoes.values()];
    this.echoes.clear();
    for (const e of echoes) e.resolve({ ok: false, code: EchoFailure.UNREACHABLE, message: err.message });
  }
}
