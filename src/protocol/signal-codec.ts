// SIGNAL (0x0c, docs/PROTOCOL.md §3.6): WebRTC signalling for the direct path between a relay-mode client and its
// exit peer, carried end to end inside the session (the room sees only its size). One frame per message: an
// offer or answer (an SDP), one ICE candidate, or the end of an attempt. The text is parsed by the direct path
// (src/direct/), never here: this layer only delimits it and checks it is UTF-8 of bounded size.

import { FRAME_HEADER_SIZE, FrameType } from './constants';
import { ProtocolError } from './errors';
import { malformed } from './wire-bytes';

export const SignalKind = {
  /** The client's SDP offer (starts a direct attempt; a new offer replaces the attempt in progress). */
  OFFER: 1,
  /** The exit peer's SDP answer. */
  ANSWER: 2,
  /** One ICE candidate: `mid`, a line feed, the candidate line (RFC 8839 §5.1, without `a=`). */
  CANDIDATE: 3,
  /** The sender ended its direct attempt (the text says why); the receiver ends its side too. */
  CLOSE: 4,
  /** The client asks the exit peer to listen for a direct TCP connection (empty text; behind Capability.DIRECT_TCP). */
  TCP_OFFER: 5,
  /** The exit peer's listening addresses and the nonce the client's PATH_HELLO must cover (§3.7). */
  TCP_ANSWER: 6,
  /** The sender ended its direct TCP attempt or path (the text says why); the receiver ends its side too. */
  TCP_CLOSE: 7,
  /** An HTTP tunnel's agent claims its id (JSON, §12.2): the first frame it sends after CAPABILITIES. */
  TUNNEL_CLAIM: 8,
  /** The tunnel accepted the claim (JSON with the settings it applies); a refusal closes the WebSocket instead. */
  TUNNEL_READY: 9,
} as const;
export type SignalKindValue = (typeof SignalKind)[keyof typeof SignalKind];

/** Largest SIGNAL text in UTF-8 bytes: a data-channel-only SDP is well under 2 KiB, 16 KiB leaves room. */
export const MAX_SIGNAL_TEXT = 16 * 1024;

export interface SignalFrame {
  type: typeof FrameType.SIGNAL;
  stream: 0;
  kind: SignalKindValue;
  text: string;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text's bytes; a text over the limit is a caller bug (the direct path never makes one), not cut. */
export function signalTextBytes(text: string): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length > MAX_SIGNAL_TEXT) throw new ProtocolError('ZKS_ERR_MALFORMED_FRAME', `SIGNAL text of ${bytes.length} bytes exceeds ${MAX_SIGNAL_TEXT}`);
  return bytes;
}

export function signalFrameSize(f: SignalFrame): number {
  return FRAME_HEADER_SIZE + 1 + utf8.encode(f.text).length;
}

/** Writes the payload (kind, text) at `p`, just after the header; returns the end. */
export function writeSignalPayload(buf: Uint8Array, p: number, kind: number, text: Uint8Array): number {
  buf[p] = kind;
  buf.set(text, p + 1);
  return p + 1 + text.length;
}

export function decodeSignalFrame(stream: number, p: Uint8Array): SignalFrame | ProtocolError {
  if (stream !== 0) return malformed('SIGNAL must use stream 0');
  if (p.length < 1) return malformed('SIGNAL payload too short');
  const kind = p[0];
  if (kind < SignalKind.OFFER || kind > SignalKind.TUNNEL_READY) return malformed(`SIGNAL kind ${kind} is unknown`);
  if (p.length - 1 > MAX_SIGNAL_TEXT) return malformed(`SIGNAL text longer than ${MAX_SIGNAL_TEXT} bytes`);
  let text: string;
  try {
    text = utf8Strict.decode(p.subarray(1));
  } catch {
    return malformed('SIGNAL text is not valid UTF-8');
  }
  return { type: FrameType.SIGNAL, stream: 0, kind: kind as SignalKindValue, text };
}
