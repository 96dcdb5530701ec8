// The SOCKS5/HTTP CONNECT client's live connections, for its control socket (`zks-tui`, `zks flows` against a
// proxy): one entry per tunnelled connection, bytes read from the tunnel stream's counters, rates sampled by
// the control ticker, a small ring of closed entries for display.

import type { Socket } from 'node:net';
import { formatTarget, type Target } from '../protocol/address';
import { ResetCode } from '../protocol/constants';
import type { MuxStream } from '../protocol/stream';
import { RateMeter } from '../daemon/rate';
import type { FlowSnapshot } from '../daemon/control/protocol';

interface Entry {
  id: number;
  socket: Socket;
  stream: MuxStream;
  source: string;
  target: string;
  openedAt: number;
  rate: RateMeter;
  closed: FlowSnapshot | null;
}

const RECENT = 64;

export class ClientFlowTable {
  private nextId = 1;
  private readonly live = new Map<number, Entry>();
  private readonly recent: FlowSnapshot[] = [];
  private closedUp = 0;
  private closedDown = 0;
  readonly totalRate = new RateMeter();

  constructor(private readonly path: 'worker' | 'exit') {}

  /** Tracks a bridged connection until its socket closes. */
  add(socket: Socket, stream: MuxStream, target: Target): void {
    const e: Entry = {
      id: this.nextId++,
      socket,
      stream,
      source: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      target: formatTarget(target),
      openedAt: Date.now(),
      rate: new RateMeter(),
      closed: null,
    };
    this.live.set(e.id, e);
    socket.once('close', () => {
      this.live.delete(e.id);
      this.closedUp += stream.bytesSent;
      this.closedDown += stream.bytesReceived;
      this.recent.push({ ...this.snapshot(e), state: 'closed', closed: true });
      if (this.recent.length > RECENT) this.recent.shift();
    });
  }

  private snapshot(e: Entry): FlowSnapshot {
    return {
      id: e.id, protocol: 'tcp', source: e.source, destination: e.target, target: e.target, path: this.path,
      state: e.stream.state === 'open' ? 'established' : e.stream.state, bytesUp: e.stream.bytesSent,
      bytesDown: e.stream.bytesReceived, rateUp: Math.round(e.rate.upRate), rateDown: Math.round(e.rate.downRate),
      ageMs: Date.now() - e.openedAt, error: null, closed: false,
    };
  }

  flows(includeClosed: boolean): FlowSnapshot[] {
    const live = [...this.live.values()].map((e) => this.snapshot(e));
    return includeClosed ? [...live, ...this.recent] : live;
  }

  get count(): number {
    return this.live.size;
  }

  totals(): { bytesUp: number; bytesDown: number } {
    let up = this.closedUp;
    let down = this.closedDown;
    for (const e of this.live.values()) {
      up += e.stream.bytesSent;
      down += e.stream.bytesReceived;
    }
    return { bytesUp: up, bytesDown: down };
  }

  sampleRates(nowMs: number): void {
    for (const e of this.live.values()) e.rate.sample(nowMs, e.stream.bytesSent, e.stream.bytesReceived);
    const t = this.totals();
    this.totalRate.sample(nowMs, t.bytesUp, t.bytesDown);
  }

  /** Resets one connection both ways; false when no such live flow. */
  close(id: number): boolean {
    const e = this.live.get(id);
    if (!e) return false;
    e.stream.reset(ResetCode.CANCEL, 'flow closed by the operator');
    e.socket.resetAndDestroy();
    return true;
  }
}
