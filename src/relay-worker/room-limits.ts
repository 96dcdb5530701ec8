// What a relay room bounds (docs/PROTOCOL.md §11.3 "Limits"), and the token bucket behind its message rate:
// `ratePerSecond` tokens refill continuously up to `burst`; each message takes one. Pure arithmetic on the
// caller's clock, so it survives Workers' coarse timers (Date.now() only moves between events) and needs no timer.
// (Message sizes are wire format: MAX_ROOM_MESSAGE / MAX_EXIT_MESSAGE in src/protocol/room-wire.ts.)

/** Live client sessions one room carries; more get ROOM_FULL (each costs the room a WebSocket). */
export const MAX_SESSIONS_PER_ROOM = 256;
/** Exits that have not proved the secret yet; a newer one retires the oldest (a key holder cannot lock it out). */
export const MAX_PENDING_EXITS = 8;
export const EXIT_PROOF_TIMEOUT_MS = 10_000;
/**
 * An attached exit that the room has not heard from (message or auto-answered ping) for this long may be replaced
 * by another proven exit: `zks exit-peer` pings every 25 s, so a live one is never older than that.
 */
export const EXIT_STALE_MS = 60_000;
/** Messages per second per socket (token buckets): a client's records, and the exit's for all its sessions. */
export const CLIENT_RATE = { perSecond: 1_000, burst: 2_000 } as const;
export const EXIT_RATE = { perSecond: 16_000, burst: 32_000 } as const;

export class RateBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** Takes one token; false when the socket is over its rate (the caller closes it). */
  take(nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
