// One WebRTC attempt of the direct path (direct-path.ts) and what its selected ICE pair says about the route.

import type { ChannelPath } from './channel-path';
import type { RtcChannel, RtcPeer } from './webrtc';

export interface Attempt {
  readonly pc: RtcPeer;
  readonly started: number;
  channels: [RtcChannel, RtcChannel] | null;
  path: ChannelPath | null;
  pathId: number;
  opened: number;
  up: boolean;
  /** The fingerprint line of the SDP the peer signalled (what DTLS must have seen). */
  remoteFingerprint: string | null;
  timer: ReturnType<typeof setTimeout>;
  /** Remote candidates waiting for allowRemote, in arrival order. */
  candidates: Promise<void>;
  remoteCandidates: number;
  /**
   * Client: our candidates, held until the answer is set. A check that reached libjuice before the answer would
   * be paired with an address the answer's candidates later overwrite, so the selected pair would misname itself.
   */
  heldLocal: string[] | null;
  /** The peer's relayed candidates (`address:port`): a pair whose remote end is one of them goes through TURN. */
  peerRelayed: Set<string>;
  /** The selected pair's remote end (`address:port`) once up. */
  remoteEnd: string | null;
}

/** `address:port`, IPv6 in brackets. */
export const endpoint = (c: { address: string; port: number }) => (c.address.includes(':') ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`);

/**
 * The selected pair of an attempt that is up: its route and whether it goes through a TURN relay. A peer's relayed
 * address reached by a check before its candidate was signalled is typed "prflx" by the stack, so the relayed
 * candidates signalled so far count too (and DirectPath.notePeerRelayed those still to come).
 */
export function selectedPair(a: Attempt): { route: string; remoteEnd: string; relayed: boolean } | null {
  const pair = a.pc.getSelectedCandidatePair();
  if (!pair) return null;
  const remoteEnd = endpoint(pair.remote);
  const relayed = pair.local.type === 'relay' || pair.remote.type === 'relay' || a.peerRelayed.has(remoteEnd);
  return { route: `${endpoint(pair.local)} ↔ ${remoteEnd}`, remoteEnd, relayed };
}
