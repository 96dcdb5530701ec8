// What stream users (zksd, the DNS forwarder) need from the tunnel: open a stream to a target and learn the
// relay's CONNECT_RESULT. TunnelPool (direct to the Worker, or through a room to an exit peer) implements it.
import type { Target } from '../protocol/address';
import type { OpenResult } from './pool';

export interface Dialer {
  open(target: Target): Promise<OpenResult>;
}
