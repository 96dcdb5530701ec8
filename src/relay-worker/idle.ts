// Worker-side idle timeouts for one WebSocket and its streams. A client that vanished without a close (its
// network dropped) would otherwise pin the WebSocket, its streams and their target connections until the
// runtime notices; a stream whose ends both went quiet would hold one of the few outbound sockets for ever.
// A client that sends (pings) but no longer reads holds its share of the send budgets (mux.ts) for ever: a PING
// of ours left unanswered for UNREAD_FACTOR link idle times ends its WebSocket too. (Not one: our PING may wait
// behind 8 MiB of data, 6 minutes at the default cover links down to ~190 kbit/s.)
// One timer per WebSocket polls the counters the link already keeps (no per-frame bookkeeping).

import { CloseCode, ResetCode } from '../protocol/constants';
import type { SecureLink } from '../link/secure-link';
import type { MuxStream } from '../protocol/stream';

const UNREAD_FACTOR = 4;

export interface IdleLimits {
  linkIdleTimeoutMs: number;
  streamIdleTimeoutMs: number;
}

/**
 * Starts watching; `closeSocket` ends the WebSocket. Returns a stop function (call it when the link ends).
 * While `detached()` (a kept direct-mode session waiting for its client, direct-session.ts) nothing is judged, and
 * silence counts only from when it ended: the session's own grace period rules then.
 */
export function watchIdle(
  link: SecureLink, limits: IdleLimits, closeSocket: (code: number, reason: string) => void, detached: () => boolean = () => false,
  /** Instead of ending the link: a kept session treats a silent WebSocket as a lost one (it waits for a resume). */
  lose?: (why: string) => void,
): () => void {
  const seen = new Map<MuxStream, { bytes: number; since: number }>();
  const tickMs = Math.max(50, Math.min(limits.linkIdleTimeoutMs, limits.streamIdleTimeoutMs) >>> 2);
  let detachedAt = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    if (link.mux.isClosed) return stop();
    if (detached()) {
      detachedAt = now;
      seen.clear();
      return;
    }
    const silentMs = now - Math.max(link.mux.lastReceiveAt, detachedAt);
    const pingSince = link.mux.pingSentSince;
    const unreadMs = pingSince === null ? 0 : now - Math.max(pingSince, detachedAt);
    if (silentMs >= limits.linkIdleTimeoutMs || unreadMs >= limits.linkIdleTimeoutMs * UNREAD_FACTOR) {
      const why = silentMs >= limits.linkIdleTimeoutMs ? `nothing received for ${silentMs} ms` : `our PING unanswered for ${unreadMs} ms`;
      closeSocket(CloseCode.IDLE_TIMEOUT, silentMs >= limits.linkIdleTimeoutMs ? 'idle timeout' : 'not reading');
      if (lose) return lose(why); // the watch goes on: it pauses while detached
      stop();
      link.socketClosed(why);
      return;
    }
    for (const key of seen.keys()) if (key.state === 'closed') seen.delete(key);
    for (const stream of link.mux.streams.values()) {
      const bytes = stream.bytesSent + stream.bytesReceived;
      const last = seen.get(stream);
      if (!last || last.bytes !== bytes) seen.set(stream, { bytes, since: now });
      else if (now - last.since >= limits.streamIdleTimeoutMs) {
        seen.delete(stream);
        stream.reset(ResetCode.CANCEL, `no data either way for ${now - last.since} ms (relay idle timeout)`);
      }
    }
  }, tickMs);
  const stop = () => clearInterval(timer);
  return stop;
}
