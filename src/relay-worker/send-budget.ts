// The isolate-wide bound on DATA the Worker has sent but no PONG has yet acknowledged (protocol/mux.ts,
// SharedSendBudget). Each WebSocket is held to 8 MiB on its own, but an isolate (128 MB on Cloudflare) serves
// many WebSockets at once: one client whose network stalls may hold a dozen. Module state is per isolate, so one
// instance in index.ts is shared by every WebSocket the isolate carries.
// Each WebSocket lives in its own request context, and workerd forbids I/O on another request's objects ("Cannot
// perform I/O on behalf of a different request"): a poke never runs the subscriber directly. It resolves a promise
// the subscriber created in its own context, and workerd runs the continuation back in that context.

import type { SharedSendBudget } from '../protocol/mux';

export class SendBudget implements SharedSendBudget {
  private used = 0;
  private readonly pokes = new Set<() => void>();

  constructor(readonly limit: number) {}

  get exhausted(): boolean {
    return this.used >= this.limit;
  }

  /** Bytes currently held (for tests and diagnostics). */
  get held(): number {
    return this.used;
  }

  take(n: number): void {
    const was = this.exhausted;
    this.used += n;
    if (!was && this.exhausted) this.pokeAll();
  }

  give(n: number): void {
    const was = this.exhausted;
    this.used = Math.max(0, this.used - n);
    if (was && !this.exhausted) this.pokeAll();
  }

  /** Call from the subscriber's own request context: that is where `poke` will run, a microtask after a change. */
  subscribe(poke: () => void): () => void {
    let active = true;
    let wake: () => void = () => {};
    const arm = () => {
      void new Promise<void>((resolve) => (wake = resolve)).then(() => {
        if (!active) return;
        arm();
        poke();
      });
    };
    arm();
    const entry = () => wake();
    this.pokes.add(entry);
    return () => {
      active = false;
      this.pokes.delete(entry);
    };
  }

  /** Every session in turn; the first one goes to the back, so a resume does not always favour the same one. */
  private pokeAll(): void {
    const all = [...this.pokes];
    if (all.length > 1) {
      this.pokes.delete(all[0]);
      this.pokes.add(all[0]);
    }
    for (const poke of all) poke();
  }
}

/** 32 MiB: four WebSockets at their own 8 MiB limit; the rest of the isolate's 128 MB stays for everything else. */
export const ISOLATE_UNACKED_BYTES = 32 * 1024 * 1024;
export const isolateSendBudget = new SendBudget(ISOLATE_UNACKED_BYTES);
