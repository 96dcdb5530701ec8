// A session of multiplexed streams over one ordered record transport (in practice: one encrypted WebSocket).
// Symmetric: either side may open streams (client ids odd, server ids even, strictly increasing), so the same
// code runs in the Worker, the client and later the exit peer. No timers or I/O here: the owner injects the
// transport, a flush scheduler and a clock, and drives keepalive by calling ping().
// Optional send limits (docs/PROTOCOL.md §6): each stream honours at most `maxSendCredit` of the peer's credit;
// with `maxUnackedBytes` / `sharedBudget` (the Worker's memory policy) or `paceByDelay` (a short queue while
// datagrams flow) the session stops making streams writable while too much DATA is not yet proven read by the
// PONG of a PING sent behind it (unacked-data.ts decides; this sends the PINGs and pauses the writers).
import { DEFAULT_STREAM_WINDOW, FrameType, MAX_CREDIT_BATCH, MAX_STREAM_WINDOW, MIN_STREAM_WINDOW, ResetCode, type ConnectResultCode, type ResetCodeValue } from './constants';
import { ZksError } from '../errors/zks-error';
import { ProtocolError } from './errors';
import { forEachFrame, INVALID_FRAME, type DecodedFrame } from './frames';
import { RecordBatch, type RecordRoom } from './batch';
import { MuxStream, type StreamHost } from './stream';
import type { Target } from './address';
import { DatagramPort, type DatagramPortOptions } from './datagrams';
import type { SignalKindValue } from './signal-codec';
import type { MuxOptions } from './mux-options';
import { SEND_PAUSE, SEND_PING, UnackedData, type SharedSendBudget } from './unacked-data';

export { PACE_AFTER_DATAGRAM_MS, type SharedSendBudget } from './unacked-data';

export type { MuxOptions, MuxTransport } from './mux-options';

/** Batches flush on the next macrotask unless the owner schedules them (Node: setImmediate). */
const defaultSchedule = (fn: () => void) => void setTimeout(fn, 0);

/** Web Crypto's CSPRNG, global in workerd and Node ≥ 20 (this layer imports no runtime module). */
const webRandom = (globalThis as unknown as { crypto: { getRandomValues(b: Uint8Array): Uint8Array } }).crypto;

function sameOpaque(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export class Mux implements StreamHost {
  readonly streams = new Map<number, MuxStream>();
  private nextLocalId: number;
  private lastPeerId = 0;
  private readonly batch: RecordBatch;
  /** Datagram and echo frames: a batch of their own, always emitted before the DATA batch's next record. */
  private readonly datagramBatch: RecordBatch;
  readonly datagrams: DatagramPort;
  private readonly window: number;
  private closed = false;
  private pingSentAt = 0;
  /** The outstanding PING's random bytes: only a PONG echoing them counts (a peer cannot answer unread). */
  private pingOpaque = new Uint8Array(8);
  private pingOutstanding = false;
  private readonly maxSendCredit: number;
  /** DATA not yet proven read, and the limit on it (maxUnackedBytes, sharedBudget, paceByDelay). */
  private readonly unacked: UnackedData;
  private paused = false;
  /** The transport's own holds (holdSending), one bit per reason: its replay budget is full, its path is backed up. */
  private heldBy = 0;
  private readonly leaveBudget: (() => void) | null;
  /** Round-trip time of the last PING, ms; -1 before the first PONG. */
  rttMs = -1;
  lastReceiveAt: number;
  streamsOpened = 0;

  constructor(private readonly opts: MuxOptions) {
    this.nextLocalId = opts.role === 'client' ? 1 : 2;
    const w = opts.window ?? DEFAULT_STREAM_WINDOW;
    this.window = Math.max(MIN_STREAM_WINDOW, Math.min(MAX_STREAM_WINDOW, w));
    this.maxSendCredit = opts.maxSendCredit === undefined ? Infinity : Math.max(MAX_CREDIT_BATCH, opts.maxSendCredit);
    this.unacked = new UnackedData({
      maxUnackedBytes: opts.maxUnackedBytes, sharedBudget: opts.sharedBudget, paceByDelay: opts.paceByDelay,
      datagramActivity: opts.datagramActivity, now: () => this.now(),
    });
    const schedule = opts.scheduleFlush ?? defaultSchedule;
    const spares: Uint8Array[] = [];
    const peerAnnounces = opts.peerAnnouncesCapabilities ?? false;
    // Datagram records go ahead of the bulk batch's next record, except that our CAPABILITIES record is the first.
    let capabilitiesSent = !peerAnnounces;
    this.datagramBatch = new RecordBatch((r) => {
      if (!capabilitiesSent) this.batch.flush();
      if (this.opts.transport.sendDatagramRecord?.(r)) this.datagramBatch.recycle(r);
      else this.opts.transport.sendRecord(r);
    }, schedule, spares, opts.transport.recordRoom);
    this.batch = new RecordBatch((r) => {
      if (capabilitiesSent) this.datagramBatch.flush();
      this.opts.transport.sendRecord(r);
      if (!capabilitiesSent) {
        capabilitiesSent = true;
        this.datagramBatch.flush();
      }
    }, schedule, spares, opts.transport.recordRoom);
    this.datagrams = new DatagramPort({
      role: opts.role,
      localCaps: opts.capabilities ?? 0,
      peerAnnounces,
      push: (f) => {
        if (f.type !== FrameType.CAPABILITIES) this.unacked.datagramSeen();
        this.datagramBatch.push(f);
      },
      backlog: opts.transport.backlog ? () => opts.transport.backlog!() : undefined,
      maxBacklog: opts.maxDatagramBacklog,
      onFlow: opts.onDatagramFlow,
      onEcho: opts.onEcho,
      now: () => this.now(),
    });
    if (peerAnnounces) {
      // The first frame of this side's first record (§3.3); it leaves with the scheduled flush (the transport
      // may still be wiring itself to this mux).
      this.batch.push({ type: FrameType.CAPABILITIES, stream: 0, caps: opts.capabilities ?? 0 });
    }
    this.lastReceiveAt = this.now();
    this.leaveBudget = opts.maxUnackedBytes && opts.sharedBudget ? opts.sharedBudget.subscribe(() => this.checkUnacked()) : null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * StreamHost: true while the limit of unacknowledged DATA (or the shared budget) waits for a PONG. Advisory: it
   * only makes `writable` false; writers that check it (the Worker's read loop, socket-bridge.ts, zksd's flow
   * pump) stop, write() itself still sends.
   */
  get sendPaused(): boolean {
    return this.paused || this.heldBy !== 0;
  }

  /**
   * The transport holds (or frees) the writers for `reason` (a bit of its own), as the DATA limit does; control
   * frames still leave (they lift it). Writers resume once no reason holds them.
   */
  holdSending(held: boolean, reason = 1): void {
    const heldBy = held ? this.heldBy | reason : this.heldBy & ~reason;
    if (heldBy === this.heldBy) return;
    this.heldBy = heldBy;
    if (heldBy === 0 && !this.paused && !this.closed) this.resumeWriters();
  }

  /** The transport is gone, the session kept for a resume: DATA queued in it no longer counts (UnackedData). */
  transportLost(): void {
    if (this.unacked.limited) this.unacked.transportLost();
  }

  /** Sequenced records (§2.5a): tells the peer every record below `next` has arrived. */
  sendPathAck(next: number): void {
    if (this.closed) return;
    this.batch.push({ type: FrameType.PATH_ACK, stream: 0, next }); // leaves with the batch's next flush
  }

  /** One SIGNAL frame (§3.6) to a peer that announced Capability.DIRECT_PATH; leaves with the next flush. */
  sendSignal(kind: SignalKindValue, text: string): void {
    if (this.closed) return;
    this.batch.push({ type: FrameType.SIGNAL, stream: 0, kind, text });
  }

  /** When the outstanding PING was sent (the injected clock), or null when none is. */
  get pingSentSince(): number | null {
    return this.pingOutstanding ? this.pingSentAt : null;
  }

  /** DATA bytes sent and not yet acknowledged by a PONG (0 unless maxUnackedBytes or paceByDelay is set). */
  get unackedBytes(): number {
    return this.unacked.bytes;
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** Opens a stream to `target`; watch stream.onResult for the outcome. */
  openStream(target: Target): MuxStream {
    if (this.closed) throw new ZksError('ZKS_ERR_CONNECTION_LOST', 'session is closed');
    const id = this.nextLocalId;
    this.nextLocalId += 2;
    const stream = new MuxStream(this, id, target, this.window, this.maxSendCredit);
    this.streams.set(id, stream);
    this.streamsOpened++;
    this.opts.onStreamOpen?.(stream);
    this.batch.push({ type: FrameType.CONNECT, stream: id, window: this.window, target });
    return stream;
  }

  /** The transport is done with a record it was given (sealed): its memory may be reused. */
  recycleRecord(record: Uint8Array): void {
    this.batch.recycle(record);
  }

  /** The transport holds no records any more: spare record buffers beyond the default few are let go. */
  trimRecordBuffers(): void {
    this.batch.trimSpares();
  }

  ping(): void {
    if (this.closed || this.pingOutstanding) return;
    this.pingOutstanding = true;
    this.unacked.pingSent();
    this.pingSentAt = this.now();
    const opaque = new Uint8Array(8);
    webRandom.getRandomValues(opaque);
    this.pingOpaque = opaque;
    this.batch.push({ type: FrameType.PING, stream: 0, opaque });
    this.batch.flush();
  }

  /** Feeds one decrypted record. A fatal protocol error ends the session with GOAWAY. */
  receiveRecord(record: Uint8Array): void {
    if (this.closed) return;
    this.lastReceiveAt = this.now();
    // Frame by frame, never a list of them: a record may pack 60 000 PINGs.
    const error = forEachFrame(record, (f) => {
      this.dispatch(f);
      return !this.closed;
    });
    if (error && !this.closed) this.fail(error);
  }

  /**
   * A datagram record from the direct path's unreliable channel (§3.6): its frames must all be UDP_DATAGRAM or
   * ICMP_ECHO — anything else is a fatal protocol error, as a malformed frame is.
   */
  receiveDatagramRecord(record: Uint8Array): void {
    if (this.closed) return;
    this.lastReceiveAt = this.now();
    let stray: ProtocolError | null = null;
    const error = forEachFrame(record, (f) => {
      const type = f.type === INVALID_FRAME ? f.frameType : f.type;
      if (type !== FrameType.UDP_DATAGRAM && type !== FrameType.ICMP_ECHO) {
        stray = new ProtocolError('ZKS_ERR_MALFORMED_FRAME', `frame type 0x${type.toString(16)} in a datagram record`);
        return false;
      }
      this.dispatch(f);
      return !this.closed;
    });
    if ((stray ?? error) && !this.closed) this.fail((stray ?? error)!);
  }

  /** Ends the session: GOAWAY to the peer (if still reachable) and every stream closed with `err`. */
  close(err: ZksError | null = null, goaway = true): void {
    if (this.closed) return;
    if (goaway) {
      const code = err ? (err instanceof ProtocolError ? ResetCode.PROTOCOL : ResetCode.INTERNAL) : ResetCode.SHUTDOWN;
      this.batch.push({ type: FrameType.GOAWAY, stream: 0, code, message: err ? err.message : 'shutdown' });
      this.batch.flush();
    }
    this.teardown(err ?? new ZksError('ZKS_ERR_CONNECTION_LOST', 'session closed'));
    this.opts.transport.close(err ? 4001 : 1000, err ? err.code : 'shutdown');
    this.opts.onClose?.(err);
  }

  /** The transport died underneath us (WebSocket closed, decrypt failure): no GOAWAY possible. */
  transportClosed(err: ZksError): void {
    if (this.closed) return;
    this.teardown(err);
    this.opts.onClose?.(err);
  }

  private teardown(err: ZksError): void {
    this.closed = true;
    if (this.leaveBudget) {
      this.leaveBudget();
      this.unacked.release();
    }
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.abort(err);
    this.datagrams.teardown(err);
  }

  private fail(err: ProtocolError): void {
    this.close(err);
  }

  private isPeerId(id: number): boolean {
    return (id & 1) === (this.opts.role === 'client' ? 0 : 1);
  }

  private dispatch(f: DecodedFrame): void {
    if (f.type === INVALID_FRAME) {
      // Well-framed but invalid for its stream (e.g. bad host in CONNECT): answer on that stream only.
      if (f.frameType === FrameType.UDP_DATAGRAM || f.frameType === FrameType.ICMP_ECHO) {
        this.datagrams.invalid(f.frameType, f.stream, f.error);
      } else if (f.frameType === FrameType.CONNECT && this.isPeerId(f.stream) && f.stream > this.lastPeerId) {
        this.lastPeerId = f.stream;
        this.sendResult(f.stream, 4 /* HOST_UNREACHABLE */, 0, f.error.message);
      } else {
        this.streams.get(f.stream)?.reset(ResetCode.PROTOCOL, f.error.message);
      }
      return;
    }
    switch (f.type) {
      case FrameType.CONNECT: {
        if (!this.isPeerId(f.stream) || f.stream <= this.lastPeerId) {
          this.fail(new ProtocolError('ZKS_ERR_BAD_STREAM', `CONNECT reuses or misnumbers stream ${f.stream}`));
          return;
        }
        this.lastPeerId = f.stream;
        if (f.window < MIN_STREAM_WINDOW || f.window > MAX_STREAM_WINDOW) {
          this.sendResult(f.stream, 1 /* GENERAL_FAILURE */, 0, `window ${f.window} outside ${MIN_STREAM_WINDOW}..${MAX_STREAM_WINDOW}`);
          return;
        }
        const stream = new MuxStream(this, f.stream, f.target, this.window, this.maxSendCredit);
        this.streams.set(f.stream, stream);
        this.streamsOpened++;
        this.opts.onStreamOpen?.(stream);
        // The peer's receive window is our send credit once we accept.
        stream.handleWindowUpdate(f.window);
        if (this.opts.onStream) this.opts.onStream(stream, f.target);
        else stream.reject(1, 'this side accepts no streams');
        return;
      }
      case FrameType.CONNECT_RESULT:
        this.streams.get(f.stream)?.handleResult(f.code, f.window, f.message);
        return;
      case FrameType.DATA:
        this.streams.get(f.stream)?.handleData(f.data);
        return;
      case FrameType.WINDOW_UPDATE:
        this.streams.get(f.stream)?.handleWindowUpdate(f.increment);
        return;
      case FrameType.FIN:
        this.streams.get(f.stream)?.handleFin();
        return;
      case FrameType.RST:
        this.streams.get(f.stream)?.handleReset(f.message);
        return;
      case FrameType.PING:
        this.batch.pushPong(f.opaque); // coalesced: at most one PONG per record (PROTOCOL.md §7)
        return;
      case FrameType.PONG:
        if (this.pingOutstanding && sameOpaque(f.opaque, this.pingOpaque)) {
          this.pingOutstanding = false;
          const now = this.now();
          this.rttMs = now - this.pingSentAt;
          this.unacked.pongReceived(this.rttMs, this.pingSentAt, now, this.paused);
          if (this.unacked.limited) this.checkUnacked();
        }
        return;
      case FrameType.PATH_ACK:
        if (this.opts.onPathAck) this.opts.onPathAck(f.next);
        else this.fail(new ProtocolError('ZKS_ERR_UNSUPPORTED_FRAME', 'PATH_ACK on a session without sequenced records'));
        return;
      case FrameType.SIGNAL:
        if (this.opts.onSignal) this.opts.onSignal(f.kind, f.text);
        else this.fail(new ProtocolError('ZKS_ERR_UNSUPPORTED_FRAME', 'SIGNAL to a side that announced no direct path'));
        return;
      case FrameType.GOAWAY:
        this.teardown(new ZksError('ZKS_ERR_CONNECTION_LOST', `peer closed the session: ${f.message}`));
        this.opts.transport.close(1000, 'goaway');
        this.opts.onClose?.(f.code === ResetCode.SHUTDOWN ? null : new ZksError('ZKS_ERR_CONNECTION_LOST', f.message));
        return;
      case FrameType.CAPABILITIES: case FrameType.UDP_DATAGRAM: case FrameType.ICMP_ECHO: {
        if (f.type !== FrameType.CAPABILITIES) this.unacked.datagramSeen();
        const error = this.datagrams.receive(f);
        if (error) this.fail(error);
        return;
      }
    }
  }

  // ---- StreamHost: frames on behalf of streams ----

  sendData(stream: number, data: Uint8Array): void {
    if (this.closed) return;
    this.batch.pushData(stream, data);
    if (this.unacked.limited) {
      this.unacked.add(data.length);
      this.checkUnacked();
    }
  }

  /** Pauses or resumes writers by unacknowledged bytes; keeps a PING behind the data once a quarter is out. */
  private checkUnacked(): void {
    if (this.closed) return;
    const verdict = this.unacked.verdict();
    if (verdict & SEND_PING) this.ping(); // no-op while one is outstanding
    if (verdict & SEND_PAUSE) this.paused = true;
    else if (this.paused) this.resumeWriters();
  }

  private resumeWriters(): void {
    this.paused = false;
    if (this.heldBy !== 0) return;
    for (const s of [...this.streams.values()]) {
      s.sessionResumed();
      if (this.paused || this.heldBy !== 0) return;
    }
  }
  sendFin(stream: number): void {
    if (!this.closed) this.batch.push({ type: FrameType.FIN, stream });
  }
  sendReset(stream: number, code: ResetCodeValue, message: string): void {
    if (!this.closed) this.batch.push({ type: FrameType.RST, stream, code, message });
  }
  sendResult(stream: number, code: ConnectResultCode, window: number, message: string): void {
    if (!this.closed) this.batch.push({ type: FrameType.CONNECT_RESULT, stream, code, window, message });
  }
  sendWindowUpdate(stream: number, increment: number): void {
    if (!this.closed) this.batch.push({ type: FrameType.WINDOW_UPDATE, stream, increment });
  }
  release(stream: MuxStream, err: ZksError | null): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.opts.onStreamClose?.(stream, err);
  }
}
