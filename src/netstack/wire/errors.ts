// Errors of the wire layer: values handed back by `checked()` and `parse()`, never thrown for packet input.
// WireError is deliberately not an Error subclass: a flood of junk packets must not pay for a stack trace each, and
// ZksError's `code` is a closed union in src/protocol/errors.ts that does not (yet) list the packet codes below.
// Callers branch on `code` (stable); `message` is for logs only.

export type WireErrorCode =
  /** Lengths or fields contradict each other (truncated header, IHL < 5, bad option length, …). */
  | 'ZKS_ERR_MALFORMED_PACKET'
  /** Well-formed but carries a checksum that does not verify. */
  | 'ZKS_ERR_BAD_CHECKSUM'
  /** Well-formed but uses a feature this stack does not handle (IPv6 jumbogram, too many extension headers, …). */
  | 'ZKS_ERR_UNSUPPORTED_PACKET';

export class WireError {
  readonly code: WireErrorCode;
  readonly message: string;
  constructor(code: WireErrorCode, message: string) {
    this.code = code;
    this.message = message;
  }
  toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** What every `checked()` / `parse()` returns: the value, or a WireError. Test with `instanceof WireError`. */
export type WireResult<T> = T | WireError;

export function isWireError(x: unknown): x is WireError {
  return x instanceof WireError;
}

export function malformed(message: string): WireError {
  return new WireError('ZKS_ERR_MALFORMED_PACKET', message);
}

export function badChecksum(message: string): WireError {
  return new WireError('ZKS_ERR_BAD_CHECKSUM', message);
}

export function unsupported(message: string): WireError {
  return new WireError('ZKS_ERR_UNSUPPORTED_PACKET', message);
}
