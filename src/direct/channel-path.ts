// One direct path as the link sees it (a MessageSocket, src/link/paths.ts): the two DataChannels of PROTOCOL.md
// §3.6. `zks-r` (reliable, ordered) carries the session's sequenced records; `zks-d` (unordered, no retransmits)
// carries datagram records (datagram-records.ts) and the heartbeat (heartbeat.ts: WebRTC itself notices a dead path
// only after ≈ 25 s). Silence on both channels for 1 s declares the path dead. Writes stop (the owner
// holds the link's writers) while `zks-r` has more than HIGH_WATER bytes queued, and resume on its low-water event:
// send() is never unbounded.

import type { RtcChannel } from './webrtc';
import { Heartbeat, HEARTBEAT_SIZE } from './heartbeat';

/** Channel ids and labels, negotiated out of band (the same on both sides). */
export const RECORD_CHANNEL = { label: 'zks-r', id: 1 } as const;
export const HEARTBEAT_CHANNEL = { label: 'zks-d', id: 2 } as const;

/** Bytes queued on `zks-r` above which the link's writers are held, and below which they resume. */
export const HIGH_WATER = 1024 * 1024;
export const LOW_WATER = 256 * 1024;
/** While held, the queue is also polled this often: a low-water event can be missed (README, Direct path). */
const HELD_POLL_MS = 10;

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
  messagesIn = 0;
  bytesIn = 0;
  bytesOut = 0;
  datagramsOut = 0;
  /** Datagram records not sent because `zks-d` had DATAGRAM_BACKLOG queued. */
  datagramsDropped = 0;
  private readonly heartbeat: Heartbeat;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private held = false;
  private ended = false;

  constructor(
    private readonly records: RtcChannel,
    private readonly heartbeats: RtcChannel,
    private readonly events: ChannelPathEvents,
    now: () => number = () => performance.now(),
  ) {
    // Unreliable by design: a refused heartbeat is a missed one, and silence is what kills the path.
    this.heartbeat = new Heartbeat((m) => {
      try {
        heartbeats.sendMessageBinary(m);
      } catch {
        // closed underneath us: its onClosed ends the path
      }
    }, (why) => this.die(why), now);
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
    if (!this.ended) this.heartbeat.start();
  }

  /** Round trip of the last answered heartbeat, ms; -1 before the first. */
  get rttMs(): number {
    return this.heartbeat.rttMs;
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
    this.heartbeat.stop();
    if (this.held) this.setHeld(false);
  }

  private heard(): void {
    this.heartbeat.heard();
    this.messagesIn++;
  }

  private onHeartbeat(m: Uint8Array): void {
    if (m.length > HEARTBEAT_SIZE) return this.events.datagram(m);
    this.heartbeat.receive(m);
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
