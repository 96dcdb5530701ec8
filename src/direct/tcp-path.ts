// The direct TCP path as the link sees it (a MessageSocket, src/link/paths.ts; PROTOCOL.md §3.7): after the
// PATH_HELLO / PATH_WELCOME exchange, a TCP connection carries messages `u32 length || body` — a sequenced record,
// or a 9-byte heartbeat (heartbeat.ts: TCP itself would notice dropped packets only after minutes). The cost is per
// write, not per packet: records queued in one turn of the event loop leave in one writev. Writes stop (the owner
// holds the link's writers) while more than HIGH_WATER bytes wait in the socket, until it drains: send() is never
// unbounded. Anything the framing forbids ends this path only; the link resends what it carried on the room.

import type { Socket } from 'node:net';
import { Heartbeat, HEARTBEAT_SIZE } from './heartbeat';
import { lengthPrefix, LENGTH_SIZE, MessageReader } from './tcp-framing';

/** How long a closing path may take to hand over what is queued before its connection is destroyed. */
const CLOSE_GRACE_MS = 2_000;
/** Bytes waiting in the socket above which the link's writers are held (until 'drain'). */
export const TCP_HIGH_WATER = 1024 * 1024;

export interface TcpPathEvents {
  /** One sealed record from the peer (the link may overwrite it). */
  record(message: Uint8Array): void;
  /** The path stopped working (silence, the connection closed or failed, a framing error). */
  dead(reason: string): void;
  /** The socket is backed up (true) or has drained (false). */
  backlogged(held: boolean): void;
}

export class TcpPath {
  readonly headroom = 0;
  readonly ownsReceived = true;
  bytesIn = 0;
  bytesOut = 0;
  private readonly heartbeat: Heartbeat;
  private ended = false;
  private held = false;
  private corked = false;
  private readonly reader = new MessageReader();

  constructor(
    private readonly socket: Socket,
    private readonly events: TcpPathEvents,
    now: () => number = () => performance.now(),
  ) {
    socket.setNoDelay(true); // records are large already; heartbeats must not wait for an ACK
    this.heartbeat = new Heartbeat((m) => this.write(m), (why) => this.die(why), now);
    socket.on('drain', () => {
      if (this.held && !this.ended) this.setHeld(false);
    });
    socket.on('error', (err) => this.die(`the TCP connection failed: ${err.message}`));
    socket.on('close', () => this.die('the TCP connection closed'));
    socket.on('end', () => this.die('the peer closed the TCP connection'));
  }

  /** Reading and heartbeats start; `first` is what arrived with the set-up message. */
  start(first?: Uint8Array): void {
    if (this.ended) return;
    this.heartbeat.start();
    if (first?.length) this.feed(first);
    this.socket.on('data', (chunk: Buffer) => this.feed(chunk));
  }

  get rttMs(): number {
    return this.heartbeat.rttMs;
  }

  get isHeld(): boolean {
    return this.held;
  }

  // ---- MessageSocket ----

  send(data: Uint8Array): void {
    this.write(data);
  }

  sendOwned(data: Uint8Array, written: () => void): void {
    this.write(data, written);
  }

  backlog(): number {
    return this.ended ? 0 : this.socket.writableLength;
  }

  /**
   * The session ends (GOAWAY was just written): what is queued still leaves — a FIN after it, not a reset — and the
   * connection is destroyed after CLOSE_GRACE_MS at the latest.
   */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.heartbeat.stop();
    if (this.held) this.setHeld(false);
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  // ----

  /** Stops heartbeats and delivery and closes the connection; records not yet written are the replay queue's. */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.heartbeat.stop();
    if (this.held) this.setHeld(false);
    this.socket.destroy();
  }

  private write(body: Uint8Array, written?: () => void): void {
    if (this.ended) return; // records sent after death are in the replay queue: they go again on the room
    if (!this.corked) {
      // Everything written in this turn leaves in one writev.
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        if (!this.corked) return; // close() uncorked already
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(lengthPrefix(body.length));
    // The callback runs once the kernel has the bytes (the buffer may then be reused), with an error if they never got there.
    // Node also calls back with success for writes a destroy() discarded: those are not written.
    this.socket.write(body, written ? (err) => (err || this.socket.destroyed ? undefined : written()) : undefined);
    this.bytesOut += LENGTH_SIZE + body.length;
    if (!this.held && this.socket.writableLength > TCP_HIGH_WATER) this.setHeld(true);
  }

  private feed(chunk: Uint8Array): void {
    if (this.ended) return;
    this.heartbeat.heard();
    this.bytesIn += chunk.length;
    const error = this.reader.push(chunk, this.deliver);
    if (error) this.die(`${error} on the TCP path`);
  }

  private readonly deliver = (body: Uint8Array): void => {
    if (this.ended) return;
    if (body.length === HEARTBEAT_SIZE) this.heartbeat.receive(body);
    else this.events.record(body);
  };

  private setHeld(held: boolean): void {
    this.held = held;
    this.events.backlogged(held);
  }

  private die(reason: string): void {
    if (this.ended) return;
    this.stop();
    this.events.dead(reason);
  }
}
