// Big-endian field helpers and the UTF-8 message field shared by the frame codecs (frames.ts, datagram-codec.ts).
// Written byte by byte: no DataView per frame on the data path.

import { AddressType } from './constants';
import { encodeHost, formatIPv4, formatIPv6, isValidDomain, type EncodedHost } from './address';
import { ProtocolError } from './errors';
import { truncateUtf8 } from './utf8';

export const MAX_MESSAGE_BYTES = 512;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function putU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}
export function putU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}
export const getU16 = (b: Uint8Array, off: number): number => (b[off] << 8) | b[off + 1];
export const getU32 = (b: Uint8Array, off: number): number => ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;

export const malformed = (msg: string) => new ProtocolError('ZKS_ERR_MALFORMED_FRAME', msg);

/** A message field's bytes: cut before a character, never inside one (the peer treats invalid UTF-8 as fatal). */
export function messageBytes(message: string): Uint8Array {
  return utf8.encode(truncateUtf8(message, MAX_MESSAGE_BYTES));
}

export function readMessage(payload: Uint8Array, from: number): string | ProtocolError {
  const bytes = payload.subarray(from);
  if (bytes.length > MAX_MESSAGE_BYTES) return malformed(`message longer than ${MAX_MESSAGE_BYTES} bytes`);
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return malformed('message is not valid UTF-8');
  }
}

/** Bytes of an address field: atyp u8 | 4 or 16 address bytes, or len u8 + name (as in CONNECT, RFC 1928 §5). */
export function addressSize(host: EncodedHost): number {
  return 1 + (host.type === AddressType.DOMAIN ? 1 : 0) + host.bytes.length;
}

export function writeAddress(buf: Uint8Array, off: number, host: EncodedHost): number {
  buf[off++] = host.type;
  if (host.type === AddressType.DOMAIN) buf[off++] = host.bytes.length;
  buf.set(host.bytes, off);
  return off + host.bytes.length;
}

/**
 * Reads an address field at `off`; returns the host text and where the field ends. An unknown type or a length
 * running past the payload is malformed (fatal); an invalid name concerns only its flow (not fatal).
 */
export function readAddress(p: Uint8Array, off: number, what: string): { host: string; end: number } | ProtocolError {
  if (off >= p.length) return malformed(`${what}: address missing`);
  const atyp = p[off];
  if (atyp === AddressType.IPV4) {
    if (off + 5 > p.length) return malformed(`${what}: truncated IPv4 address`);
    return { host: formatIPv4(p.subarray(off + 1, off + 5)), end: off + 5 };
  }
  if (atyp === AddressType.IPV6) {
    if (off + 17 > p.length) return malformed(`${what}: truncated IPv6 address`);
    return { host: formatIPv6(p.subarray(off + 1, off + 17)), end: off + 17 };
  }
  if (atyp === AddressType.DOMAIN) {
    const len = p[off + 1];
    if (off + 2 > p.length || len === 0 || off + 2 + len > p.length) return malformed(`${what}: domain length mismatch`);
    let name = '';
    for (let i = 0; i < len; i++) name += String.fromCharCode(p[off + 2 + i]);
    name = name.toLowerCase();
    if (!isValidDomain(name)) return new ProtocolError('ZKS_ERR_BAD_ADDRESS', `${what}: host is not a valid domain name`, false);
    return { host: name, end: off + 2 + len };
  }
  return malformed(`${what}: address type ${atyp} is unknown`);
}

export { encodeHost };
