// The proxy's live connections for its control socket (`zks-tui`, `zks flows` against a proxy): each tunnelled
// connection in the control layer's FlowRegistry, its bytes read from the tunnel stream's counters.

import type { Socket } from 'node:net';
import { formatTarget, type Target } from '../protocol/address';
import { ResetCode } from '../protocol/constants';
import type { MuxStream } from '../protocol/stream';
import { FlowRegistry, type FlowDescription } from '../control/flow-registry';

export class ProxyFlow {
  readonly openedAt = Date.now();
  readonly source: string;

  constructor(readonly id: number, readonly socket: Socket, readonly stream: MuxStream, readonly target: string, readonly path: 'worker' | 'exit') {
    this.source = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
  }

  get bytesUp(): number {
    return this.stream.bytesSent;
  }

  get bytesDown(): number {
    return this.stream.bytesReceived;
  }
}

export type ProxyFlowRegistry = FlowRegistry<ProxyFlow>;

/** `viaOf`: the path of the relay link carrying a stream (TunnelPool.pathOf), shown per flow through an exit peer. */
export function proxyFlowRegistry(viaOf?: (stream: MuxStream) => string | null): ProxyFlowRegistry {
  const describe = (f: ProxyFlow): FlowDescription => ({
    id: f.id, protocol: 'tcp', source: f.source, destination: f.target, target: f.target, path: f.path, via: f.path === 'exit' ? viaOf?.(f.stream) ?? null : null,
    state: f.stream.state === 'open' ? 'established' : f.stream.state, bytesUp: f.bytesUp, bytesDown: f.bytesDown,
    ageMs: Date.now() - f.openedAt, error: null,
  });
  return new FlowRegistry<ProxyFlow>({
    describe,
    abort: (f) => {
      f.stream.reset(ResetCode.CANCEL, 'flow closed by the operator');
      f.socket.resetAndDestroy();
    },
  });
}

let nextId = 1;

/** Tracks a bridged connection until its socket closes. */
export function trackConnection(flows: ProxyFlowRegistry, socket: Socket, stream: MuxStream, target: Target, path: 'worker' | 'exit'): void {
  const flow = new ProxyFlow(nextId++, socket, stream, formatTarget(target), path);
  flows.add(flow.id, flow);
  socket.once('close', () => flows.remove(flow.id, { state: 'closed' }));
}
