// The receiving half of a WebSocket client (RFC 6455 §5): frames from the server, fed as the bytes arrive, in
// chunks that may split a frame anywhere. Pure: no I/O, no clock. Each message is delivered in a buffer of its
// own, which the consumer may keep and overwrite (the link opens records in place): payload bytes are copied
// from the chunk into it as they arrive, and nothing of a chunk is kept, so a chunk may be a reused buffer.
// A server frame that breaks the protocol ends the reader with the close code RFC 6455 §7.4.1 names for it.

import { isUtf8 } from 'node:buffer';

/** RFC 6455 §7.4.1 close codes this reader fails with. */
export const WsCloseCode = {
  NORMAL: 1000,
  PROTOCOL_ERROR: 1002,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  MESSAGE_TOO_BIG: 1009,
} as const;

export class WsProtocolError extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'WsProtocolError';
  }
}

export interface FrameSink {
  /** A complete message; `data` is the sink's to keep (never a view of a chunk). */
  message(data: Buffer, binary: boolean): void;
  ping(payload: Buffer): void;
  pong(payload: Buffer): void;
  /** The server's close frame: `code` 1005 when it carried none. */
  close(code: number, reason: string): void;
}

const enum Op {
  CONTINUATION = 0x0,
  TEXT = 0x1,
  BINARY = 0x2,
  CLOSE = 0x8,
  PING = 0x9,
  PONG = 0xa,
}

const MAX_CONTROL_PAYLOAD = 125;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A code a peer may send in a close frame (RFC 6455 §7.4.1-2; 1004-1006, 1015 are never sent). */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

export class WsFrameReader {
  /** Header bytes of the frame being read (2 to 10: servers do not mask, §5.1). */
  private readonly header = new Uint8Array(10);
  private headerHave = 0;
  private headerNeed = 2;
  private inPayload = false;
  private fin = false;
  private opcode = 0;
  /** Payload bytes of the current frame not read yet. */
  private remaining = 0;
  /** The data message being assembled (its first frame may have been fragmented), and its bytes so far. */
  private message: Buffer | null = null;
  private messageUsed = 0;
  private messageBinary = false;
  private inMessage = false;
  /** The current control frame's payload (at most 125 bytes). */
  private control: Buffer | null = null;
  private controlUsed = 0;
  private failure: WsProtocolError | null = null;
  /** A close frame was read: whatever follows it is ignored (RFC 6455 §5.5.1). */
  private closed = false;

  constructor(
    private readonly maxPayload: number,
    private readonly sink: FrameSink,
  ) {}

  /**
   * Feeds bytes as read; nothing of `chunk` is kept after the call. Throws WsProtocolError on the first frame that
   * breaks the protocol (and on every later call: the stream cannot be resynchronised). Bytes after a close frame
   * are ignored.
   */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (this.closed) return;
    try {
      this.consume(chunk);
    } catch (err) {
      if (err instanceof WsProtocolError) this.failure = err;
      throw err;
    }
  }

  private consume(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length && !this.closed) {
      if (!this.inPayload) {
        const take = Math.min(this.headerNeed - this.headerHave, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerHave);
        this.headerHave += take;
        at += take;
        if (this.headerHave < this.headerNeed) return;
        if (this.headerNeed === 2) {
          this.headerNeed = this.headerSize();
          if (this.headerHave < this.headerNeed) continue;
        }
        this.startFrame();
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      const part = chunk.subarray(at, at + take);
      if (this.opcode >= Op.CLOSE) {
        this.control!.set(part, this.controlUsed);
        this.controlUsed += take;
      } else {
        this.message!.set(part, this.messageUsed);
        this.messageUsed += take;
      }
      at += take;
      this.remaining -= take;
      if (this.remaining === 0) this.endFrame();
    }
  }

  /** Total header size, from its first two bytes (which checks them). */
  private headerSize(): number {
    const b0 = this.header[0]!;
    const b1 = this.header[1]!;
    if (b0 & 0x70) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, 'the server set a reserved bit (no extension was negotiated)');
    if (b1 & 0x80) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, 'the server sent a masked frame');
    const len7 = b1 & 0x7f;
    return len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  }

  private startFrame(): void {
    const h = this.header;
    this.fin = (h[0]! & 0x80) !== 0;
    this.opcode = h[0]! & 0x0f;
    const len7 = h[1]! & 0x7f;
    let length: number;
    if (len7 === 126) length = (h[2]! << 8) | h[3]!;
    else if (len7 === 127) {
      const high = ((h[2]! << 24) >>> 0) + (h[3]! << 16) + (h[4]! << 8) + h[5]!;
      if (high > 0x1fffff) throw new WsProtocolError(WsCloseCode.MESSAGE_TOO_BIG, 'the server announced a frame longer than 2^53 bytes');
      length = high * 0x1_0000_0000 + (((h[6]! << 24) >>> 0) + (h[7]! << 16) + (h[8]! << 8) + h[9]!);
    } else length = len7;
    this.headerHave = 0;
    this.headerNeed = 2;
    this.inPayload = true;
    this.remaining = length;

    switch (this.opcode) {
      case Op.CLOSE: case Op.PING: case Op.PONG:
        if (!this.fin) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, 'the server fragmented a control frame');
        if (length > MAX_CONTROL_PAYLOAD) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, `the server sent a control frame of ${length} bytes (at most 125)`);
        this.control = Buffer.allocUnsafe(length);
        this.controlUsed = 0;
        return;
      case Op.TEXT: case Op.BINARY:
        if (this.inMessage) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, 'the server began a message inside a fragmented one');
        this.inMessage = true;
        this.messageBinary = this.opcode === Op.BINARY;
        this.message = null;
        this.messageUsed = 0;
        this.reserve(length);
        return;
      case Op.CONTINUATION:
        if (!this.inMessage) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, 'the server sent a continuation frame outside a message');
        this.reserve(length);
        return;
      default:
        throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, `the server used the unknown opcode ${this.opcode}`);
    }
  }

  /** Room for `length` more bytes of the current message; a single-frame message gets a buffer of its exact size. */
  private reserve(length: number): void {
    const total = this.messageUsed + length;
    if (total > this.maxPayload) {
      throw new WsProtocolError(WsCloseCode.MESSAGE_TOO_BIG, `the server sent a message of more than ${this.maxPayload} bytes`);
    }
    if (this.message && this.message.length >= total) return;
    // Fragmented messages (rare: our relay sends each record whole) grow geometrically, up to the limit.
    const size = this.message ? Math.min(this.maxPayload, Math.max(total, this.message.length * 2)) : total;
    const grown = Buffer.allocUnsafe(size);
    if (this.message) grown.set(this.message.subarray(0, this.messageUsed));
    this.message = grown;
  }

  private endFrame(): void {
    this.inPayload = false;
    if (this.opcode >= Op.CLOSE) {
      const payload = this.control!;
      this.control = null;
      if (this.opcode === Op.PING) this.sink.ping(payload);
      else if (this.opcode === Op.PONG) this.sink.pong(payload);
      else {
        this.closed = true;
        this.closeFrame(payload);
      }
      return;
    }
    if (!this.fin) return;
    const data = this.message!.length === this.messageUsed ? this.message! : this.message!.subarray(0, this.messageUsed);
    this.message = null;
    this.inMessage = false;
    if (!this.messageBinary && !isUtf8(data)) throw new WsProtocolError(WsCloseCode.INVALID_DATA, 'the server sent a text message that is not UTF-8');
    this.sink.message(data, this.messageBinary);
  }

  private closeFrame(payload: Buffer): void {
    if (payload.length === 0) return this.sink.close(WsCloseCode.NO_STATUS, '');
    if (payload.length === 1) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, 'the server sent a close frame with a 1-byte payload');
    const code = payload.readUInt16BE(0);
    if (!isValidCloseCode(code)) throw new WsProtocolError(WsCloseCode.PROTOCOL_ERROR, `the server sent the invalid close code ${code}`);
    let reason: string;
    try {
      reason = utf8.decode(payload.subarray(2));
    } catch {
      throw new WsProtocolError(WsCloseCode.INVALID_DATA, 'the server sent a close reason that is not UTF-8');
    }
    this.sink.close(code, reason);
  }
}
