// The one flow registry behind zksd's and the proxies' `flows`/`status`: ids, rates sampled by the ticker, totals
// that never go backwards when a flow closes, the recently-closed ring (oldest first, bounded), and abort by id.
import { describe, expect, it } from 'vitest';
import { FlowRegistry, type FlowDescription } from '../../src/control/flow-registry';

class Counted {
  bytesUp = 0;
  bytesDown = 0;
  aborted = false;
  constructor(readonly id: number) {}
}

function registry(recentClosed?: number): FlowRegistry<Counted> {
  const describe = (f: Counted): FlowDescription => ({
    id: f.id, protocol: 'tcp', source: '10.0.0.1:1000', destination: `192.0.2.1:${f.id}`, target: `192.0.2.1:${f.id}`,
    path: 'worker', via: null, state: 'established', bytesUp: f.bytesUp, bytesDown: f.bytesDown, ageMs: 0, error: null,
  });
  return new FlowRegistry<Counted>({ describe, abort: (f) => (f.aborted = true), recentClosed });
}

describe('FlowRegistry', () => {
  it('lists live flows with rates from the samples, and totals across closed ones', () => {
    const r = registry();
    const a = new Counted(1);
    const b = new Counted(2);
    r.add(1, a);
    r.add(2, b);
    r.sampleRates(0);
    a.bytesDown = 1000;
    b.bytesUp = 500;
    r.sampleRates(1000);
    expect(r.flows().map((f) => [f.id, f.rateUp, f.rateDown, f.closed])).toEqual([[1, 0, 1000, false], [2, 500, 0, false]]);
    expect(r.totalRate.downRate).toBe(1000);
    r.remove(1);
    expect(r.count).toBe(1);
    expect(r.totals()).toEqual({ bytesUp: 500, bytesDown: 1000 });
    r.sampleRates(2000);
    expect(r.totalRate.downRate).toBe(500); // 1000 B over the 2 s window: no dip to zero when the flow closed
  });

  it('keeps the last N closed flows, oldest first, after the live ones', () => {
    const r = registry(2);
    for (let id = 1; id <= 4; id++) r.add(id, new Counted(id));
    r.remove(1);
    r.remove(2, { state: 'closed' });
    r.remove(3);
    expect(r.flows(false).map((f) => f.id)).toEqual([4]);
    const all = r.flows(true);
    expect(all.map((f) => [f.id, f.closed])).toEqual([[4, false], [2, true], [3, true]]);
    expect(all[1].state).toBe('closed');
    r.remove(3); // twice: no double count
    expect(r.flows(true)).toHaveLength(3);
  });

  it('keeps none with recentClosed 0', () => {
    const r = registry(0);
    r.add(1, new Counted(1));
    r.remove(1);
    expect(r.flows(true)).toEqual([]);
  });

  it('aborts a live flow by id; false for an unknown one', () => {
    const r = registry();
    const a = new Counted(7);
    r.add(7, a);
    expect(r.abort(8)).toBe(false);
    expect(r.abort(7)).toBe(true);
    expect(a.aborted).toBe(true);
    expect(r.get(7)).toBe(a);
  });
});
