// Glue between an ordered message socket (a WebSocket, on either runtime) and a Mux: every record the mux
// emits is sealed and sent, every message received is opened and fed to the mux, both strictly in order even
// though the AEAD is asynchronous (WebCrypto). Nonces are taken at call time, so sealing may run pipelined.
// Any decrypt failure is fatal for the link: a replayed, dropped or reordered record must never be accepted.

import { ZksError } from '../protocol/errors';
import { CloseCode } from '../protocol/constants';
import { Mux, type MuxOptions } from '../protocol/mux';
import type { RecordOpener, RecordSealer } from '../crypto/record';

export interface MessageSocket {
  send(data: Uint8Array): void;
  close(code: number, reason: string): void;
}

export type LinkOptions = Omit<MuxOptions, 'transport'>;

export class SecureLink {
  readonly mux: Mux;
  private sendTail: Promise<unknown> = Promise.resolve();
  private recvTail: Promise<unknown> = Promise.resolve();
  private dead = false;
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    private readonly socket: MessageSocket,
    private readonly sealer: RecordSealer,
    private readonly opener: RecordOpener,
    opts: LinkOptions,
  ) {
    this.mux = new Mux({
      ...opts,
      transport: {
        sendRecord: (record) => this.sendRecord(record),
        close: (code, reason) => this.closeSocket(code, reason),
      },
    });
  }

  private sendRecord(record: Uint8Array): void {
    if (this.dead) return;
    const sealed = this.sealer.seal(record);
    sealed.then(() => this.mux.recycleRecord(record), () => {}); // errors are handled below, in order
    this.sendTail = this.sendTail.then(() => sealed).then(
      (ct) => {
        if (this.dead) return;
        this.bytesOut += ct.length;
        this.socket.send(ct);
      },
      (err) => this.fatal(new ZksError('ZKS_ERR_DECRYPT', `sealing failed: ${(err as Error).message}`), CloseCode.DECRYPT_FAILED),
    );
  }

  /** Feed one binary message received from the socket. */
  receive(ciphertext: Uint8Array): void {
    if (this.dead) return;
    this.bytesIn += ciphertext.length;
    const opened = this.opener.open(ciphertext);
    opened.catch(() => {});
    this.recvTail = this.recvTail.then(() => opened).then(
      (pt) => {
        if (!this.dead) this.mux.receiveRecord(pt);
      },
      () => this.fatal(new ZksError('ZKS_ERR_DECRYPT', 'a record failed authentication (tampered, replayed or reordered)'), CloseCode.DECRYPT_FAILED),
    );
  }

  /** The socket closed or errored underneath us. */
  socketClosed(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.mux.transportClosed(new ZksError('ZKS_ERR_CONNECTION_LOST', reason));
  }

  /** Graceful shutdown: GOAWAY, then close once queued records are out. */
  close(): void {
    this.mux.close(null);
  }

  private fatal(err: ZksError, code: number): void {
    if (this.dead) return;
    this.dead = true;
    this.mux.transportClosed(err);
    try {
      this.socket.close(code, err.code);
    } catch {
      // already closed
    }
  }

  private closeSocket(code: number, reason: string): void {
    // Let records queued before GOAWAY leave first.
    this.sendTail = this.sendTail.then(() => {
      this.dead = true;
      try {
        this.socket.close(code, reason);
      } catch {
        // already closed
      }
    });
  }
}
