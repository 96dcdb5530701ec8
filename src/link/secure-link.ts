// Glue between an ordered message socket (a WebSocket, on either runtime) and a Mux: every record the mux
// emits is sealed and sent, every message received is opened and fed to the mux, both strictly in order.
// With a synchronous AEAD (node:crypto) and nothing queued, a record is sealed/opened and handed on at once,
// with no promise; an asynchronous AEAD (WebCrypto) or a pending rekey falls back to promise chains that
// keep call order. Any decrypt failure is fatal for the link: a replayed, dropped or reordered record must
// never be accepted.

import { ZksError } from '../errors/zks-error';
import { CloseCode } from '../protocol/constants';
import { Mux, type MuxOptions } from '../protocol/mux';
import type { RecordOpener, RecordSealer } from '../crypto/record';
import { AEAD_TAG_SIZE } from '../crypto/types';
import { linkObserver, type LinkObserver } from './observer';

export interface MessageSocket {
  /** One sealed record; with `headroom`, the buffer starts with that many free bytes for the socket's header. */
  send(data: Uint8Array): void;
  /**
   * Like send(), and `written()` once the socket no longer references `data` (it reached the kernel); never called
   * when the data was dropped. With it, records are sealed in place and their buffers reused after `written`.
   */
  sendOwned?(data: Uint8Array, written: () => void): void;
  /** Messages given to receive() are the link's to overwrite: they are opened in place where the backend can. */
  readonly ownsReceived?: boolean;
  close(code: number, reason: string): void;
  /**
   * Bytes to leave free in front of every record handed to send() (room mode: the session id), so the
   * socket frames it without copying it.
   */
  readonly headroom?: number;
  /** Bytes given to send() and not yet on the wire (a WebSocket's bufferedAmount); datagrams drop above a limit. */
  backlog?(): number;
}

export type LinkOptions = Omit<MuxOptions, 'transport'>;

let linkCount = 0;

function sealingError(err: unknown): ZksError {
  return err instanceof ZksError ? err : new ZksError('ZKS_ERR_SEAL', `sealing failed: ${(err as Error)?.message ?? String(err)}`);
}

function openingError(): ZksError {
  return new ZksError('ZKS_ERR_DECRYPT', 'a record failed authentication (tampered, replayed or reordered)');
}

export class SecureLink {
  readonly mux: Mux;
  readonly id = ++linkCount;
  private readonly headroom: number;
  /** Records are sealed in place (the batch leaves headroom and tag room around them) and sent with sendOwned. */
  private readonly inPlace: boolean;
  private readonly openInPlace: boolean;
  private readonly observer: LinkObserver | null;
  private sendTail: Promise<unknown> = Promise.resolve();
  private recvTail: Promise<unknown> = Promise.resolve();
  /** Records on the promise paths not yet handed on; while any is, new ones queue behind them. */
  private sendsQueued = 0;
  private recvsQueued = 0;
  private dead = false;
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    private readonly socket: MessageSocket,
    private readonly sealer: RecordSealer,
    private readonly opener: RecordOpener,
    opts: LinkOptions,
  ) {
    this.headroom = socket.headroom ?? 0;
    this.inPlace = socket.sendOwned !== undefined && sealer.sealsInPlace;
    this.openInPlace = socket.ownsReceived === true;
    this.observer = linkObserver();
    const observer = this.observer;
    const link = this.id;
    this.mux = new Mux({
      ...opts,
      transport: {
        sendRecord: (record) => this.sendRecord(record),
        close: (code, reason) => this.closeSocket(code, reason),
        backlog: socket.backlog ? () => socket.backlog!() : undefined,
        recordRoom: this.inPlace ? { head: this.headroom, tail: AEAD_TAG_SIZE } : undefined,
      },
      onClose: (err) => {
        observer?.linkDown({ link, role: opts.role, error: err?.code ?? null, reason: err?.message ?? 'closed' });
        opts.onClose?.(err);
      },
      onStreamOpen: observer
        ? (s) => {
            observer.streamOpen({ link, stream: s.id, host: s.target.host, port: s.target.port });
            opts.onStreamOpen?.(s);
          }
        : opts.onStreamOpen,
      onStreamClose: observer
        ? (s, err) => {
            observer.streamClose({
              link, stream: s.id, host: s.target.host, port: s.target.port,
              bytesSent: s.bytesSent, bytesReceived: s.bytesReceived, error: err?.code ?? null,
            });
            opts.onStreamClose?.(s, err);
          }
        : opts.onStreamClose,
    });
    observer?.linkUp({ link, role: opts.role });
  }

  private sendRecord(record: Uint8Array): void {
    if (this.dead) return;
    if (this.sendsQueued === 0 && this.inPlace && this.sendInPlace(record)) return;
    if (this.sendsQueued === 0) {
      let sealed: Uint8Array | null;
      try {
        sealed = this.sealer.sealNow(record, this.headroom);
      } catch (err) {
        this.fatal(sealingError(err), CloseCode.DECRYPT_FAILED);
        return;
      }
      if (sealed) {
        this.mux.recycleRecord(record);
        this.transmit(sealed);
        return;
      }
    }
    this.sendsQueued++;
    const sealed = this.sealer.seal(record, this.headroom);
    sealed.then(() => this.mux.recycleRecord(record), () => {}); // errors are handled below, in order
    this.sendTail = this.sendTail.then(() => sealed).then(
      (ct) => {
        this.sendsQueued--;
        this.transmit(ct);
      },
      (err) => {
        this.sendsQueued--;
        this.fatal(sealingError(err), CloseCode.DECRYPT_FAILED);
      },
    );
  }

  /**
   * Seals `record` where it lies (the batch left headroom before it and tag room after it) and sends the buffer;
   * it returns to the batch once the socket has written it. false: not possible now (a rekey in progress), nothing
   * done — the copying paths take the record.
   */
  private sendInPlace(record: Uint8Array): boolean {
    const start = record.byteOffset - this.headroom;
    const end = record.byteOffset + record.length + AEAD_TAG_SIZE;
    if (start < 0 || end > record.buffer.byteLength) return false;
    const message = new Uint8Array(record.buffer, start, end - start);
    try {
      if (!this.sealer.sealInPlaceNow(message, this.headroom, record.length)) return false;
    } catch (err) {
      this.fatal(sealingError(err), CloseCode.DECRYPT_FAILED);
      return true;
    }
    this.bytesOut += message.length - this.headroom;
    this.socket.sendOwned!(message, () => this.mux.recycleRecord(record));
    return true;
  }

  private transmit(sealed: Uint8Array): void {
    if (this.dead) return;
    this.bytesOut += sealed.length - this.headroom;
    this.socket.send(sealed);
  }

  /** Feed one binary message received from the socket. */
  receive(ciphertext: Uint8Array): void {
    if (this.dead) return;
    this.bytesIn += ciphertext.length;
    if (this.recvsQueued === 0) {
      let plain: Uint8Array | null;
      try {
        plain = this.opener.openNow(ciphertext, this.openInPlace);
      } catch {
        this.fatal(openingError(), CloseCode.DECRYPT_FAILED);
        return;
      }
      if (plain) {
        this.mux.receiveRecord(plain);
        return;
      }
    }
    this.recvsQueued++;
    const opened = this.opener.open(ciphertext);
    opened.catch(() => {});
    this.recvTail = this.recvTail.then(() => opened).then(
      (pt) => {
        this.recvsQueued--;
        if (!this.dead) this.mux.receiveRecord(pt);
      },
      () => {
        this.recvsQueued--;
        this.fatal(openingError(), CloseCode.DECRYPT_FAILED);
      },
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
    // Let records queued before GOAWAY leave first; anything after it queues behind the close (and is dropped).
    this.sendsQueued++;
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
