// Glue between an ordered message socket (a WebSocket, on either runtime) and a Mux: every record the mux
// emits is sealed and sent, every message received is opened and fed to the mux, both strictly in order.
// With a synchronous AEAD (node:crypto) and nothing queued, a record is sealed/opened and handed on at once,
// with no promise; an asynchronous AEAD (WebCrypto) or a pending rekey falls back to promise chains that
// keep call order. Any decrypt failure is fatal for the link: a replayed, dropped or reordered record must
// never be accepted. With sequenced records (§2.5a, negotiated in the handshake) each record carries its number
// in clear and stays in a replay queue until the peer's PATH_ACK covers it (sequenced.ts); a record that
// arrives twice is dropped, one that skips ahead ends the link (one path: nothing can overtake). Sequenced links
// can carry the session over more paths (paths.ts, docs/design/paths.md): records then wait for their turn when
// they overtake each other, and losing a path sends everything unacknowledged again on the path in use.

import { ZksError } from '../errors/zks-error';
import { CloseCode, FRAME_HEADER_SIZE, FrameType } from '../protocol/constants';
import { Mux, type MuxOptions } from '../protocol/mux';
import type { RecordOpener, RecordSealer } from '../crypto/record';
import { AEAD_TAG_SIZE } from '../crypto/types';
import { linkObserver, type LinkObserver } from './observer';
import { HoldReason, PathSet, type MessageSocket } from './paths';
import { DEFAULT_REPLAY_BUDGET, SEQ_HEADER_SIZE, writeSeq, type RecordHolder, type ReplayQueue } from './sequenced';
import { Sequencing, SMALL_RECORD } from './sequencing';

export type { MessageSocket } from './paths';

export type LinkOptions = Omit<MuxOptions, 'transport' | 'onPathAck'> & {
  /** The handshake agreed on sequenced records (SessionKeys.sequencedRecords). */
  sequencedRecords?: boolean;
  /** With sequencedRecords: unacknowledged bytes before streams stop being writable (default 8 MiB). */
  replayBudget?: number;
};

/**
 * Record buffers the batch keeps in rotation with sequenced records: those awaiting acknowledgement (ACK_BYTES and a
 * round trip's worth) come back in bursts; trimmed to the default once everything is acknowledged.
 */
const HELD_RECORD_SPARES = 16;

/** A record holding nothing but one PATH_ACK frame (never acknowledged by itself: AckPolicy). */
function isAckOnly(plain: Uint8Array): boolean {
  return plain.length === FRAME_HEADER_SIZE + SEQ_HEADER_SIZE && plain[0] === FrameType.PATH_ACK;
}

let linkCount = 0;

/** A record buffer shared by the socket writes and the replay queue: back to the batch when the last one lets go. */
class BufferHolder implements RecordHolder {
  constructor(
    private refs: number,
    private readonly done: () => void,
  ) {}
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) this.done();
  }
}

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
  /** Sequenced records: header bytes per record (0 without) and their bookkeeping (null without). */
  private readonly seqBytes: number;
  private readonly seq: Sequencing | null;
  /** Records sent again after a path was lost. */
  recordsResent = 0;
  /**
   * Where datagram-only records go instead of the path in use, when set (the direct path's unreliable channel,
   * src/direct/): true when it took the record. Unset, they are sequenced records like the rest.
   */
  datagramRoute: ((record: Uint8Array) => boolean) | null = null;
  private readonly paths: PathSet;

  constructor(
    socket: MessageSocket,
    private readonly sealer: RecordSealer,
    private readonly opener: RecordOpener,
    opts: LinkOptions,
  ) {
    this.headroom = socket.headroom ?? 0;
    const sequenced = opts.sequencedRecords === true;
    this.seqBytes = sequenced ? SEQ_HEADER_SIZE : 0;
    this.paths = new PathSet(socket);
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
        backlog: socket.backlog ? () => (this.paths.active.backlog ?? socket.backlog!).call(this.paths.active) : undefined,
        recordRoom: this.inPlace
          ? { head: this.headroom + this.seqBytes, tail: AEAD_TAG_SIZE, spares: sequenced ? HELD_RECORD_SPARES : undefined }
          : undefined,
        sendDatagramRecord: (record) => !this.dead && this.datagramRoute !== null && this.datagramRoute(record),
      },
      onPathAck: sequenced ? (next) => !this.dead && this.seq!.pathAck(next) : undefined,
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
    this.seq = sequenced
      ? new Sequencing(opts.replayBudget ?? DEFAULT_REPLAY_BUDGET, {
          mux: this.mux,
          sentNext: () => this.sealer.nextCounter,
          fatal: (err) => this.fatal(err, CloseCode.PROTOCOL_ERROR),
        })
      : null;
    observer?.linkUp({ link, role: opts.role });
  }

  private sendRecord(record: Uint8Array): void {
    if (this.dead) return;
    if (this.sendsQueued === 0 && this.inPlace && this.sendInPlace(record)) return;
    // The counter the seal claims is the record's sequence number.
    const seq = this.sealer.nextCounter;
    if (this.sendsQueued === 0) {
      let sealed: Uint8Array | null;
      try {
        sealed = this.sealer.sealNow(record, this.headroom + this.seqBytes);
      } catch (err) {
        this.fatal(sealingError(err), CloseCode.DECRYPT_FAILED);
        return;
      }
      if (sealed) {
        this.mux.recycleRecord(record);
        this.transmit(sealed, seq);
        return;
      }
    }
    this.sendsQueued++;
    const sealed = this.sealer.seal(record, this.headroom + this.seqBytes);
    sealed.then(() => this.mux.recycleRecord(record), () => {}); // errors are handled below, in order
    this.sendTail = this.sendTail.then(() => sealed).then(
      (ct) => {
        this.sendsQueued--;
        this.transmit(ct, seq);
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
    const head = this.headroom + this.seqBytes;
    const start = record.byteOffset - head;
    const end = record.byteOffset + record.length + AEAD_TAG_SIZE;
    if (start < 0 || end > record.buffer.byteLength) return false;
    const message = new Uint8Array(record.buffer, start, end - start);
    const seq = this.sealer.nextCounter;
    try {
      if (!this.sealer.sealInPlaceNow(message, head, record.length)) return false;
    } catch (err) {
      this.fatal(sealingError(err), CloseCode.DECRYPT_FAILED);
      return true;
    }
    this.bytesOut += message.length - this.headroom;
    if (!this.seq) {
      this.paths.send(this.paths.active, message, () => this.mux.recycleRecord(record));
      return true;
    }
    writeSeq(message, this.headroom, seq);
    // Kept before it is sent: a path that dies inside send() (pathLost, re-entrantly) must find it in the queue.
    if (message.length <= SMALL_RECORD) {
      // A control record (WINDOW_UPDATEs, a PONG) would hold a batch buffer sized for bulk data until acknowledged:
      // the replay keeps a copy of its few bytes and the buffer goes back once written.
      this.seq.keep(seq, message.slice(), null);
      this.paths.send(this.paths.active, message, () => this.mux.recycleRecord(record));
      return true;
    }
    // The buffer goes back to the batch once the socket wrote it *and* the peer acknowledged it.
    const holder = new BufferHolder(2, () => this.mux.recycleRecord(record));
    this.seq.keep(seq, message, holder);
    this.paths.send(this.paths.active, message, () => holder.release());
    return true;
  }

  private transmit(sealed: Uint8Array, seq: number): void {
    if (this.dead) return;
    this.bytesOut += sealed.length - this.headroom;
    if (this.seq) writeSeq(sealed, this.headroom, seq);
    this.seq?.keep(seq, sealed, null); // before sending: see sendInPlace
    this.paths.send(this.paths.active, sealed);
  }

  /** Sequenced links: sent records not yet acknowledged (null without sequenced records). */
  get replay(): ReplayQueue | null {
    return this.seq?.replay ?? null;
  }

  /** Records that arrived twice and were dropped; records that overtook an earlier one and waited for it. */
  get duplicatesDropped(): number {
    return this.seq?.duplicatesDropped ?? 0;
  }
  get recordsReordered(): number {
    return this.seq?.recordsReordered ?? 0;
  }

  /**
   * One more path for this session's records (sequenced links only); not used until usePath(). Its messages go to
   * receive() like path 0's. Returns its id.
   */
  addPath(socket: MessageSocket): number {
    if (!this.seq) throw new ZksError('ZKS_ERR_UNSUPPORTED', 'a second path needs sequenced records (the peer did not agree to them)');
    return this.paths.add(socket);
  }

  /** New records go over path `id` (make-before-break: those already sent arrive over the path they took). */
  usePath(id: number): void {
    this.paths.use(id);
    this.syncPathHold();
  }

  /** Writers wait while the path in use is backed up, whichever path held them before. */
  private syncPathHold(): void {
    this.mux.holdSending(this.paths.active.isHeld ?? false, HoldReason.PATH);
  }

  get activePath(): number {
    return this.paths.activeId;
  }

  /**
   * Path `id` is gone (closed, or declared dead); if it was in use, path 0 takes over. Records it carried may be
   * lost — also after a switch away from it — so everything not yet acknowledged is sent again on the path in use:
   * what the peer already has is dropped there as duplicate, the rest fills the gap. A path never used is just
   * forgotten.
   */
  pathLost(id: number): void {
    const removed = this.paths.remove(id);
    if (removed !== 'unknown') this.syncPathHold();
    if (this.dead || removed !== 'used') return;
    this.resendUnacknowledged();
  }

  /** Everything the peer has not acknowledged goes again, in order, on the path in use (`copy`: as copies). */
  private resendUnacknowledged(copy = false): void {
    for (const e of this.seq!.replay.unacknowledged()) {
      if (copy) {
        this.paths.send(this.paths.active, e.message.slice());
      } else {
        const holder = e.holder;
        holder?.retain();
        this.paths.send(this.paths.active, e.message, holder ? () => holder.release() : undefined);
      }
      this.recordsResent++;
    }
  }

  /** The link is over (closed, or failed): nothing can be resumed. */
  get isDead(): boolean {
    return this.dead;
  }

  /** Sequenced links: the number of the next record expected from the peer (every one below it was delivered). */
  get receivedNext(): number {
    return this.opener.nextCounter;
  }

  /**
   * Path 0's transport is back after a resume (§11.7): the peer holds every record below `peerNext`, the rest of the
   * replay queue goes again on the path in use. Call right after attaching the new transport, before anything else
   * is sent on it. False when the link is over (or `peerNext` is beyond what was sent: the link then fails).
   */
  resumed(peerNext: number): boolean {
    if (this.dead || !this.seq) return false;
    this.seq.pathAck(peerNext);
    if (this.dead) return false;
    this.syncPathHold();
    // Copies: a record's buffer may still wait, framed for the old session id, in a socket that writes ids in place.
    this.resendUnacknowledged(true);
    return true;
  }

  /** Feed one binary message received from the socket (any of the link's paths). */
  receive(message: Uint8Array): void {
    if (this.dead) return;
    this.bytesIn += message.length;
    if (!this.seq) return this.open(message, -1, message.length);
    if (message.length < SEQ_HEADER_SIZE + AEAD_TAG_SIZE) {
      this.fatal(new ZksError('ZKS_ERR_DECRYPT', `sequenced record of ${message.length} bytes: too short for its number and tag`), CloseCode.DECRYPT_FAILED);
      return;
    }
    const seq = this.seq.arrive(message, this.opener.nextCounter, this.paths.multipath, this.openInPlace);
    if (seq < 0) return;
    this.open(message.subarray(SEQ_HEADER_SIZE), seq, message.length);
    // Records that came early over another path follow once their turn has come.
    for (let next = this.opener.nextCounter, held = this.seq.takeHeld(next); held && !this.dead; held = this.seq.takeHeld(next)) {
      this.open(held.subarray(SEQ_HEADER_SIZE), next, held.length);
      next = this.opener.nextCounter;
    }
  }

  /** Opens one record (sequence number `seq`, -1 without) and hands it to the mux, in call order. */
  private open(ciphertext: Uint8Array, seq: number, wireBytes: number): void {
    if (this.recvsQueued === 0) {
      let plain: Uint8Array | null;
      try {
        plain = this.opener.openNow(ciphertext, this.openInPlace);
      } catch {
        this.fatal(openingError(), CloseCode.DECRYPT_FAILED);
        return;
      }
      if (plain) {
        this.deliver(plain, seq, wireBytes);
        return;
      }
    }
    this.recvsQueued++;
    const opened = this.opener.open(ciphertext);
    opened.catch(() => {});
    this.recvTail = this.recvTail.then(() => opened).then(
      (pt) => {
        this.recvsQueued--;
        if (!this.dead) this.deliver(pt, seq, wireBytes);
      },
      () => {
        this.recvsQueued--;
        this.fatal(openingError(), CloseCode.DECRYPT_FAILED);
      },
    );
  }

  private deliver(plain: Uint8Array, seq: number, wireBytes: number): void {
    if (seq < 0) return this.mux.receiveRecord(plain);
    const ackOnly = isAckOnly(plain); // before the mux: it may hand the bytes on
    this.mux.receiveRecord(plain);
    if (!this.dead) this.seq!.delivered(seq, wireBytes, ackOnly);
  }

  /** The socket closed or errored underneath us. */
  socketClosed(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.seq?.stop();
    this.mux.transportClosed(new ZksError('ZKS_ERR_CONNECTION_LOST', reason));
  }


  /** Graceful shutdown: GOAWAY, then close once queued records are out. */
  close(): void {
    this.mux.close(null);
  }

  private fatal(err: ZksError, code: number): void {
    if (this.dead) return;
    this.dead = true;
    this.seq?.stop();
    this.mux.transportClosed(err);
    this.closeAll(code, err.code);
  }

  private closeAll(code: number, reason: string): void {
    for (const socket of [...this.paths.others(), this.paths.primary]) {
      try {
        socket.close(code, reason);
      } catch {
        // already closed
      }
    }
  }

  private closeSocket(code: number, reason: string): void {
    // Let records queued before GOAWAY leave first; anything after it queues behind the close (and is dropped).
    this.sendsQueued++;
    this.sendTail = this.sendTail.then(() => {
      this.dead = true;
      this.closeAll(code, reason);
    });
  }
}
