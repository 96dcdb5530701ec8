// The control socket of a `zks expose http://…` agent (docs/CONTROL.md), so `zks status`, `zks flows` and zks-tui
// show the tunnel: its public URL, whether the agent is connected, request counts and rate, and each request in
// flight as a flow (path `tunnel`). One socket per tunnel id, the user's own (0600 in the private run directory).

import type { MuxStream } from '../protocol/stream';
import type { ZksError } from '../errors/zks-error';
import { ResetCode } from '../protocol/constants';
import { ControlClient } from '../control/client';
import { FlowRegistry, type FlowDescription } from '../control/flow-registry';
import { exposeControlPath } from '../control/paths';
import type { ExposeStatus, TunnelSnapshot } from '../control/protocol';
import { startControlService, type ControlService } from '../control/service';
import { relayDisplayUrl, relayLinkSnapshot } from '../control/status';
import type { TunnelConnection } from '../client/connection';
import type { RequestRecord } from './origin-response';

export class RequestFlow {
  readonly openedAt = Date.now();
  constructor(readonly id: number, readonly stream: MuxStream, readonly record: RequestRecord) {}
  /** Towards the local server: the request (head and body) as it came on the stream. */
  get bytesUp(): number {
    return this.stream.bytesReceived;
  }
  get bytesDown(): number {
    return this.stream.bytesSent;
  }
}

export function requestFlowRegistry(): FlowRegistry<RequestFlow> {
  const describe = (f: RequestFlow): FlowDescription => ({
    id: f.id, protocol: 'tcp', source: f.record.client, destination: `${f.record.method} ${f.record.path}`, target: `${f.record.method} ${f.record.path}`,
    path: 'tunnel', via: null, state: f.record.status ? String(f.record.status) : 'waiting', bytesUp: f.bytesUp, bytesDown: f.bytesDown,
    ageMs: Date.now() - f.openedAt, error: f.record.error,
  });
  return new FlowRegistry<RequestFlow>({ describe, abort: (f) => f.stream.reset(ResetCode.CANCEL, 'request closed by the operator') });
}

/** Requests per second over the last ~2 s, in 250 ms buckets. */
export class RequestRate {
  private readonly buckets = new Map<number, number>();
  hit(nowMs = Date.now()): void {
    const b = Math.floor(nowMs / 250);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
    for (const k of this.buckets.keys()) if (k < b - 8) this.buckets.delete(k);
  }
  perSecond(nowMs = Date.now()): number {
    const b = Math.floor(nowMs / 250);
    let n = 0;
    for (const [k, v] of this.buckets) if (k > b - 8 && k <= b) n += v;
    return n / 2;
  }
}

export interface ExposeControlOptions {
  id: string;
  relay: string;
  flows: FlowRegistry<RequestFlow> | FlowRegistry<ConnectionFlow>;
  /** The tunnel as `status` shows it now. */
  tunnel: () => TunnelSnapshot;
  /** The agent's relay links now (an HTTP agent's one WebSocket; none listed for a TCP tunnel's room). */
  connections: () => TunnelConnection[];
  log: (line: string) => void;
}

/** Starts the socket, or returns null (with a log line) when another agent of this id on this machine has it. */
export async function startExposeControl(o: ExposeControlOptions): Promise<ControlService | null> {
  const path = exposeControlPath(o.id);
  const other = await ControlClient.connect(path, 500).catch(() => null);
  if (other) {
    other.close();
    o.log(`control socket ${path} belongs to another agent of tunnel "${o.id}": this one has none`);
    return null;
  }
  const startedAt = Date.now();
  const relay = relayDisplayUrl(o.relay);
  const flows = o.flows as FlowRegistry<RequestFlow | ConnectionFlow>;
  const status = (): ExposeStatus => ({
    pid: process.pid, mode: 'expose', relay, room: null, exitPeer: null, killSwitch: null, bypass: null,
    uptimeMs: Date.now() - startedAt,
    connections: o.connections().map(relayLinkSnapshot),
    flows: flows.count,
    ...flows.totals(),
    rateUp: Math.round(flows.totalRate.upRate),
    rateDown: Math.round(flows.totalRate.downRate),
    tunnel: o.tunnel(),
  });
  return startControlService({ path, access: 'user', flows, status });
}

/** One connection through a TCP tunnel (a stream of `zks access` to the one service). */
export class ConnectionFlow {
  readonly openedAt = Date.now();
  constructor(readonly id: number, readonly stream: MuxStream, readonly service: string) {}
  get bytesUp(): number {
    return this.stream.bytesReceived;
  }
  get bytesDown(): number {
    return this.stream.bytesSent;
  }
}

/** A TCP tunnel agent's counters and flows: every client stream, from its CONNECT until it closes. */
export class ConnectionCounters {
  readonly flows = new FlowRegistry<ConnectionFlow>({
    describe: (f): FlowDescription => ({
      id: f.id, protocol: 'tcp', source: 'zks access', destination: f.service, target: f.service, path: 'tunnel', via: null,
      state: f.stream.state === 'open' ? 'established' : f.stream.state, bytesUp: f.bytesUp, bytesDown: f.bytesDown,
      ageMs: Date.now() - f.openedAt, error: null,
    }),
    abort: (f) => f.stream.reset(ResetCode.CANCEL, 'connection closed by the operator'),
  });
  readonly rate = new RequestRate();
  connections = 0;
  failed = 0;
  private nextId = 1;

  constructor(private readonly service: string) {}

  track(stream: MuxStream): void {
    const flow = new ConnectionFlow(this.nextId++, stream, this.service);
    this.connections++;
    this.rate.hit();
    this.flows.add(flow.id, flow);
    // The exit sets the stream's own close handler after this (socket-bridge.ts): ours runs after whichever it is.
    let handler: MuxStream['onClose'];
    Object.defineProperty(stream, 'onClose', {
      configurable: true,
      get: () => (err: ZksError | null) => {
        handler?.(err);
        if (err) this.failed++;
        this.flows.remove(flow.id, { state: err ? 'failed' : 'closed', error: err?.message ?? null });
      },
      set: (h: MuxStream['onClose']) => void (handler = h),
    });
  }
}
