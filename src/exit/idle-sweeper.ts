// One timer for many idle deadlines (the exit's UDP flows): traffic only moves a flow's timestamp, and the timer
// fires at the earliest deadline it was told about, sweeps, and re-arms for the next one. No timer object per flow
// (memory per idle flow is the point), and the clock is injectable so idle expiry is tested without sleeping.
// Invariant: the armed deadline is never later than the earliest real deadline (deadlines only move later with
// traffic; an earlier one, e.g. a flow switching to the short DNS timeout, calls expectBy()).

/** The clock and timer a sweeper uses; tests pass a manual one. */
export interface IdleClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(fire: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: IdleClock = {
  now: () => performance.now(),
  // unref: idle bookkeeping alone must not keep the process alive.
  setTimer: (fire, delayMs) => setTimeout(fire, delayMs).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class IdleSweeper {
  private armedFor = Infinity;
  private handle: unknown = null;

  /**
   * `sweep(now)` expires what is due and returns the earliest deadline still pending (Infinity when none).
   */
  constructor(
    private readonly clock: IdleClock,
    private readonly sweep: (now: number) => number,
  ) {}

  /** A deadline exists at `deadline` (or later): make sure the timer fires no later than that. */
  expectBy(deadline: number): void {
    if (deadline >= this.armedFor) return;
    this.stop();
    this.armedFor = deadline;
    this.handle = this.clock.setTimer(() => this.fire(), Math.max(0, deadline - this.clock.now()));
  }

  stop(): void {
    if (this.handle !== null) this.clock.clearTimer(this.handle);
    this.handle = null;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.handle = null;
    this.armedFor = Infinity;
    const next = this.sweep(this.clock.now());
    if (next !== Infinity) this.expectBy(next);
  }
}
