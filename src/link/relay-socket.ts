// The WebSocket to the relay, for the client (client/connection.ts) and the exit peer (exit/room-connection.ts)
// alike: opening under one deadline with errors that say what to do next, a keepalive that declares a silent path
// dead, and a close reason that stays true — the relay's own code and reason, or ours when we ended the socket.
// Node only (the `ws` package). Listeners are attached before the upgrade completes, so no message is missed
// between `opened` resolving and the caller's next step.

import type { LookupFunction, Socket } from 'node:net';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { ZksError } from '../errors/zks-error';
import { TurnBudget } from './turn-budget';
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from '../protocol/utf8';

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
   * Opens the TCP connection under the WebSocket instead of ws, resolving once connected (TLS, for wss:, is still
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

/**
 * ws's createConnection over `openTcp`, in node:http's callback form (the socket comes later): ws gives it the URL's
 * host and port, and would do TLS itself otherwise. A socket that arrives after ws gave up is destroyed by http.
 */
function connectVia(openTcp: (host: string, port: number) => Promise<Socket>, secure: boolean): WebSocket.ClientOptions['createConnection'] {
  type Created = (err: Error | null, socket?: Socket) => void;
  return ((o: { host: string; port: number | string; servername?: string }, created: Created) => {
    const port = Number(o.port);
    openTcp(o.host, port).then((socket) => {
      // As ws's own tlsConnect, plus our socket: host stays for the certificate check, SNI only for names.
      created(null, secure ? tlsConnect({ ...o, port, socket, servername: o.servername ?? (isIP(o.host) ? '' : o.host) }) : socket);
    }, (err: Error) => created(err));
    return undefined;
  }) as unknown as WebSocket.ClientOptions['createConnection'];
}

/**
 * The masking key of every frame we send (RFC 6455 §5.3). Masking exists so that script-chosen bytes never appear
 * verbatim on the wire to a confused intermediary (§10.3); after the upgrade everything we send is AEAD
 * ciphertext (or a fixed-format handshake), which nobody can choose, so a random key would only cost a copy of
 * every record (ws cannot mask a caller's buffer in place) — one more buffer per record at 100 MB/s. A zero key
 * is a valid key: the relay cannot tell it from a random one. docs/PROTOCOL.md §1.
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

export class RelaySocket {
  readonly ws: WebSocket;
  /** Resolves on the upgrade; rejects with ZKS_ERR_TIMEOUT, `refused(status)` or ZKS_ERR_RELAY_UNREACHABLE. */
  readonly opened: Promise<void>;
  /** Any message counts: the path is alive. */
  lastReceiveAt = Date.now();
  private lostReason = '';
  private keepaliveTimer: NodeJS.Timeout | null = null;

  constructor(opts: RelaySocketOptions) {
    const ws = new WebSocket(opts.url, opts.protocols, {
      perMessageDeflate: false,
      generateMask: zeroMask,
      maxPayload: opts.maxPayload, // no handshakeTimeout: the deadline below is the one, with its own error
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      ...(opts.openTcp ? { createConnection: connectVia(opts.openTcp, new URL(opts.url).protocol === 'wss:') } : {}),
    });
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
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        fail(opts.refused(res.statusCode ?? 0));
      });
      // After the upgrade an error is always followed by 'close', which reports it.
      ws.on('error', (err) => fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `cannot reach relay ${opts.relayName}: ${err.message}`)));
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        isOpen = true;
        clearTimeout(timer);
        resolve();
      });
      ws.on('close', (code: number, reason: Buffer) => {
        this.stopKeepalive();
        const why = this.lostReason || `relay closed the WebSocket (${code}${reason.length ? ` ${reason.toString('utf8')}` : ''})`;
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
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends while open; afterwards the data has nowhere to go and the close event tells the caller why. `written`
   * runs once ws has handed `data` to the kernel (ws keeps a reference until then), never if it was dropped.
   */
  send(data: Uint8Array | string, written?: () => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
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
