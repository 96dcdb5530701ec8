// The exit peer's resumable sessions (PROTOCOL.md §11.7), by ticket, for as long as they live: a session whose
// WebSocket is lost waits here for its client for the grace period, then ends as it would have without resume.
// Outlives the room connection, so sessions survive the exit's own WebSocket too (a Worker deploy, a workerd restart).

import { encodeBase64Url } from '../crypto/bytes';

/** What the registry needs of a session. */
export interface ResumableSession {
  readonly ticket: Uint8Array;
  /** The grace period ran out while detached (or the exit peer is closing): end for good, streams reset. */
  expire(reason: string): void;
}

/** Default grace period: how long a detached session waits for its client (`--resume-grace`). */
export const DEFAULT_RESUME_GRACE_MS = 60_000;
/**
 * Detached sessions kept at once; a further one ends the longest-waiting. As many as a room has sessions
 * (MAX_SESSIONS_PER_ROOM), so a Worker deploy — every session detached at once — keeps them all; and a room member
 * dropping WebSocket after WebSocket cannot pile up more (each holds target sockets and up to the replay budget).
 */
export const MAX_DETACHED_SESSIONS = 256;

export class ResumeRegistry<S extends ResumableSession = ResumableSession> {
  private readonly sessions = new Map<string, S>();
  private readonly timers = new Map<S, ReturnType<typeof setTimeout>>();

  constructor(readonly graceMs: number) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Sessions waiting for their client now. */
  get detached(): number {
    return this.timers.size;
  }

  add(session: S): void {
    this.sessions.set(encodeBase64Url(session.ticket), session);
  }

  /** Ended for good: forgotten. */
  remove(session: S): void {
    const key = encodeBase64Url(session.ticket);
    if (this.sessions.get(key) === session) this.sessions.delete(key);
    this.stopClock(session);
  }

  find(ticket: Uint8Array): S | null {
    return this.sessions.get(encodeBase64Url(ticket)) ?? null;
  }

  /** The session's WebSocket is gone: its grace period starts. */
  detach(session: S): void {
    if (this.timers.has(session)) return;
    if (this.timers.size >= MAX_DETACHED_SESSIONS) {
      const oldest = this.timers.keys().next().value as S;
      this.remove(oldest);
      oldest.expire(`${MAX_DETACHED_SESSIONS} sessions were waiting for their clients; the longest-waiting one ends`);
    }
    const timer = setTimeout(() => {
      this.timers.delete(session);
      this.remove(session);
      session.expire(`its client did not resume it within ${Math.round(this.graceMs / 1000)} s`);
    }, this.graceMs);
    timer.unref?.();
    this.timers.set(session, timer);
  }

  /** Resumed: no grace period runs any more. */
  attach(session: S): void {
    this.stopClock(session);
  }

  /** The exit peer is closing: every session ends now. */
  closeAll(reason: string): void {
    for (const s of [...this.sessions.values()]) {
      this.remove(s);
      s.expire(reason);
    }
  }

  private stopClock(session: S): void {
    const t = this.timers.get(session);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(session);
  }
}
