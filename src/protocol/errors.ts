// Errors of the wire protocol. Decoders return these instead of throwing across a stream boundary.

import { ZksError, type ZksErrorCode } from '../errors/zks-error';

/** A violation of the wire protocol. `fatal` errors end the whole WebSocket session; others only one stream. */
export class ProtocolError extends ZksError {
  readonly fatal: boolean;
  constructor(code: ZksErrorCode, message: string, fatal = true) {
    super(code, message);
    this.name = 'ProtocolError';
    this.fatal = fatal;
  }
}
