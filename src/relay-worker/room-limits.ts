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
/**
 * Messages per second per socket (token buckets, burst = twice the rate): a client's records, and the exit's for
 * all its sessions. A bulk upload at ~1 GB/s in 64 KiB records is ~16 000 records/s, so a client gets what the exit
 * gets: the limit is against floods of tiny messages, not against fast clients (closing one would reset its
 * transfer). The Worker may lower the client rate (ZKS_ROOM_CLIENT_RATE, tests) through ROOM_CLIENT_RATE_HEADER.
 */
export const DEFAULT_CLIENT_RATE = 16_000;
export const EXIT_RATE = 16_000;
export const MIN_CLIENT_RATE = 10;
export const MAX_CLIENT_RATE = 1_000_000;
/** Set by the Worker (it overwrites any incoming value), like the role header. */
export const ROOM_CLIENT_RATE_HEADER = 'X-Zks-Room-Client-Rate';

/** The client rate the Worker passed along, or the default when absent or out of range. */
export function clientRateFrom(header: string | null): number {
  const n = header === null ? NaN : Number(header);
  return Number.isInteger(n) && n >= MIN_CLIENT_RATE && n <= MAX_CLIENT_RATE ? n : DEFAULT_CLIENT_RATE;
}

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
    if (!this.canTake(nowMs)) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is there now (refilled to nowMs), without taking it. */
  canTake(nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    return this.tokens >= 1;
  }
}
