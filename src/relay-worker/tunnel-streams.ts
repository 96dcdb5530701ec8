// Streams an HTTP tunnel keeps open to each agent ahead of need (docs/PROTOCOL.md §12.3): a new stream costs a round
// trip to the agent before its first byte may go (CONNECT, then CONNECT_RESULT grants the credit), so a request that
// finds a spare one sends its head at once. The agent cannot tell a spare from a request that has not sent its head
// yet; spares idle past the link's stream idle timeout are reset by it (idle.ts) and replaced here.

import type { SecureLink } from '../link/secure-link';
import type { MuxStream } from '../protocol/stream';
import { TUNNEL_STREAM_TARGET } from '../protocol/tunnel-http';

/** Spare streams per agent: enough for a burst of requests arriving together, few enough to cost nothing idle. */
export const SPARE_STREAMS = 4;

export class SpareStreams {
  private readonly spare: MuxStream[] = [];

  constructor(private readonly link: SecureLink) {}

  /** A stream for one request: an open spare if there is one (then another is opened behind it), else a new one. */
  take(): MuxStream {
    let stream: MuxStream | undefined;
    while ((stream = this.spare.shift()) !== undefined) if (stream.state !== 'closed') break; // connecting: its result is on the way
    const taken = stream ?? this.link.mux.openStream(TUNNEL_STREAM_TARGET); // throws once the link is closed
    this.fill();
    return taken;
  }

  /** Opens streams until SPARE_STREAMS wait (streams still connecting count: their result is on its way). */
  fill(): void {
    for (let i = this.spare.length - 1; i >= 0; i--) if (this.spare[i].state === 'closed') this.spare.splice(i, 1);
    while (this.spare.length < SPARE_STREAMS && !this.link.mux.isClosed) {
      const stream = this.link.mux.openStream(TUNNEL_STREAM_TARGET);
      stream.onClose = () => {
        const at = this.spare.indexOf(stream);
        if (at >= 0) this.spare.splice(at, 1);
      };
      this.spare.push(stream);
    }
  }
}
