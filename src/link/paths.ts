// The message sockets one session's records travel over (docs/design/paths.md). Path 0 is the socket the link was
// made with (the WebSocket to the relay or the room); with sequenced records (PROTOCOL.md §2.5a) more can be
// added — issue 11's WebRTC DataChannel — and new records go to the one in use. Records are laid out for path 0's
// headroom (room mode: the session id in front); a path that wants less is given the tail of the buffer.

import { ZksError } from '../errors/zks-error';

export interface MessageSocket {
  /** One sealed record; with `headroom`, the buffer starts with that many free bytes for the socket's header. */
  send(data: Uint8Array): void;
  /**
   * Like send(), and `written()` once the socket no longer references `data` (it reached the kernel); never called
   * when the data was dropped. With it, records are sealed in place and their buffers reused after `written`.
   */
  sendOwned?(data: Uint8Array, written: () => void): void;
  /** Messages given to receive() are the link's to overwrite: they are opened in place where the backend can. */
  readonly ownsReceived?: boolean;
  close(code: number, reason: string): void;
  /**
   * Bytes to leave free in front of every record handed to send() (room mode: the session id), so the
   * socket frames it without copying it.
   */
  readonly headroom?: number;
  /** Bytes given to send() and not yet on the wire (a WebSocket's bufferedAmount); datagrams drop above a limit. */
  backlog?(): number;
  /**
   * A path with a queue of its own (src/direct/) holds the link's writers while it is backed up; this says whether
   * it does now, so that a switch of the path in use carries the hold over (or lifts it).
   */
  readonly isHeld?: boolean;
}

/** Why the link holds its mux's writers (Mux.holdSending reasons, one bit each). */
export const HoldReason = {
  /** The replay queue of sequenced records is full (sequencing.ts). */
  REPLAY: 1,
  /** The path in use has too much queued (a DataChannel's bufferedAmount, src/direct/channel-path.ts). */
  PATH: 2,
  /** The session's transport is lost and it waits for a resume (relay-worker/direct-session.ts). */
  DETACHED: 4,
} as const;

export class PathSet {
  private readonly paths = new Map<number, MessageSocket>();
  /** Paths that were ever in use: only these can have lost records. */
  private readonly used = new Set<number>([0]);
  private nextId = 1;
  /** Where new records go. */
  activeId = 0;

  constructor(readonly primary: MessageSocket) {
    this.paths.set(0, primary);
  }

  get active(): MessageSocket {
    return this.paths.get(this.activeId)!;
  }

  get size(): number {
    return this.paths.size;
  }

  /**
   * A second path was ever added: records may then overtake each other, also after that path is gone (some it
   * carried can still be on their way, or be sent again), so the receiver waits for a missing one instead of failing.
   */
  get multipath(): boolean {
    return this.nextId > 1;
  }

  /** A new path (not yet in use); its id for use() and remove(). */
  add(socket: MessageSocket): number {
    if ((socket.headroom ?? 0) > (this.primary.headroom ?? 0)) {
      throw new ZksError('ZKS_ERR_UNSUPPORTED', `a path may not want more headroom (${socket.headroom}) than path 0 (${this.primary.headroom ?? 0})`);
    }
    const id = this.nextId++;
    this.paths.set(id, socket);
    return id;
  }

  has(id: number): boolean {
    return this.paths.has(id);
  }

  /** New records go to `id` from now on (records already sent keep arriving on the path they took). */
  use(id: number): void {
    if (!this.paths.has(id)) throw new ZksError('ZKS_ERR_UNSUPPORTED', `no path ${id}`);
    this.activeId = id;
    this.used.add(id);
  }

  /**
   * Forgets path `id` (never path 0); if it was in use, path 0 is again. 'unknown' when there was no such path,
   * 'unused' when no record was ever sent on it (none can have been lost there).
   */
  remove(id: number): 'unknown' | 'unused' | 'used' {
    if (id === 0 || !this.paths.delete(id)) return 'unknown';
    if (this.activeId === id) this.activeId = 0;
    return this.used.delete(id) ? 'used' : 'unused';
  }

  /**
   * Sends `message` (laid out with path 0's headroom) on `socket`. `written` runs once the socket no longer needs the
   * bytes — only on a socket that can say so (sendOwned); elsewhere it never runs and the buffer is never reused.
   */
  send(socket: MessageSocket, message: Uint8Array, written?: () => void): void {
    const extra = (this.primary.headroom ?? 0) - (socket.headroom ?? 0);
    const data = extra > 0 ? message.subarray(extra) : message;
    if (written && socket.sendOwned) socket.sendOwned(data, written);
    else socket.send(data);
  }

  /** Every path but path 0 (the link closes path 0 itself, after GOAWAY). */
  others(): MessageSocket[] {
    return [...this.paths.entries()].filter(([id]) => id !== 0).map(([, s]) => s);
  }
}
