import { describe, expect, it } from 'vitest';
import { READ_BUDGET_PER_TURN, TurnBudget } from '../../src/link/turn-budget';

describe('TurnBudget', () => {
  it('lets a reader handle its budget in one turn, then pauses it once until the check phase', async () => {
    const events: string[] = [];
    const budget = new TurnBudget(() => events.push('pause'), () => events.push('resume'));
    budget.spend(READ_BUDGET_PER_TURN);
    expect(events).toEqual([]);
    budget.spend(1);
    budget.spend(64 * 1024); // chunks already read after the pause: counted, no second pause
    expect(events).toEqual(['pause']);
    expect(budget.isYielding).toBe(true);
    await new Promise<void>((r) => setImmediate(r));
    expect(events).toEqual(['pause', 'resume']);
    expect(budget.isYielding).toBe(false);
  });

  it('starts the next turn with a full budget', async () => {
    let pauses = 0;
    const budget = new TurnBudget(() => pauses++, () => {}, 1000);
    budget.spend(1001);
    await new Promise<void>((r) => setImmediate(r));
    budget.spend(1000);
    expect(pauses).toBe(1);
    budget.spend(1);
    expect(pauses).toBe(2);
  });
});
