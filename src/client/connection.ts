// One encrypted WebSocket to the relay: the ZKS handshake (HELLO in the upgrade's Sec-WebSocket-Protocol,
// REPLY as the first message), then a SecureLink + Mux carrying client streams. Keepalive pings every
// `pingIntervalMs` (Cloudflare drops WebSockets idle for ~100 s) double as the RTT probe and the liveness check.

import WebSocket from 'ws';
import { createClientHello, encodeBase64Url, finishClientHandshake } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import { nodeCrypto } from '../crypto/node';
import type { CipherSuite } from '../crypto/types';
import { MAX_RECORD_SIZE } from '../protocol/constants';
import { ZksError } from '../protocol/errors';
import { SecureLink } from '../link/secure-link';

export interface ConnectionOptions {
  url: string;
  key: Uint8Array;
  suites?: CipherSuite[];
  window?: number;
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
  onClose?: (conn: TunnelConnection, err: ZksError | null) => void;
}

let nextConnectionId = 1;

export class TunnelConnection {
  readonly id = nextConnectionId++;
  private pingTimer: NodeJS.Timeout | null = null;
  private closedFlag = false;

  private constructor(
    readonly ws: WebSocket,
    readonly link: SecureLink,
    readonly suite: CipherSuite,
    private readonly pingIntervalMs: number,
  ) {}

  get mux() {
    return this.link.mux;
  }
  get closed(): boolean {
    return this.closedFlag || this.link.mux.isClosed;
  }

  static open(opts: ConnectionOptions): Promise<TunnelConnection> {
    const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    return new Promise<TunnelConnection>((resolve, reject) => {
      let settled = false;
      let conn: TunnelConnection | null = null;
      const fail = (err: ZksError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws?.terminate();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new ZksError('ZKS_ERR_TIMEOUT', `relay ${opts.url} did not complete the handshake within ${timeoutMs} ms`)),
        timeoutMs,
      );
      let ws: WebSocket | undefined;
      void createClientHello(nodeCrypto, opts.key, { suites: opts.suites }).then(({ hello, state }) => {
        if (settled) return;
        ws = new WebSocket(opts.url, ['zks1', `zks1.${encodeBase64Url(hello)}`], {
          perMessageDeflate: false,
          maxPayload: MAX_RECORD_SIZE + 4096,
          handshakeTimeout: timeoutMs,
        });
        const sock = ws;
        sock.on('unexpected-response', (_req, res) => {
          const hint = res.statusCode === 401
            ? 'the relay refused our key proof: check --key (and that this clock is within 10 minutes of real time)'
            : `the relay answered HTTP ${res.statusCode} instead of a WebSocket: check the --relay URL`;
          fail(new ZksError(res.statusCode === 401 ? 'ZKS_ERR_AUTH' : 'ZKS_ERR_RELAY_UNREACHABLE', hint));
        });
        sock.on('error', (err) => {
          if (!settled) fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `cannot reach relay ${opts.url}: ${err.message}`));
        });
        sock.on('message', (data: Buffer, isBinary: boolean) => {
          if (conn) {
            if (isBinary) conn.link.receive(data);
            else conn.link.mux.close(new ZksError('ZKS_ERR_MALFORMED_FRAME', 'text message from relay'));
            return;
          }
          if (settled) return;
          // First message: the handshake REPLY.
          void finishClientHandshake(nodeCrypto, state, data).then(async (keys) => {
            if (keys instanceof ZksError) return fail(keys);
            const { sealer, opener } = await createChannel(nodeCrypto, keys);
            if (settled) return;
            const link = new SecureLink(
              { send: (d) => sock.send(d), close: (code, reason) => sock.close(code, reason) },
              sealer,
              opener,
              {
                role: 'client',
                window: opts.window,
                scheduleFlush: (fn) => void setImmediate(fn),
                onClose: (err) => conn?.finish(err, opts),
              },
            );
            conn = new TunnelConnection(sock, link, keys.suite, opts.pingIntervalMs ?? 25_000);
            settled = true;
            clearTimeout(timer);
            conn.startKeepalive();
            resolve(conn);
          });
        });
        sock.on('close', (code, reason) => {
          if (conn) conn.link.socketClosed(`relay closed the WebSocket (${code}${reason.length ? ` ${reason}` : ''})`);
          else fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `relay closed the WebSocket during the handshake (${code})`));
        });
      }, (err: Error) => fail(new ZksError('ZKS_ERR_HANDSHAKE', err.message)));
    });
  }

  private startKeepalive(): void {
    this.pingTimer = setInterval(() => {
      const silentFor = Date.now() - this.mux.lastReceiveAt;
      if (silentFor > this.pingIntervalMs * 2 + 5_000) {
        this.ws.terminate(); // no PONG for two intervals: the path is dead even if TCP has not noticed
        return;
      }
      this.mux.ping();
    }, this.pingIntervalMs);
    this.pingTimer.unref();
  }

  private finish(err: ZksError | null, opts: ConnectionOptions): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      if (err) this.ws.terminate();
    }
    opts.onClose?.(this, err);
  }

  /** Graceful close: GOAWAY, then the WebSocket closes after queued records. */
  close(): void {
    this.link.close();
  }

  /** Abrupt close, as if the network died. */
  terminate(): void {
    this.ws.terminate();
  }
}
