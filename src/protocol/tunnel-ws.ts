// WebSocket messages through an HTTP tunnel (docs/PROTOCOL.md §12.5): after a 101 head, each direction of the
// request's stream carries `type u8 || length u32 || payload` per message — 1 text (UTF-8), 2 binary, 8 close
// (u16 code || reason, both optional, as in RFC 6455 §5.5.1). Fragmentation, pings and masking stay with each
// hop's own WebSocket; only whole messages cross the tunnel.

import { ProtocolError } from './errors';
import { truncateUtf8 } from './utf8';
import { getU32, putU32 } from './wire-bytes';

export const WsMessageType = { TEXT: 1, BINARY: 2, CLOSE: 8 } as const;
export type WsMessageTypeValue = (typeof WsMessageType)[keyof typeof WsMessageType];

/** Cloudflare accepts WebSocket messages up to 32 MiB; the tunnel carries no larger one. */
export const MAX_WS_MESSAGE = 32 * 1024 * 1024;
const HEADER = 5;

export interface WsMessage {
  type: WsMessageTypeValue;
  payload: Uint8Array;
}

export function encodeWsMessage(type: WsMessageTypeValue, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_WS_MESSAGE) throw new ProtocolError('ZKS_ERR_HTTP_HEAD', `WebSocket message of ${payload.length} bytes exceeds ${MAX_WS_MESSAGE}`, false);
  const out = new Uint8Array(HEADER + payload.length);
  out[0] = type;
  putU32(out, 1, payload.length);
  out.set(payload, HEADER);
  return out;
}

/** The close message's payload: code (0: none) and a reason cut to fit a control frame (123 bytes). */
export function encodeWsClose(code: number, reason: string): Uint8Array {
  if (!code) return encodeWsMessage(WsMessageType.CLOSE, new Uint8Array(0));
  const text = new TextEncoder().encode(truncateUtf8(reason, 123)); // a close frame's reason, cut between characters
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 255;
  payload.set(text, 2);
  return encodeWsMessage(WsMessageType.CLOSE, payload);
}

export function decodeWsClose(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: '' };
  return { code: (payload[0] << 8) | payload[1], reason: new TextDecoder().decode(payload.subarray(2)) };
}

/** Whole messages from a byte stream, however it is split; a ProtocolError ends that stream only. */
export class WsMessageReader {
  private parts: Uint8Array[] = [];
  private have = 0;

  push(chunk: Uint8Array): WsMessage[] | ProtocolError {
    this.parts.push(chunk);
    this.have += chunk.length;
    const out: WsMessage[] = [];
    while (this.have >= HEADER) {
      const head = this.peek(HEADER);
      const type = head[0];
      if (type !== WsMessageType.TEXT && type !== WsMessageType.BINARY && type !== WsMessageType.CLOSE) {
        return new ProtocolError('ZKS_ERR_HTTP_HEAD', `WebSocket message type ${type} is unknown`, false);
      }
      const length = getU32(head, 1);
      if (length > MAX_WS_MESSAGE) return new ProtocolError('ZKS_ERR_HTTP_HEAD', `WebSocket message of ${length} bytes exceeds ${MAX_WS_MESSAGE}`, false);
      if (this.have < HEADER + length) break;
      out.push({ type: type as WsMessageTypeValue, payload: this.take(HEADER + length).subarray(HEADER) });
    }
    return out;
  }

  /** The first n buffered bytes (n ≤ have), copied only when they span parts. */
  private peek(n: number): Uint8Array {
    if (this.parts[0].length >= n) return this.parts[0];
    const out = new Uint8Array(n);
    let p = 0;
    for (const part of this.parts) {
      const k = Math.min(part.length, n - p);
      out.set(part.subarray(0, k), p);
      p += k;
      if (p === n) break;
    }
    return out;
  }

  /** Removes and returns the first n buffered bytes (each byte is copied at most once per message). */
  private take(n: number): Uint8Array {
    this.have -= n;
    const first = this.parts[0];
    if (first.length >= n) {
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let p = 0;
    while (p < n) {
      const part = this.parts[0];
      const k = Math.min(part.length, n - p);
      out.set(part.subarray(0, k), p);
      p += k;
      if (k === part.length) this.parts.shift();
      else this.parts[0] = part.subarray(k);
    }
    return out;
  }
}
