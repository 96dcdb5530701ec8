// Fair reading between sockets of one process. libuv reads a readable socket up to 32 times (64 KiB each) in one
// callback, and every chunk is opened, sealed or delivered synchronously: a bulk transfer could hold the event
// loop for ~2 MB of work (tens of ms on a busy machine) while a datagram or a keepalive waits on another socket.
// A reader that spent its budget pauses until the check phase of this turn, after the other sockets' reads.

/** Bytes a reader handles before it yields the rest of the turn (a few hundred µs of work). */
export const READ_BUDGET_PER_TURN = 256 * 1024;

export class TurnBudget {
  private used = 0;
  private yielding = false;

  constructor(
    private readonly pause: () => void,
    /** Called when the yield ends; the reader resumes unless it is paused for a reason of its own. */
    private readonly resume: () => void,
    private readonly budget = READ_BUDGET_PER_TURN,
  ) {}

  /** Whether the reader is paused by this budget right now. */
  get isYielding(): boolean {
    return this.yielding;
  }

  /** Counts `bytes` just handled; past the budget, pauses the reader until setImmediate. */
  spend(bytes: number): void {
    this.used += bytes;
    if (this.used <= this.budget || this.yielding) return;
    this.yielding = true;
    this.pause();
    setImmediate(() => {
      this.yielding = false;
      this.used = 0;
      this.resume();
    });
  }
}
