// Drives the netstack from a TUN device: every read batch goes through Interface.receive, then one service pass
// (the engine moves bytes between sockets and tunnel streams) and one Interface.poll whose packets go out in a
// single batched write. Socket timers become one Node timer set to the earliest deadline poll reports. Anything
// that changes a socket outside a read batch (tunnel data, a dial result) calls kick(), which coalesces into one
// pass per event-loop turn — so ACKs go out once per batch, not once per segment.

import type { TunDevice } from './tun/index';
import type { Interface } from '../netstack/iface';

export interface DriverStats {
  /** Packets the kernel queue refused (full): TCP recovers them by retransmission. */
  writeDropped: number;
  writeBatches: number;
}

export class StackDriver {
  readonly stats: DriverStats = { writeDropped: 0, writeBatches: 0 };
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | null = null;
  private closed = false;
  private readonly out: Uint8Array[] = [];

  constructor(
    private readonly dev: TunDevice,
    private readonly iface: Interface,
    /** Runs before each poll: move data between sockets and streams for flows marked active. */
    private readonly service: (nowMs: number) => void,
    onError: (err: Error) => void,
  ) {
    dev.onError(onError);
    dev.onPackets((batch) => {
      const now = performance.now();
      for (let i = 0; i < batch.count; i++) iface.receive(batch.packet(i), now);
      this.run(now);
    });
  }

  /** Schedules a service + poll pass on this event-loop turn (many kicks, one pass). */
  kick(): void {
    if (this.immediate !== null || this.closed) return;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.run(performance.now());
    });
  }

  private run(now: number): void {
    if (this.closed) return;
    this.service(now);
    const out = this.out;
    const next = this.iface.poll(now, (p) => out.push(p));
    if (out.length > 0) {
      this.stats.writeBatches++;
      const written = this.dev.closed ? 0 : this.dev.write(out);
      this.stats.writeDropped += out.length - written;
      out.length = 0;
    }
    this.schedule(next, now);
  }

  private schedule(next: number | null, now: number): void {
    if (next === null) return; // an earlier timer may fire for nothing; cheaper than clearing it every batch
    if (next <= now) return this.kick();
    if (this.timer !== null && this.timerAt <= next) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.run(performance.now());
    }, Math.ceil(next - now));
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }
}
