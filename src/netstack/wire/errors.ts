// Errors of the wire layer: values handed back by `checked()` and `parse()`, never thrown for packet input.
// `code` is always ZKS_ERR_MALFORMED_PACKET (src/errors/zks-error.ts, docs/PROTOCOL.md: the packet is dropped);
// `reason` says why, for counters. WireError is deliberately not an Error: constructing a ZksError captures a stack
// trace (measured ≈ 3.5 µs vs ≈ 35 ns for this value), which a stream of bad packets must not pay per packet.
// `toZksError()` converts one when it has to leave the netstack (logs, control socket).

import { ZksError, type ZksErrorCode } from '../../errors/zks-error';

export type WireErrorReason =
  /** Lengths or fields contradict each other (truncated header, IHL < 5, bad option length, …). */
  | 'malformed'
  /** Well-formed but carries a checksum that does not verify. */
  | 'bad-checksum'
  /** Well-formed but uses a feature this stack does not handle (IPv6 jumbogram, too many extension headers, …). */
  | 'unsupported';

const CODE = 'ZKS_ERR_MALFORMED_PACKET' satisfies ZksErrorCode;

export class WireError {
  readonly code: typeof CODE = CODE;
  readonly reason: WireErrorReason;
  readonly message: string;
  constructor(reason: WireErrorReason, message: string) {
    this.reason = reason;
    this.message = message;
  }
  toString(): string {
    return `${this.code} (${this.reason}): ${this.message}`;
  }
  toZksError(): ZksError {
    return new ZksError(this.code, `${this.reason}: ${this.message}`);
  }
}

/** What every `checked()` returns: the value, or a WireError. Test with `instanceof WireError`. */
export type WireResult<T> = T | WireError;

export function isWireError(x: unknown): x is WireError {
  return x instanceof WireError;
}

export function malformed(message: string): WireError {
  return new WireError('malformed', message);
}

export function badChecksum(message: string): WireError {
  return new WireError('bad-checksum', message);
}

export function unsupported(message: string): WireError {
  return new WireError('unsupported', message);
}
