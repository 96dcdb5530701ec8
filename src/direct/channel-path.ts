// One direct path as the link sees it (a MessageSocket, src/link/paths.ts): the two DataChannels of PROTOCOL.md
// §3.6. `zks-r` (reliable, ordered) carries the session's sequenced records; `zks-d` (unordered, no retransmits)
// carries datagram records (datagram-records.ts) and the heartbeat — a PING every 250 ms, answered PONG — because
// WebRTC itself notices a dead path only after
// ≈ 25 s (README, Direct path). Silence on both channels for 1 s declares the path dead. Writes stop (the owner
// holds the link's writers) while `zks-r` has more than HIGH_WATER bytes queued, and resume on its low-water event:
// send() is never unbounded.

import type { RtcChannel } from './webrtc';

/** Channel ids and labels, negotiated out of band (the same on both sides). */
export const RECORD_CHANNEL = { label: 'zks-r', id: 1 } as const;
export const HEARTBEAT_CHANNEL = { label: 'zks-d', id: 2 } as const;

export const HEARTBEAT_MS = 250;
/** No message on either channel for this long: the path is dead (four heartbeats missed). */
export const DEAD_AFTER_MS = 1_000;
/** Bytes queued on `zks-r` above which the link's writers are held, and below which they resume. */
export const HIGH_WATER = 1024 * 1024;
export const LOW_WATER = 256 * 1024;
/** While held, the queue is also polled this often: a low-water event can be missed (README, Direct path). */
const HELD_POLL_MS = 10;

const HeartbeatKind = { PING: 1, PONG: 2 } as const;
const HEARTBEAT_SIZE = 9;
/** Bytes queued on `zks-d` above which datagram records are dropped, as a full UDP socket drops them. */
export const DATAGRAM_BACKLOG = 256 * 1024;

export interface ChannelPathEvents {
  /** One sealed record from the peer. */
  record(message: Uint8Array): void;
  /** The path stopped working (silence, a channel closed, a refused write, a bad heartbeat message). */
  dead(reason: string): void;
  /** `zks-r` is backed up (true) or has drained (false). */
  backlogged(held: boolean): void;
  /** A datagram record from `zks-d` (datagram-records.ts): longer than a heartbeat, not yet opened. */
  datagram(message: Uint8Array): void;
}

export class ChannelPath {
  /** Round trip of the last answered heartbeat, ms; -1 before the first. */
  rttMs = -1;
  messagesIn = 0;
  bytesIn = 0;
  bytesOut = 0;
  datagramsOut = 0;
  /** Datagram records not sent because `zks-d` had DATAGRAM_BACKLOG queued. */
  datagramsDropped = 0;
  private lastHeard: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private held = false;
  private ended = false;
  private pingCounter = 0;
  /** When each of the last 8 PINGs left, by counter mod 8. */
  private readonly pingSentAt = new Float64Array(8);

  constructor(
    private readonly records: RtcChannel,
    private readonly heartbeats: RtcChannel,
    private readonly events: ChannelPathEvents,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastHeard = now();
    records.setBufferedAmountLowThreshold(LOW_WATER);
    records.onBufferedAmountLow(() => this.checkBacklog());
    records.onMessage((m) => {
      this.heard();
      if (typeof m === 'string') return this.die('a text message on the record channel');
      const bytes = m instanceof ArrayBuffer ? new Uint8Array(m) : m;
      this.bytesIn += bytes.length;
      this.events.record(bytes);
    });
    heartbeats.onMessage((m) => {
      this.heard();
      if (typeof m === 'string') return this.die('a text message on the heartbeat channel');
      this.onHeartbeat(m instanceof ArrayBuffer ? new Uint8Array(m) : m);
    });
    for (const [name, channel] of [[RECORD_CHANNEL.label, records], [HEARTBEAT_CHANNEL.label, heartbeats]] as const) {
      channel.onClosed(() => this.die(`DataChannel ${name} closed`));
      channel.onError((err) => this.die(`DataChannel ${name}: ${err}`));
    }
  }

  /** Both channels are open: heartbeats start, silence counts from now. */
  start(): void {
    if (this.ended || this.timer) return;
    this.lastHeard = this.now();
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
    this.timer.unref?.();
    this.ping();
  }

  // ---- MessageSocket ----

  readonly headroom = 0;
  /** node-datachannel hands each message over in a Buffer of its own. */
  readonly ownsReceived = true;

  send(data: Uint8Array): void {
    if (this.ended) return; // records sent after death are in the replay queue: they go again on the room
    try {
      this.records.sendMessageBinary(data); // false only says "queued, not yet sent": bufferedAmount counts it
    } catch (err) {
      return this.die(`the record channel failed: ${(err as Error)?.message ?? String(err)}`);
    }
    this.bytesOut += data.length;
    if (!this.held && this.records.bufferedAmount() > HIGH_WATER) this.setHeld(true);
  }

  /** libdatachannel copies the message before sendMessageBinary returns: the buffer is free at once. */
  sendOwned(data: Uint8Array, written: () => void): void {
    this.send(data);
    written();
  }

  backlog(): number {
    return this.ended ? 0 : this.records.bufferedAmount();
  }

  /** One sealed datagram record on `zks-d`: unordered, never retransmitted, dropped when the channel is backed up. */
  sendDatagram(message: Uint8Array): void {
    if (this.ended) return;
    try {
      if (this.heartbeats.bufferedAmount() > DATAGRAM_BACKLOG) return void this.datagramsDropped++;
      this.heartbeats.sendMessageBinary(message);
      this.datagramsOut++;
    } catch {
      this.datagramsDropped++; // closed underneath us: its onClosed ends the path
    }
  }

  /** The link ends (its close code and reason are for WebSockets): the owner closes the peer connection. */
  close(): void {
    this.stop();
  }

  // ----

  get isHeld(): boolean {
    return this.held;
  }

  /** Stops timers and events; no more records are sent or delivered. */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.held) this.setHeld(false);
  }

  private heard(): void {
    this.lastHeard = this.now();
    this.messagesIn++;
  }

  private tick(): void {
    this.ping();
    if (this.now() - this.lastHeard <= DEAD_AFTER_MS) return;
    // After a stall of this process (GC, load) what arrived meanwhile may still wait behind this timer: the verdict
    // comes after the pending I/O callbacks have run.
    setImmediate(() => {
      const silent = this.now() - this.lastHeard;
      if (silent > DEAD_AFTER_MS) this.die(`no heartbeat for ${Math.round(silent)} ms`);
    });
  }

  private ping(): void {
    const counter = this.pingCounter++;
    this.pingSentAt[counter & 7] = this.now();
    this.sendHeartbeat(HeartbeatKind.PING, counter);
  }

  private sendHeartbeat(kind: number, counter: number, opaque?: Uint8Array): void {
    if (this.ended) return;
    const m = new Uint8Array(HEARTBEAT_SIZE);
    m[0] = kind;
    if (opaque) m.set(opaque, 1);
    else new DataView(m.buffer).setUint32(5, counter);
    // Unreliable by design: a refused heartbeat is a missed one, and silence is what kills the path.
    try {
      this.heartbeats.sendMessageBinary(m);
    } catch {
      // closed underneath us: its onClosed ends the path
    }
  }

  private onHeartbeat(m: Uint8Array): void {
    if (m.length > HEARTBEAT_SIZE) return this.events.datagram(m);
    if (m.length !== HEARTBEAT_SIZE) return this.die(`a ${m.length}-byte message on the heartbeat channel`);
    if (m[0] === HeartbeatKind.PING) return this.sendHeartbeat(HeartbeatKind.PONG, 0, m.subarray(1));
    if (m[0] !== HeartbeatKind.PONG) return this.die(`heartbeat kind ${m[0]} is unknown`);
    const counter = new DataView(m.buffer, m.byteOffset, m.length).getUint32(5);
    // Only an answer to one of the last 8 PINGs measures anything (older ones wrapped around).
    if (this.pingCounter - counter <= 8 && counter < this.pingCounter) this.rttMs = this.now() - this.pingSentAt[counter & 7];
  }

  private checkBacklog(): void {
    if (this.held && !this.ended && this.records.bufferedAmount() <= LOW_WATER) this.setHeld(false);
  }

  private setHeld(held: boolean): void {
    this.held = held;
    if (held && !this.pollTimer) {
      this.pollTimer = setInterval(() => this.checkBacklog(), HELD_POLL_MS);
      this.pollTimer.unref?.();
    } else if (!held && this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    }
    this.events.backlogged(held);
  }

  private die(reason: string): void {
    if (this.ended) return;
    this.stop();
    this.events.dead(reason);
  }
}
