// One multiplexed stream: credit-based flow control in both directions, FIN (half-close) distinct from RST.
// Send side: write() spends the peer's credit; beyond it bytes wait in `pending` and write() returns false
// until WINDOW_UPDATE brings credit back (then onDrain). Receive side: the consumer calls consume(n) once it
// has really delivered n bytes (e.g. the socket flushed them); only then is credit returned to the peer.
// So each side buffers at most one window per stream, however slow the other end is. A sender may honour less
// credit than granted (`sendCreditLimit`: the Worker's memory policy); the peer's real credit is still tracked
// so that a WINDOW_UPDATE overflowing 64 MiB is caught either way.

import { ConnectResult, MAX_CREDIT_BATCH, MAX_STREAM_WINDOW, ResetCode, type ConnectResultCode, type ResetCodeValue } from './constants';
import { ZksError } from '../errors/zks-error';
import type { Target } from './address';

/** What a stream needs from its session; implemented by Mux. */
export interface StreamHost {
  sendData(stream: number, data: Uint8Array): void;
  sendFin(stream: number): void;
  sendReset(stream: number, code: ResetCodeValue, message: string): void;
  sendResult(stream: number, code: ConnectResultCode, window: number, message: string): void;
  sendWindowUpdate(stream: number, increment: number): void;
  /** The session holds back new data for now (see MuxOptions.maxUnackedBytes); `writable` is false meanwhile. */
  readonly sendPaused: boolean;
  /** The stream closed (err null: cleanly both ways); the host forgets it. */
  release(stream: MuxStream, err: ZksError | null): void;
}

export type StreamState = 'connecting' | 'open' | 'closed';

export class MuxStream {
  state: StreamState = 'connecting';
  /** Bytes we may still send before the peer grants more: the peer's credit, capped at sendCreditLimit. */
  private sendCredit = 0;
  /** Bytes the peer has really granted and we have not spent (≥ sendCredit). */
  private peerCredit = 0;
  /** Bytes the peer may still send us. */
  private recvCredit: number;
  /** Consumed bytes not yet returned to the peer as credit. */
  private unreturned = 0;
  private pending: Uint8Array[] = [];
  private finQueued = false;
  private finSent = false;
  private finReceived = false;
  bytesSent = 0;
  bytesReceived = 0;

  /** Opener only: the CONNECT outcome. */
  onResult?: (code: ConnectResultCode, message: string) => void;
  /**
   * Received bytes. Until a consumer is attached they are held (within the window, so bounded) and handed
   * over when it is: a target that speaks first (SSH, SMTP banners) must not lose its greeting while the
   * SOCKS reply is still being written.
   */
  get onData(): ((chunk: Uint8Array) => void) | undefined {
    return this.dataHandler;
  }
  set onData(handler: ((chunk: Uint8Array) => void) | undefined) {
    this.dataHandler = handler;
    if (!handler || this.early.length === 0) return;
    const early = this.early;
    this.early = [];
    for (const chunk of early) handler(chunk);
  }
  private dataHandler?: (chunk: Uint8Array) => void;
  private early: Uint8Array[] = [];
  /** The peer half-closed: no more data will arrive. */
  get onEnd(): (() => void) | undefined {
    return this.endHandler;
  }
  set onEnd(handler: (() => void) | undefined) {
    this.endHandler = handler;
    // A FIN that came before any consumer is delivered after the held data (see onData).
    if (handler && this.finReceived && !this.endDelivered) {
      this.endDelivered = true;
      handler();
    }
  }
  private endHandler?: () => void;
  private endDelivered = false;
  /** write() returned false earlier and credit is available again. */
  onDrain?: () => void;
  /** The stream is gone: err null after a clean close in both directions, else why (reset, connection lost). */
  onClose?: (err: ZksError | null) => void;

  constructor(
    private readonly host: StreamHost,
    readonly id: number,
    readonly target: Target,
    readonly window: number,
    private readonly sendCreditLimit = Infinity,
  ) {
    this.recvCredit = window;
  }

  /** True while a write would go out at once: the stream's credit and the session (host.sendPaused) allow it. */
  get writable(): boolean {
    return this.state === 'open' && !this.finQueued && this.pending.length === 0 && this.sendCredit > 0 && !this.host.sendPaused;
  }

  /** Sends bytes; returns false when they (or part of them) must wait for credit: pause the source until onDrain. */
  write(chunk: Uint8Array): boolean {
    if (this.state === 'closed' || this.finQueued) return false;
    if (this.state === 'connecting' || this.pending.length > 0) {
      this.pending.push(chunk.slice());
      return false;
    }
    const n = Math.min(chunk.length, this.sendCredit);
    if (n > 0) this.transmit(chunk.subarray(0, n));
    if (n === chunk.length) return true;
    this.pending.push(chunk.slice(n)); // copy: callers may reuse their buffer (BYOB reads)
    return false;
  }

  /** Half-close our direction once everything written so far has been sent. */
  end(): void {
    if (this.state === 'closed' || this.finQueued) return;
    this.finQueued = true;
    this.flushPending();
  }

  /** Abort both directions; the peer sees RST with `code`. */
  reset(code: ResetCodeValue = ResetCode.CANCEL, message = 'cancelled'): void {
    if (this.state === 'closed') return;
    this.host.sendReset(this.id, code, message);
    this.close(new ZksError('ZKS_ERR_STREAM_RESET', message));
  }

  /** The consumer delivered `n` received bytes; return credit in batches of a quarter window. */
  consume(n: number): void {
    if (this.state === 'closed' || this.finReceived) return;
    this.unreturned += n;
    if (this.unreturned >= Math.min(this.window >>> 2, MAX_CREDIT_BATCH)) {
      const inc = this.unreturned;
      this.unreturned = 0;
      this.recvCredit += inc;
      this.host.sendWindowUpdate(this.id, inc);
    }
  }

  /** Acceptor side: the target is connected. */
  accept(): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    this.host.sendResult(this.id, ConnectResult.OK, this.window, '');
    this.flushPending();
  }

  /** Acceptor side: the target could not be reached. */
  reject(code: ConnectResultCode, message: string): void {
    if (this.state !== 'connecting') return;
    this.host.sendResult(this.id, code, 0, message);
    this.close(new ZksError('ZKS_ERR_STREAM_RESET', message));
  }

  // ---- called by the session for incoming frames ----

  handleResult(code: ConnectResultCode, window: number, message: string): void {
    if (this.state !== 'connecting') return;
    if (code === ConnectResult.OK) {
      this.state = 'open';
      this.peerCredit = Math.min(window, MAX_STREAM_WINDOW);
      this.sendCredit = Math.min(this.peerCredit, this.sendCreditLimit);
      const waited = this.pending.length > 0;
      this.onResult?.(code, message);
      this.flushPending();
      if (waited && this.pending.length === 0 && !this.finQueued && this.state === 'open') this.onDrain?.();
    } else {
      this.onResult?.(code, message);
      this.close(new ZksError('ZKS_ERR_STREAM_RESET', message));
    }
  }

  handleData(data: Uint8Array): void {
    if (this.state !== 'open' || this.finReceived) {
      // DATA after FIN, or before the stream was accepted, is a peer bug that concerns only this stream.
      if (this.state !== 'closed') this.fail(ResetCode.PROTOCOL, 'DATA after FIN or before CONNECT_RESULT');
      return;
    }
    if (data.length > this.recvCredit) {
      this.fail(ResetCode.FLOW_CONTROL, `peer sent ${data.length} bytes with only ${this.recvCredit} credit`);
      return;
    }
    this.recvCredit -= data.length;
    this.bytesReceived += data.length;
    if (this.dataHandler) this.dataHandler(data);
    else this.early.push(data);
  }

  handleWindowUpdate(increment: number): void {
    if (this.state === 'closed') return;
    if (this.peerCredit + increment > MAX_STREAM_WINDOW) {
      this.fail(ResetCode.FLOW_CONTROL, 'WINDOW_UPDATE overflows the maximum window');
      return;
    }
    // Blocked = a writer saw write() return false, or spent the credit exactly and now waits on `writable`.
    const wasBlocked = this.pending.length > 0 || this.sendCredit === 0;
    this.peerCredit += increment;
    this.sendCredit = Math.min(this.sendCredit + increment, this.sendCreditLimit);
    this.flushPending();
    if (wasBlocked && this.pending.length === 0 && !this.finQueued && this.state === 'open') this.onDrain?.();
  }

  handleFin(): void {
    if (this.state === 'closed' || this.finReceived) return;
    this.finReceived = true;
    if (this.endHandler) {
      this.endDelivered = true;
      this.endHandler();
    }
    this.maybeClosed();
  }

  handleReset(message: string): void {
    if (this.state === 'closed') return;
    this.close(new ZksError('ZKS_ERR_STREAM_RESET', `stream reset by peer: ${message}`));
  }

  /** The session lifted its send pause (host.sendPaused): a writer waiting on `writable` may go on. */
  sessionResumed(): void {
    if (this.state === 'open' && this.pending.length === 0 && !this.finQueued && this.sendCredit > 0) this.onDrain?.();
  }

  /** Session ended under this stream. */
  abort(err: ZksError): void {
    this.close(err);
  }

  private fail(code: ResetCodeValue, message: string): void {
    this.reset(code, message);
  }

  private transmit(data: Uint8Array): void {
    this.sendCredit -= data.length;
    this.peerCredit -= data.length;
    this.bytesSent += data.length;
    this.host.sendData(this.id, data);
  }

  private flushPending(): void {
    if (this.state !== 'open') return;
    while (this.pending.length > 0 && this.sendCredit > 0) {
      const head = this.pending[0];
      const n = Math.min(head.length, this.sendCredit);
      this.transmit(head.subarray(0, n));
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    if (this.finQueued && !this.finSent && this.pending.length === 0) {
      this.finSent = true;
      this.host.sendFin(this.id);
      this.maybeClosed();
    }
  }

  private maybeClosed(): void {
    if (this.finSent && this.finReceived) this.close(null);
  }

  private close(err: ZksError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.pending = [];
    this.host.release(this, err);
    this.onClose?.(err);
  }
}
