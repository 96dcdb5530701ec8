// What the daemon needs from the tunnel: open a stream to a target and learn the relay's CONNECT_RESULT.
// TunnelPool (direct to the Worker, or through a room to an exit peer) implements it.
import type { Target } from '../protocol/address';
import type { OpenResult } from '../client/pool';

export interface Dialer {
  open(target: Target): Promise<OpenResult>;
}
