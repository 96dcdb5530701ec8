// The direct paths' heartbeat (PROTOCOL.md §3.6, §3.7): a 9-byte PING every 250 ms, answered by a PONG carrying the
// same 8 bytes, so a path that goes silent is noticed within a second — WebRTC notices only after ≈ 25 s, a TCP
// connection whose packets are dropped only after minutes of retransmissions. Silence for 1 s (anything heard counts)
// declares the path dead. Message kind and framing are the owner's (a DataChannel message, a TCP length prefix).

export const HEARTBEAT_MS = 250;
/** Nothing heard on the path for this long: it is dead (four heartbeats missed). */
export const DEAD_AFTER_MS = 1_000;
/** A heartbeat message: kind u8 || 8 opaque bytes (the PING's counter, echoed by the PONG). Shorter than any record. */
export const HEARTBEAT_SIZE = 9;

const HeartbeatKind = { PING: 1, PONG: 2 } as const;

export class Heartbeat {
  /** Round trip of the last answered PING, ms; -1 before the first. */
  rttMs = -1;
  private lastHeard: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private counter = 0;
  private stopped = false;
  /** When each of the last 8 PINGs left, by counter mod 8. */
  private readonly sentAt = new Float64Array(8);

  constructor(
    /** Sends one heartbeat message; unreliable is fine (a lost one is a missed one). */
    private readonly send: (message: Uint8Array) => void,
    private readonly dead: (reason: string) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastHeard = now();
  }

  /** Heartbeats start, silence counts from now. */
  start(): void {
    if (this.stopped || this.timer) return;
    this.lastHeard = this.now();
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
    this.timer.unref?.();
    this.ping();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Something arrived on the path. */
  heard(): void {
    this.lastHeard = this.now();
  }

  /** A HEARTBEAT_SIZE message from the peer; a malformed one kills the path. */
  receive(m: Uint8Array): void {
    if (m.length !== HEARTBEAT_SIZE) return this.dead(`a ${m.length}-byte heartbeat`);
    if (m[0] === HeartbeatKind.PING) return this.emit(HeartbeatKind.PONG, 0, m.subarray(1));
    if (m[0] !== HeartbeatKind.PONG) return this.dead(`heartbeat kind ${m[0]} is unknown`);
    const counter = new DataView(m.buffer, m.byteOffset, m.length).getUint32(5);
    // Only an answer to one of the last 8 PINGs measures anything (older ones wrapped around).
    if (this.counter - counter <= 8 && counter < this.counter) this.rttMs = this.now() - this.sentAt[counter & 7];
  }

  private tick(): void {
    this.ping();
    if (this.now() - this.lastHeard <= DEAD_AFTER_MS) return;
    // After a stall of this process (GC, load) what arrived meanwhile may still wait behind this timer: the verdict
    // comes after the pending I/O callbacks have run.
    setImmediate(() => {
      const silent = this.now() - this.lastHeard;
      if (!this.stopped && silent > DEAD_AFTER_MS) this.dead(`no heartbeat for ${Math.round(silent)} ms`);
    });
  }

  private ping(): void {
    const counter = this.counter++;
    this.sentAt[counter & 7] = this.now();
    this.emit(HeartbeatKind.PING, counter);
  }

  private emit(kind: number, counter: number, opaque?: Uint8Array): void {
    if (this.stopped) return;
    const m = new Uint8Array(HEARTBEAT_SIZE);
    m[0] = kind;
    if (opaque) m.set(opaque, 1);
    else new DataView(m.buffer).setUint32(5, counter);
    this.send(m);
  }
}
