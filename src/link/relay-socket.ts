// The WebSocket to the relay, for the client (client/connection.ts) and the exit peer (exit/room-connection.ts)
// alike: opening under one deadline with errors that say what to do next, a keepalive that declares a silent path
// dead, and a close reason that stays true — the relay's own code and reason, or ours when we ended the socket.
// Node only (websocket/client.ts). Listeners are attached before the upgrade completes, so no message is missed
// between `opened` resolving and the caller's next step.

import type { LookupFunction, Socket } from 'node:net';
import { ZksError } from '../errors/zks-error';
import { TurnBudget } from './turn-budget';
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from '../protocol/utf8';
import { WsClient, WsState } from './websocket/client';

/** Silence allowed on top of two ping intervals before the path is declared dead (every ping is answered). */
export const LIVENESS_GRACE_MS = 5_000;

export interface RelaySocketOptions {
  url: string;
  protocols: string[];
  /** What to call the relay in messages (a base URL: never a room URL, whose id lets a key holder in). */
  relayName: string;
  /** Deadline for the WebSocket upgrade. */
  openTimeoutMs: number;
  maxPayload: number;
  /** Resolves the relay host (zksd pins the addresses it resolved before routing everything into the TUN). */
  lookup?: LookupFunction;
  /**
   * Opens the TCP connection under the WebSocket instead of net.connect, resolving once connected (TLS, for wss:, is still
   * added here). zksd passes sockets marked for its kill switch, connected to the relay addresses it pinned.
   */
  openTcp?: (host: string, port: number) => Promise<Socket>;
  /** The error for an HTTP answer instead of an upgrade: each caller knows what to advise (401: check --key). */
  refused(status: number): ZksError;
  onMessage(data: Buffer, isBinary: boolean): void;
  /**
   * Once `opened` has resolved: the socket is gone. `why` is ours when we ended it (liveness, a bad message),
   * else the relay's close code and reason; `code` is the close code (1006 when it dropped without one).
   */
  onClose(why: string, code: number): void;
}

export class RelaySocket {
  readonly ws: WsClient;
  /** Resolves on the upgrade; rejects with ZKS_ERR_TIMEOUT, `refused(status)` or ZKS_ERR_RELAY_UNREACHABLE. */
  readonly opened: Promise<void>;
  /** Any message counts: the path is alive. */
  lastReceiveAt = Date.now();
  private lostReason = '';
  private keepaliveTimer: NodeJS.Timeout | null = null;

  constructor(opts: RelaySocketOptions) {
    // No deadline inside the client: the one below is the deadline, with its own error.
    const ws = new WsClient({ url: opts.url, protocols: opts.protocols, maxPayload: opts.maxPayload, lookup: opts.lookup, openTcp: opts.openTcp });
    this.ws = ws;
    let isOpen = false;
    this.opened = new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: ZksError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new ZksError('ZKS_ERR_TIMEOUT', `relay ${opts.relayName} did not accept the WebSocket within ${opts.openTimeoutMs} ms`)),
        opts.openTimeoutMs,
      );
      ws.on('refused', (status: number) => fail(opts.refused(status)));
      ws.on('error', (err: Error) => {
        // After the upgrade an error (the relay broke the protocol) is followed by 'close', which reports it.
        if (isOpen) this.lostReason ||= `relay ${opts.relayName} broke the WebSocket protocol: ${err.message}`;
        else fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `cannot reach relay ${opts.relayName}: ${err.message}`));
      });
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        isOpen = true;
        clearTimeout(timer);
        resolve();
      });
      ws.on('close', (code: number, reason: string) => {
        this.stopKeepalive();
        const why = this.lostReason || `relay closed the WebSocket (${code}${reason ? ` ${reason}` : ''})`;
        if (isOpen) opts.onClose(why, code);
        else fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `${why} before the upgrade completed`));
      });
    });
    const budget = new TurnBudget(() => ws.pause(), () => ws.resume());
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastReceiveAt = Date.now();
      opts.onMessage(data, isBinary);
      budget.spend(data.length);
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WsState.OPEN;
  }

  /**
   * Sends while open; afterwards the data has nowhere to go and the close event tells the caller why. `written`
   * runs once ws has handed `data` to the kernel (ws keeps a reference until then), never if it was dropped.
   */
  send(data: Uint8Array | string, written?: () => void): void {
    if (this.ws.readyState !== WsState.OPEN) return;
    if (written) this.ws.send(data, (err) => err || written());
    else this.ws.send(data);
  }

  /**
   * Every `intervalMs`: `ping()`, unless nothing arrived for two intervals + LIVENESS_GRACE_MS — the path is dead
   * even if TCP has not noticed, so the socket is terminated with that reason. Stops when the socket closes.
   */
  startKeepalive(intervalMs: number, ping: () => void): void {
    this.stopKeepalive();
    this.keepaliveTimer = setInterval(() => {
      const silentMs = Date.now() - this.lastReceiveAt;
      if (silentMs > intervalMs * 2 + LIVENESS_GRACE_MS) this.terminate(`nothing received from the relay for ${silentMs} ms`);
      else ping();
    }, intervalMs);
    this.keepaliveTimer.unref();
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
  }

  /**
   * Closing handshake: the relay answers with its close frame, and a close frame it had already sent wins (its code
   * reaches onClose). `why`, when given, is what onClose reports instead of the relay's answer.
   */
  close(code: number, reason: string, why = ''): void {
    this.lostReason ||= why;
    try {
      this.ws.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
    } catch {
      this.ws.terminate(); // still connecting: there is no handshake to close
    }
  }

  /** Drops the socket at once, as if the network failed; onClose reports `why` (1006). */
  terminate(why: string): void {
    this.lostReason ||= why;
    this.ws.terminate();
  }
}
