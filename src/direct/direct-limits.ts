// Limits and the status shape both direct transports share (PROTOCOL.md §3.6, §3.7).

import { MAX_RECORD_SIZE } from '../protocol/constants';

/** The exit answers at most one offer per session and transport this often: a client cannot make it churn. */
export const MIN_OFFER_INTERVAL_MS = 2_000;
/** Remote candidates taken per attempt; more are ignored (a real peer sends a handful). */
export const MAX_REMOTE_CANDIDATES = 32;
/** Largest message both sides accept on a direct path: the largest sequenced record with its header and tag. */
export const MAX_DIRECT_MESSAGE = MAX_RECORD_SIZE + 4096;

export type DirectState = 'off' | 'connecting' | 'direct' | 'turn';

export interface DirectStatus {
  /** Where new records go: 'off' and 'connecting' mean the room. */
  state: DirectState;
  /** Round trip of the direct path's heartbeat, ms (-1: none yet or not up). */
  rttMs: number;
  /** While up: "tcp local ↔ remote" for the TCP path, the selected candidate pair for WebRTC. */
  route: string | null;
  attempts: number;
  failures: number;
  lastError: string | null;
}
