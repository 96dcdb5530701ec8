// Error types of the local proxy front. Callers branch on `code` (ZKS_ERR_SOCKS, ZKS_ERR_HTTP_PROXY, ZKS_ERR_UDP)
// and on the field that says what goes back on the wire: Socks5Error.replyCode (RFC 1928 §6 / RFC 1929 §2 byte),
// HttpProxyError.status (RFC 9110 status), SocksUdpError.reason (the drop counter). Decoders return these as
// values; nothing here is thrown at a socket.

import { ZksError } from '../errors/zks-error';

/** Which SOCKS5 message was being decoded; decides how `replyCode` is sent back (see Socks5Error). */
export type Socks5Phase = 'greeting' | 'auth' | 'request';

/**
 * A SOCKS5 client sent something we refuse. `replyCode` is the byte to answer with before closing:
 * greeting → METHOD (0xFF "no acceptable methods"), auth → STATUS (0x01 failure), request → REP (0x01..0x08).
 */
export class Socks5Error extends ZksError {
  readonly replyCode: number;
  readonly phase: Socks5Phase;
  constructor(replyCode: number, message: string, phase: Socks5Phase = 'request') {
    super('ZKS_ERR_SOCKS', message);
    this.name = 'Socks5Error';
    this.replyCode = replyCode;
    this.phase = phase;
  }
}

/** An HTTP proxy client sent something we refuse; `status` is the response code to send before closing. */
export class HttpProxyError extends ZksError {
  readonly status: number;
  constructor(status: number, message: string) {
    super('ZKS_ERR_HTTP_PROXY', message);
    this.name = 'HttpProxyError';
    this.status = status;
  }
}

/** Why a SOCKS5 UDP datagram was dropped (RFC 1928 §7); stable, counted per reason by the association. */
export const SocksUdpDrop = {
  /** Shorter than the header its ATYP announces. */
  TRUNCATED: 'truncated',
  /** RSV is not 0x0000. */
  RESERVED: 'reserved',
  /** FRAG ≠ 0: we do not reassemble (RFC 1928 §7 lets a server drop fragments). */
  FRAGMENTED: 'fragmented',
  /** ATYP other than IPv4 (1), domain (3) or IPv6 (4). */
  ADDRESS_TYPE: 'address-type',
  /** An empty or invalid domain name, or port 0. */
  BAD_TARGET: 'bad-target',
  /** More payload than a datagram frame or a UDP datagram can carry. */
  OVERSIZE: 'oversize',
} as const;
export type SocksUdpDropReason = (typeof SocksUdpDrop)[keyof typeof SocksUdpDrop];

/** A SOCKS5 UDP datagram we cannot relay; `reason` says which counter it goes to. Returned, never thrown. */
export class SocksUdpError extends ZksError {
  readonly reason: SocksUdpDropReason;
  constructor(reason: SocksUdpDropReason, message: string) {
    super('ZKS_ERR_UDP', message);
    this.name = 'SocksUdpError';
    this.reason = reason;
  }
}
