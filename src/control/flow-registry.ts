// The live flows a program shows on its control socket — zksd's TUN flows and a proxy's connections alike: one
// entry per flow with a rate meter sampled by the control ticker (not the viewer), the bytes of closed flows kept
// so totals never go backwards, and a ring of the last closed flows for display (oldest first). The flows' meters
// share one clock (they are sampled at the same ticks), and an idle flow's meter holds no samples (rate.ts).

import type { FlowSnapshot } from './protocol';
import { RateMeter, SampleTicks, TickedRate } from './rate';

/** What a registry needs of a flow: its byte counters, read at every sample. */
export interface CountedFlow {
  readonly bytesUp: number;
  readonly bytesDown: number;
}

/** A flow as shown, minus what the registry fills in (rates and `closed`). */
export type FlowDescription = Omit<FlowSnapshot, 'rateUp' | 'rateDown' | 'closed'>;

export interface FlowRegistryOptions<F> {
  describe(flow: F): FlowDescription;
  /** Resets the flow both ways (`flow.close`): the application and the far end see it. */
  abort(flow: F): void;
  /** Closed flows kept for display (default 64; 0 keeps none). */
  recentClosed?: number;
}

/** A live flow and its meter, one object per flow. */
class Entry<F> extends TickedRate {
  constructor(readonly flow: F) {
    super();
  }
}

export class FlowRegistry<F extends CountedFlow> {
  private readonly live = new Map<number, Entry<F>>();
  private readonly recent: FlowSnapshot[] = [];
  private closedUp = 0;
  private closedDown = 0;
  private readonly ticks = new SampleTicks();
  /** Rates of all flows together (closed ones' bytes included, so a closing flow is no dip). */
  readonly totalRate = new RateMeter();

  constructor(private readonly opts: FlowRegistryOptions<F>) {}

  add(id: number, flow: F): void {
    this.live.set(id, new Entry(flow));
  }

  get(id: number): F | undefined {
    return this.live.get(id)?.flow;
  }

  /** The flow ended: its bytes join the totals and its last view the recently-closed ring. */
  remove(id: number, final?: Partial<FlowDescription>): void {
    const e = this.live.get(id);
    if (e === undefined) return;
    this.live.delete(id);
    this.closedUp += e.flow.bytesUp;
    this.closedDown += e.flow.bytesDown;
    const max = this.opts.recentClosed ?? 64;
    if (max <= 0) return;
    this.recent.push({ ...this.snapshot(e), ...final, closed: true });
    if (this.recent.length > max) this.recent.shift();
  }

  get count(): number {
    return this.live.size;
  }

  *values(): IterableIterator<F> {
    for (const e of this.live.values()) yield e.flow;
  }

  /** Live flows, then (with includeClosed) the recently closed ones, oldest first. */
  flows(includeClosed = false): FlowSnapshot[] {
    const live = [...this.live.values()].map((e) => this.snapshot(e));
    return includeClosed ? [...live, ...this.recent] : live;
  }

  /** Payload bytes since start, closed flows included. */
  totals(): { bytesUp: number; bytesDown: number } {
    let up = this.closedUp;
    let down = this.closedDown;
    for (const { flow } of this.live.values()) {
      up += flow.bytesUp;
      down += flow.bytesDown;
    }
    return { bytesUp: up, bytesDown: down };
  }

  /** Samples every flow's rate and the total (the control ticker calls this every 250 ms). */
  sampleRates(nowMs: number): void {
    this.ticks.advance(nowMs);
    for (const e of this.live.values()) e.sample(this.ticks, e.flow.bytesUp, e.flow.bytesDown);
    const t = this.totals();
    this.totalRate.sample(nowMs, t.bytesUp, t.bytesDown);
  }

  /** Resets one live flow; false when there is none with that id. */
  abort(id: number): boolean {
    const e = this.live.get(id);
    if (e === undefined) return false;
    this.opts.abort(e.flow);
    return true;
  }

  private snapshot(e: Entry<F>): FlowSnapshot {
    return { ...this.opts.describe(e.flow), rateUp: Math.round(e.upRate), rateDown: Math.round(e.downRate), closed: false };
  }
}
