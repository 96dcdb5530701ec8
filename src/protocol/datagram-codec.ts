// Codecs of the optional frames (docs/PROTOCOL.md §3.3–3.5): CAPABILITIES (0x0A), UDP_DATAGRAM (0x10) and
// ICMP_ECHO (0x12). frames.ts dispatches to these; like it, decoders return ProtocolError values, never throw.
//
//   CAPABILITIES   caps u32 | ignored…                                            (stream 0)
//   UDP_DATAGRAM   flags u8 | [ADDRESS: port u16 | address] | [CLOSE: code u8 | message] | data   (stream = flow id)
//   ICMP_ECHO      kind u8 | seq u16 | REQUEST: flags u8 | tcpPort u16 | timeoutMs u16 | address | data
//                                     REPLY:   method u8 | tcpPort u16 | ttl u8 | pad u8 | address | data
//                                     FAILED:  code u8 | message                     (stream = echo id)

import { FRAME_HEADER_SIZE, FrameType } from './constants';
import { MAX_DATAGRAM_PAYLOAD, MAX_ECHO_PAYLOAD, type EchoFailureCode } from './datagram-types';
import type { Target } from './address';
import { ProtocolError } from './errors';
import {
  addressSize, encodeHost, getU16, getU32, malformed, messageBytes, putU16, putU32, readAddress, readMessage, writeAddress,
} from './wire-bytes';

export const DatagramFlag = { ADDRESS: 0x01, CLOSE: 0x02 } as const;
export const EchoKind = { REQUEST: 0, REPLY: 1, FAILED: 2 } as const;
const ECHO_TCP_ONLY = 0x01;
const EchoMethodId = { icmp: 1, tcp: 2 } as const;

export type EchoMessage =
  | { kind: typeof EchoKind.REQUEST; seq: number; tcpOnly: boolean; tcpPort: number; timeoutMs: number; host: string; data: Uint8Array }
  | { kind: typeof EchoKind.REPLY; seq: number; method: 'icmp' | 'tcp'; tcpPort: number; ttl: number; address: string; data: Uint8Array }
  | { kind: typeof EchoKind.FAILED; seq: number; code: EchoFailureCode; message: string };

export type DatagramFrame =
  | { type: typeof FrameType.CAPABILITIES; stream: 0; caps: number }
  /** `address`: the destination (towards the exit) or the source (back), present when it changed; `close` ends the flow. */
  | { type: typeof FrameType.UDP_DATAGRAM; stream: number; address: Target | null; data: Uint8Array; close?: { code: number; message: string } }
  | { type: typeof FrameType.ICMP_ECHO; stream: number; echo: EchoMessage };

export function datagramFrameSize(f: DatagramFrame): number {
  switch (f.type) {
    case FrameType.CAPABILITIES: return FRAME_HEADER_SIZE + 4;
    case FrameType.UDP_DATAGRAM: {
      let n = FRAME_HEADER_SIZE + 1;
      if (f.close) return n + 1 + messageBytes(f.close.message).length;
      if (f.address) n += 2 + addressSize(encodeHost(f.address.host));
      return n + f.data.length;
    }
    case FrameType.ICMP_ECHO: {
      const e = f.echo;
      if (e.kind === EchoKind.FAILED) return FRAME_HEADER_SIZE + 4 + messageBytes(e.message).length;
      const host = encodeHost(e.kind === EchoKind.REQUEST ? e.host : e.address);
      return FRAME_HEADER_SIZE + 3 + 5 + addressSize(host) + e.data.length;
    }
  }
}

function header(buf: Uint8Array, off: number, type: number, stream: number, len: number): number {
  buf[off] = type;
  putU32(buf, off + 1, stream);
  putU32(buf, off + 5, len);
  return off + FRAME_HEADER_SIZE;
}

export function writeDatagramFrame(buf: Uint8Array, off: number, f: DatagramFrame): number {
  const len = datagramFrameSize(f) - FRAME_HEADER_SIZE;
  let p = header(buf, off, f.type, f.stream, len);
  switch (f.type) {
    case FrameType.CAPABILITIES:
      putU32(buf, p, f.caps);
      return p + 4;
    case FrameType.UDP_DATAGRAM: {
      if (f.close) {
        const msg = messageBytes(f.close.message);
        buf[p] = DatagramFlag.CLOSE;
        buf[p + 1] = f.close.code;
        buf.set(msg, p + 2);
        return p + 2 + msg.length;
      }
      buf[p++] = f.address ? DatagramFlag.ADDRESS : 0;
      if (f.address) {
        putU16(buf, p, f.address.port);
        p = writeAddress(buf, p + 2, encodeHost(f.address.host));
      }
      buf.set(f.data, p);
      return p + f.data.length;
    }
    case FrameType.ICMP_ECHO: {
      const e = f.echo;
      buf[p] = e.kind;
      putU16(buf, p + 1, e.seq);
      p += 3;
      if (e.kind === EchoKind.FAILED) {
        const msg = messageBytes(e.message);
        buf[p] = e.code;
        buf.set(msg, p + 1);
        return p + 1 + msg.length;
      }
      if (e.kind === EchoKind.REQUEST) {
        buf[p] = e.tcpOnly ? ECHO_TCP_ONLY : 0;
        putU16(buf, p + 1, e.tcpPort);
        putU16(buf, p + 3, e.timeoutMs);
        p = writeAddress(buf, p + 5, encodeHost(e.host));
      } else {
        buf[p] = EchoMethodId[e.method];
        putU16(buf, p + 1, e.tcpPort);
        buf[p + 3] = e.ttl;
        buf[p + 4] = 0; // pad: REQUEST and REPLY share the 5-byte head before the address
        p = writeAddress(buf, p + 5, encodeHost(e.address));
      }
      buf.set(e.data, p);
      return p + e.data.length;
    }
  }
}

/** Decodes the payload of a CAPABILITIES, UDP_DATAGRAM or ICMP_ECHO frame. */
export function decodeDatagramFrame(type: number, stream: number, p: Uint8Array): DatagramFrame | ProtocolError {
  if (type === FrameType.CAPABILITIES) {
    if (stream !== 0) return malformed('CAPABILITIES must use stream 0');
    if (p.length < 4) return malformed('CAPABILITIES payload too short');
    return { type, stream: 0, caps: getU32(p, 0) }; // later fields are ignored: newer peers may append some
  }
  if (stream === 0) return malformed(`frame type ${type} on stream 0`);
  return type === FrameType.UDP_DATAGRAM ? decodeDatagram(stream, p) : decodeEcho(stream, p);
}

/** A flow-local problem: the mux drops the datagram (or answers that echo), the session goes on. */
const flowError = (msg: string) => new ProtocolError('ZKS_ERR_UDP', msg, false);
const echoError = (msg: string) => new ProtocolError('ZKS_ERR_MALFORMED_FRAME', msg, false);

function decodeDatagram(stream: number, p: Uint8Array): DatagramFrame | ProtocolError {
  const type = FrameType.UDP_DATAGRAM;
  if (p.length < 1) return malformed('UDP_DATAGRAM payload too short');
  const flags = p[0];
  if (flags & ~(DatagramFlag.ADDRESS | DatagramFlag.CLOSE)) return malformed(`UDP_DATAGRAM flags 0x${flags.toString(16)} are unknown`);
  if (flags & DatagramFlag.CLOSE) {
    if (flags & DatagramFlag.ADDRESS) return malformed('UDP_DATAGRAM CLOSE carries no address');
    if (p.length < 2) return malformed('UDP_DATAGRAM CLOSE without a code');
    const message = readMessage(p, 2);
    if (message instanceof ProtocolError) return message;
    return { type, stream, address: null, data: p.subarray(p.length), close: { code: p[1], message } };
  }
  let off = 1;
  let address: Target | null = null;
  if (flags & DatagramFlag.ADDRESS) {
    if (p.length < 4) return malformed('UDP_DATAGRAM address truncated');
    const port = getU16(p, 1);
    const a = readAddress(p, 3, 'UDP_DATAGRAM');
    if (a instanceof ProtocolError) return a;
    if (port === 0) return flowError('UDP_DATAGRAM to port 0');
    address = { host: a.host, port };
    off = a.end;
  }
  const data = p.subarray(off);
  if (data.length > MAX_DATAGRAM_PAYLOAD) return flowError(`UDP datagram of ${data.length} bytes exceeds ${MAX_DATAGRAM_PAYLOAD}`);
  return { type, stream, address, data };
}

function decodeEcho(stream: number, p: Uint8Array): DatagramFrame | ProtocolError {
  const type = FrameType.ICMP_ECHO;
  if (p.length < 4) return malformed('ICMP_ECHO payload too short');
  const kind = p[0];
  const seq = getU16(p, 1);
  if (kind === EchoKind.FAILED) {
    const message = readMessage(p, 4);
    if (message instanceof ProtocolError) return message;
    return { type, stream, echo: { kind, seq, code: p[3] as EchoFailureCode, message } };
  }
  if (kind !== EchoKind.REQUEST && kind !== EchoKind.REPLY) return malformed(`ICMP_ECHO kind ${kind} is unknown`);
  if (p.length < 9) return malformed('ICMP_ECHO payload too short');
  const a = readAddress(p, 8, 'ICMP_ECHO');
  if (a instanceof ProtocolError) return a;
  const data = p.subarray(a.end);
  if (data.length > MAX_ECHO_PAYLOAD) return echoError(`ICMP_ECHO payload of ${data.length} bytes exceeds ${MAX_ECHO_PAYLOAD}`);
  const tcpPort = getU16(p, 4);
  if (kind === EchoKind.REQUEST) {
    if (p[3] & ~ECHO_TCP_ONLY) return malformed(`ICMP_ECHO flags 0x${p[3].toString(16)} are unknown`);
    const timeoutMs = getU16(p, 6);
    if (timeoutMs === 0) return echoError('ICMP_ECHO with a zero timeout');
    return { type, stream, echo: { kind, seq, tcpOnly: (p[3] & ECHO_TCP_ONLY) !== 0, tcpPort, timeoutMs, host: a.host, data } };
  }
  const method = p[3] === EchoMethodId.icmp ? 'icmp' : p[3] === EchoMethodId.tcp ? 'tcp' : null;
  if (!method) return malformed(`ICMP_ECHO reply method ${p[3]} is unknown`);
  return { type, stream, echo: { kind, seq, method, tcpPort, ttl: p[6], address: a.host, data } };
}
