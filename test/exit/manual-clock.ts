// A clock the test moves by hand (IdleClock): timers fire, in deadline order, only inside advance().
import type { IdleClock } from '../../src/exit/idle-sweeper';

export class ManualClock implements IdleClock {
  private t = 1_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fire: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(fire: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + delayMs, fire });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (and those they set). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let dueId = -1;
      let dueAt = Infinity;
      for (const [id, timer] of this.timers) if (timer.at <= end && timer.at < dueAt) [dueId, dueAt] = [id, timer.at];
      if (dueId < 0) break;
      const timer = this.timers.get(dueId)!;
      this.timers.delete(dueId);
      this.t = Math.max(this.t, timer.at);
      timer.fire();
    }
    this.t = end;
  }
}
