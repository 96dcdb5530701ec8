// Frame codec of protocol v1 (docs/PROTOCOL.md §Frames). A decrypted record is a sequence of frames:
//   type u8 | stream u32 | length u32 | payload[length]        (big endian)
// decodeRecord() validates every field once and hands back frames whose payloads are views into the record
// (no copies); anything malformed yields a ProtocolError value, never a thrown exception.

import {
  AddressType, ConnectResult, FRAME_HEADER_SIZE, FrameType, MAX_FRAME_PAYLOAD, MAX_RECORD_SIZE,
  RESERVED_FRAME_TYPES, type ConnectResultCode, type ResetCodeValue,
} from './constants';
import { encodeHost, formatIPv4, formatIPv6, isValidDomain, type Target } from './address';
import { ProtocolError } from './errors';
import { decodeDatagramFrame, datagramFrameSize, writeDatagramFrame, type DatagramFrame } from './datagram-codec';
import { malformed, messageBytes, readMessage } from './wire-bytes';
import { decodeSignalFrame, signalFrameSize, signalTextBytes, writeSignalPayload, type SignalFrame } from './signal-codec';

export type Frame =
  | { type: typeof FrameType.CONNECT; stream: number; window: number; target: Target }
  | { type: typeof FrameType.CONNECT_RESULT; stream: number; code: ConnectResultCode; window: number; message: string }
  | { type: typeof FrameType.DATA; stream: number; data: Uint8Array }
  | { type: typeof FrameType.WINDOW_UPDATE; stream: number; increment: number }
  | { type: typeof FrameType.FIN; stream: number }
  | { type: typeof FrameType.RST; stream: number; code: ResetCodeValue; message: string }
  | { type: typeof FrameType.PING; stream: 0; opaque: Uint8Array }
  | { type: typeof FrameType.PONG; stream: 0; opaque: Uint8Array }
  | { type: typeof FrameType.GOAWAY; stream: 0; code: ResetCodeValue; message: string }
  | { type: typeof FrameType.PATH_ACK; stream: 0; next: number }
  | SignalFrame
  | DatagramFrame;

/** A frame that was well delimited but invalid in a way that concerns only its stream (e.g. a bad CONNECT host). */
export interface InvalidFrame { type: typeof INVALID_FRAME; stream: number; frameType: number; error: ProtocolError }
/** Pseudo type for InvalidFrame; 0 is never a valid frame type on the wire. */
export const INVALID_FRAME = 0;

const PING_PAYLOAD = 8;
const PATH_ACK_PAYLOAD = 8;
/** Sequence numbers are JavaScript numbers: exact up to 2^53 (the record counter's own limit, §2.5). */
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

// Big-endian fields written and read byte by byte: no DataView per frame on the data path. Local copies (wire-bytes.ts
// has the same for the datagram codec): the frame walk is the record path's per-frame loop, kept self-contained.
function putU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}
function putU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}
const getU16 = (b: Uint8Array, off: number): number => (b[off] << 8) | b[off + 1];
const getU32 = (b: Uint8Array, off: number): number => ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;

/** Bytes the frame occupies on the wire (header included). */
export function encodedFrameSize(f: Frame): number {
  switch (f.type) {
    case FrameType.CONNECT: {
      const host = encodeHost(f.target.host);
      return FRAME_HEADER_SIZE + 7 + (host.type === AddressType.DOMAIN ? 1 : 0) + host.bytes.length;
    }
    case FrameType.CONNECT_RESULT: return FRAME_HEADER_SIZE + 5 + messageBytes(f.message).length;
    case FrameType.DATA: return FRAME_HEADER_SIZE + f.data.length;
    case FrameType.WINDOW_UPDATE: return FRAME_HEADER_SIZE + 4;
    case FrameType.FIN: return FRAME_HEADER_SIZE;
    case FrameType.RST: case FrameType.GOAWAY: return FRAME_HEADER_SIZE + 1 + messageBytes(f.message).length;
    case FrameType.PING: case FrameType.PONG: return FRAME_HEADER_SIZE + PING_PAYLOAD;
    case FrameType.PATH_ACK: return FRAME_HEADER_SIZE + PATH_ACK_PAYLOAD;
    case FrameType.SIGNAL: return signalFrameSize(f);
    default: return datagramFrameSize(f);
  }
}

function writeHeader(buf: Uint8Array, off: number, type: number, stream: number, len: number): number {
  buf[off] = type;
  putU32(buf, off + 1, stream);
  putU32(buf, off + 5, len);
  return off + FRAME_HEADER_SIZE;
}

/**
 * Writes `f` at `off` into `buf` (which must have encodedFrameSize(f) bytes free) and returns the new offset.
 * Throws ZksError only for caller bugs (an invalid target host), never for peer input.
 */
export function writeFrame(buf: Uint8Array, off: number, f: Frame): number {
  switch (f.type) {
    case FrameType.CONNECT: {
      const host = encodeHost(f.target.host);
      const isDomain = host.type === AddressType.DOMAIN;
      const len = 7 + (isDomain ? 1 : 0) + host.bytes.length;
      let p = writeHeader(buf, off, f.type, f.stream, len);
      putU32(buf, p, f.window);
      putU16(buf, p + 4, f.target.port);
      buf[p + 6] = host.type;
      p += 7;
      if (isDomain) buf[p++] = host.bytes.length;
      buf.set(host.bytes, p);
      return p + host.bytes.length;
    }
    case FrameType.CONNECT_RESULT: {
      const msg = messageBytes(f.message);
      const p = writeHeader(buf, off, f.type, f.stream, 5 + msg.length);
      buf[p] = f.code;
      putU32(buf, p + 1, f.window);
      buf.set(msg, p + 5);
      return p + 5 + msg.length;
    }
    case FrameType.DATA: {
      const p = writeHeader(buf, off, f.type, f.stream, f.data.length);
      buf.set(f.data, p);
      return p + f.data.length;
    }
    case FrameType.WINDOW_UPDATE: {
      const p = writeHeader(buf, off, f.type, f.stream, 4);
      putU32(buf, p, f.increment);
      return p + 4;
    }
    case FrameType.FIN:
      return writeHeader(buf, off, f.type, f.stream, 0);
    case FrameType.RST: case FrameType.GOAWAY: {
      const msg = messageBytes(f.message);
      const p = writeHeader(buf, off, f.type, f.stream, 1 + msg.length);
      buf[p] = f.code;
      buf.set(msg, p + 1);
      return p + 1 + msg.length;
    }
    case FrameType.PING: case FrameType.PONG: {
      const p = writeHeader(buf, off, f.type, 0, PING_PAYLOAD);
      buf.set(f.opaque.subarray(0, PING_PAYLOAD), p);
      return p + PING_PAYLOAD;
    }
    case FrameType.PATH_ACK: {
      const p = writeHeader(buf, off, f.type, 0, PATH_ACK_PAYLOAD);
      putU32(buf, p, Math.floor(f.next / 0x1_0000_0000));
      putU32(buf, p + 4, f.next >>> 0);
      return p + PATH_ACK_PAYLOAD;
    }
    case FrameType.SIGNAL: {
      const text = signalTextBytes(f.text);
      return writeSignalPayload(buf, writeHeader(buf, off, f.type, 0, 1 + text.length), f.kind, text);
    }
    default:
      return writeDatagramFrame(buf, off, f);
  }
}

/** Encodes frames into one fresh record (used by tests, vectors and low-rate control traffic). */
export function encodeFrames(frames: readonly Frame[]): Uint8Array {
  let size = 0;
  for (const f of frames) size += encodedFrameSize(f);
  const buf = new Uint8Array(size);
  let off = 0;
  for (const f of frames) off = writeFrame(buf, off, f);
  return buf;
}

function decodeTarget(p: Uint8Array): Target | ProtocolError {
  const port = getU16(p, 4);
  if (port === 0) return new ProtocolError('ZKS_ERR_BAD_ADDRESS', 'CONNECT to port 0', false);
  const atyp = p[6];
  const rest = p.subarray(7);
  if (atyp === AddressType.IPV4) {
    if (rest.length !== 4) return malformed(`CONNECT IPv4 address has ${rest.length} bytes, expected 4`);
    return { host: formatIPv4(rest), port };
  }
  if (atyp === AddressType.IPV6) {
    if (rest.length !== 16) return malformed(`CONNECT IPv6 address has ${rest.length} bytes, expected 16`);
    return { host: formatIPv6(rest), port };
  }
  if (atyp === AddressType.DOMAIN) {
    if (rest.length < 1 || rest[0] !== rest.length - 1 || rest[0] === 0) return malformed('CONNECT domain length mismatch');
    let name = '';
    for (let i = 1; i < rest.length; i++) name += String.fromCharCode(rest[i]);
    name = name.toLowerCase();
    if (!isValidDomain(name)) return new ProtocolError('ZKS_ERR_BAD_ADDRESS', 'CONNECT host is not a valid domain name', false);
    return { host: name, port };
  }
  return malformed(`CONNECT address type ${atyp} is unknown`);
}

function onStreamZero(type: number): ProtocolError {
  return malformed(`frame type ${type} on stream 0`);
}
function wrongLength(type: number, p: Uint8Array, n: number): ProtocolError {
  return malformed(`frame type ${type} has ${p.length} payload bytes, expected ${n}`);
}

function decodeOne(type: number, stream: number, p: Uint8Array): Frame | ProtocolError {
  switch (type) {
    case FrameType.DATA:
      return stream === 0 ? onStreamZero(type) : { type, stream, data: p };
    case FrameType.WINDOW_UPDATE: {
      if (p.length !== 4) return wrongLength(type, p, 4);
      const increment = getU32(p, 0);
      if (increment === 0) return malformed('WINDOW_UPDATE with zero increment');
      return { type, stream, increment };
    }
    case FrameType.CONNECT: {
      if (stream === 0) return onStreamZero(type);
      if (p.length < 8) return malformed('CONNECT payload too short');
      const target = decodeTarget(p);
      if (target instanceof ProtocolError) return target;
      return { type, stream, window: getU32(p, 0), target };
    }
    case FrameType.CONNECT_RESULT: {
      if (stream === 0) return onStreamZero(type);
      if (p.length < 5) return malformed('CONNECT_RESULT payload too short');
      const code = p[0];
      if (code > ConnectResult.TIMEOUT) return malformed(`CONNECT_RESULT code ${code} is unknown`);
      const message = readMessage(p, 5);
      if (message instanceof ProtocolError) return message;
      return { type, stream, code: code as ConnectResultCode, window: getU32(p, 1), message };
    }
    case FrameType.FIN:
      if (stream === 0) return onStreamZero(type);
      return p.length !== 0 ? wrongLength(type, p, 0) : { type, stream };
    case FrameType.RST: case FrameType.GOAWAY: {
      if (type === FrameType.RST && stream === 0) return onStreamZero(type);
      if (type === FrameType.GOAWAY && stream !== 0) return malformed('GOAWAY must use stream 0');
      if (p.length < 1) return malformed(`frame type ${type} payload too short`);
      const message = readMessage(p, 1);
      if (message instanceof ProtocolError) return message;
      return { type, stream, code: p[0] as ResetCodeValue, message } as Frame;
    }
    case FrameType.PING: case FrameType.PONG: {
      if (stream !== 0) return malformed(`${type === FrameType.PING ? 'PING' : 'PONG'} must use stream 0`);
      return p.length !== PING_PAYLOAD ? wrongLength(type, p, PING_PAYLOAD) : { type, stream: 0, opaque: p };
    }
    case FrameType.PATH_ACK: {
      if (stream !== 0) return malformed('PATH_ACK must use stream 0');
      if (p.length !== PATH_ACK_PAYLOAD) return wrongLength(type, p, PATH_ACK_PAYLOAD);
      const next = getU32(p, 0) * 0x1_0000_0000 + getU32(p, 4);
      if (next > MAX_SEQ) return malformed(`PATH_ACK sequence number ${next} exceeds 2^53 - 1`);
      return { type, stream: 0, next };
    }
    case FrameType.SIGNAL:
      return decodeSignalFrame(stream, p);
    case FrameType.CAPABILITIES: case FrameType.UDP_DATAGRAM: case FrameType.ICMP_ECHO:
      return decodeDatagramFrame(type, stream, p);
  }
  if (RESERVED_FRAME_TYPES.has(type)) {
    return new ProtocolError('ZKS_ERR_UNSUPPORTED_FRAME', `frame type 0x${type.toString(16)} is reserved and not supported by protocol v1`);
  }
  return new ProtocolError('ZKS_ERR_UNKNOWN_FRAME', `frame type 0x${type.toString(16)} is unknown`);
}

export type DecodedFrame = Frame | InvalidFrame;
export type DecodeResult =
  | { ok: true; frames: DecodedFrame[] }
  | { ok: false; error: ProtocolError; frames: DecodedFrame[] };

/**
 * Splits a decrypted record into frames. On the first malformed frame it stops and returns the error together
 * with the frames before it. Errors with `fatal === false` concern one stream only (the caller resets it).
 */
export function decodeRecord(record: Uint8Array): DecodeResult {
  const frames: DecodedFrame[] = [];
  const error = forEachFrame(record, (f) => {
    frames.push(f);
    return true;
  });
  return error ? { ok: false, frames, error } : { ok: true, frames };
}

/**
 * decodeRecord one frame at a time: `visit` gets each frame in order (and may stop the walk by returning false);
 * the result is the first fatal error, or null. Nothing is kept per frame, so a record packed with 60 000 tiny
 * frames (a PING flood) costs no more memory than one with a few.
 */
export function forEachFrame(record: Uint8Array, visit: (frame: DecodedFrame) => boolean): ProtocolError | null {
  if (record.length > MAX_RECORD_SIZE) {
    return new ProtocolError('ZKS_ERR_FRAME_TOO_LARGE', `record of ${record.length} bytes exceeds ${MAX_RECORD_SIZE}`);
  }
  let off = 0;
  while (off < record.length) {
    if (record.length - off < FRAME_HEADER_SIZE) {
      return malformed(`truncated frame header (${record.length - off} bytes)`);
    }
    const type = record[off];
    const stream = getU32(record, off + 1);
    const len = getU32(record, off + 5);
    if (len > MAX_FRAME_PAYLOAD) {
      return new ProtocolError('ZKS_ERR_FRAME_TOO_LARGE', `frame payload of ${len} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
    }
    const start = off + FRAME_HEADER_SIZE;
    if (start + len > record.length) {
      return malformed(`frame claims ${len} payload bytes, ${record.length - start} present`);
    }
    const frame = decodeOne(type, stream, record.subarray(start, start + len));
    if (frame instanceof ProtocolError && frame.fatal) return frame;
    // A non-fatal error concerns one stream only: hand it to the caller, which answers on that stream.
    const more = visit(frame instanceof ProtocolError ? { type: INVALID_FRAME, stream, frameType: type, error: frame } : frame);
    if (!more) return null;
    off = start + len;
  }
  return null;
}
