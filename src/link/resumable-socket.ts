// Path 0 of a session that can be resumed (PROTOCOL.md §11.7): a MessageSocket whose transport — the WebSocket to
// the room — can go away and be replaced by the one a resume brought, while the SecureLink above it keeps its
// streams, keys and replay queue. Detached, it drops what it is given: every record stays in the replay queue and
// goes again once a transport is attached (SecureLink.resumed).

import type { MessageSocket } from './paths';

export class ResumableSocket implements MessageSocket {
  private current: MessageSocket | null;
  private closed = false;

  constructor(
    /** The transport it was made with. */
    readonly first: MessageSocket,
    /** Fixed for the session: every transport attached later frames records the same way. */
    readonly headroom = first.headroom,
    readonly ownsReceived = first.ownsReceived,
  ) {
    this.current = first;
  }

  get attached(): boolean {
    return this.current !== null;
  }

  /** The transport is gone; records are dropped (kept in the replay queue) until attach(). */
  detach(): void {
    this.current = null;
  }

  /** A resumed transport takes over; false once the link closed this socket (nothing may be attached then). */
  attach(socket: MessageSocket): boolean {
    if (this.closed) return false;
    this.current = socket;
    return true;
  }

  send(data: Uint8Array): void {
    this.current?.send(data);
  }

  sendOwned(data: Uint8Array, written: () => void): void {
    const c = this.current;
    if (!c) return; // dropped: `written` never runs, the buffer is not reused
    if (c.sendOwned) c.sendOwned(data, written);
    else c.send(data);
  }

  /** Closes the transport in use, or, detached, the first one: its owner learns the session is over either way. */
  close(code: number, reason: string): void {
    this.closed = true;
    const c = this.current ?? this.first;
    this.current = null;
    c.close(code, reason);
  }

  /** Detached: as backed up as can be, so datagrams are dropped (UDP loses them) instead of piling up for replay. */
  backlog(): number {
    return this.current ? this.current.backlog?.() ?? 0 : Number.MAX_SAFE_INTEGER;
  }

  get isHeld(): boolean {
    return this.current?.isHeld ?? false;
  }
}
