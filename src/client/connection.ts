// One encrypted WebSocket to the relay, on either path:
//   direct: HELLO (keyed by the Worker key) rides in the upgrade's Sec-WebSocket-Protocol; the Worker answers.
//   room:   a room token (Worker key) rides in the upgrade; HELLO (keyed by the room PSK) is the first message
//           and the exit peer answers through the blind room.
// Either way the REPLY is the first binary message, then a SecureLink + Mux carries client streams. Keepalive
// pings every `pingIntervalMs` (Cloudflare drops idle WebSockets after ~100 s) double as RTT probe and liveness check.

import type { LookupFunction } from 'node:net';
import WebSocket from 'ws';
import { createClientHello, encodeBase64Url, finishClientHandshake } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import { nodeCrypto } from '../crypto/node';
import { createRoomToken, RoomRole } from '../crypto/room';
import type { CipherSuite } from '../crypto/types';
import { MAX_RECORD_SIZE } from '../protocol/constants';
import { ZksError } from '../protocol/errors';
import { parseRoomControl, ROOM_PATH_PREFIX, ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX, SID_HEADER_SIZE } from '../protocol/room-wire';
import { SecureLink } from '../link/secure-link';

export interface RoomPath {
  roomId: Uint8Array;
  psk: Uint8Array;
}

export interface ConnectionOptions {
  url: string;
  /** The Worker key (direct mode: also the handshake PSK). */
  key: Uint8Array;
  /** Set for relay mode: streams go through this room to its exit peer, end-to-end encrypted. */
  room?: RoomPath;
  suites?: CipherSuite[];
  window?: number;
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
  /** Resolves the relay host (zksd pins the addresses it resolved before routing everything into the TUN). */
  lookup?: LookupFunction;
  onClose?: (conn: TunnelConnection, err: ZksError | null) => void;
}

let nextConnectionId = 1;

function roomUrl(base: string, roomId: Uint8Array): string {
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${ROOM_PATH_PREFIX}${encodeBase64Url(roomId)}`;
  return u.toString();
}

function httpRefusal(status: number, room: boolean): ZksError {
  if (status === 401) {
    return new ZksError('ZKS_ERR_AUTH', 'the relay refused our key proof: check --key (and that this clock is within 10 minutes of real time)');
  }
  if (status === 503 && room) {
    return new ZksError('ZKS_ERR_EXIT_OFFLINE', 'the exit peer of this room is offline: start `zks exit-peer` with the same --room secret');
  }
  return new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `the relay answered HTTP ${status} instead of a WebSocket: check the --relay URL`);
}

/** How long a failed link waits for the WebSocket close handshake before cutting the TCP connection. */
const CLOSE_HANDSHAKE_MS = 5_000;

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

  static async open(opts: ConnectionOptions): Promise<TunnelConnection> {
    const psk = opts.room ? opts.room.psk : opts.key;
    const { hello, state } = await createClientHello(nodeCrypto, psk, { suites: opts.suites });
    const url = opts.room ? roomUrl(opts.url, opts.room.roomId) : opts.url;
    const protocols = opts.room
      ? [ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX + encodeBase64Url(await createRoomToken(nodeCrypto, opts.key, opts.room.roomId, RoomRole.CLIENT))]
      : ['zks1', `zks1.${encodeBase64Url(hello)}`];
    const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    const ws = new WebSocket(url, protocols, {
      perMessageDeflate: false,
      maxPayload: MAX_RECORD_SIZE + 4096 + SID_HEADER_SIZE,
      handshakeTimeout: timeoutMs,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });

    return new Promise<TunnelConnection>((resolve, reject) => {
      let conn: TunnelConnection | null = null;
      let settled = false;
      const fail = (err: ZksError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new ZksError('ZKS_ERR_TIMEOUT', `relay ${opts.url} did not complete the handshake within ${timeoutMs} ms`)),
        timeoutMs,
      );

      ws.on('unexpected-response', (_req, res) => fail(httpRefusal(res.statusCode ?? 0, !!opts.room)));
      ws.on('error', (err) => fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `cannot reach relay ${opts.url}: ${err.message}`)));
      // Room mode: the relay cannot check the room PSK, so HELLO goes in-band to the exit peer.
      if (opts.room) ws.on('open', () => ws.send(hello));

      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          // Only the room speaks text: an error notice right before it closes this WebSocket.
          const control = parseRoomControl(data.toString());
          const err = control instanceof ZksError
            ? control
            : new ZksError(control.t === 'error' && control.code === 'EXIT_OFFLINE' ? 'ZKS_ERR_EXIT_OFFLINE' : 'ZKS_ERR_CONNECTION_LOST',
              control.t === 'error' ? `relay room: ${control.message}` : 'unexpected room control message');
          if (conn) conn.link.socketClosed(err.message);
          else fail(err);
          return;
        }
        if (conn) {
          conn.link.receive(data);
          return;
        }
        if (settled) return;
        // First binary message: the handshake REPLY.
        void finishClientHandshake(nodeCrypto, state, data).then(async (keys) => {
          if (keys instanceof ZksError) return fail(keys);
          const { sealer, opener } = await createChannel(nodeCrypto, keys);
          if (settled) return;
          const link = new SecureLink(
            { send: (d) => ws.send(d), close: (code, reason) => ws.close(code, reason) },
            sealer,
            opener,
            {
              role: 'client',
              window: opts.window,
              scheduleFlush: (fn) => void setImmediate(fn),
              onClose: (err) => conn?.finish(err, opts),
            },
          );
          conn = new TunnelConnection(ws, link, keys.suite, opts.pingIntervalMs ?? 25_000);
          settled = true;
          clearTimeout(timer);
          conn.startKeepalive();
          resolve(conn);
        });
      });
      ws.on('close', (code, reason) => {
        const why = `relay closed the WebSocket (${code}${reason.length ? ` ${reason}` : ''})`;
        if (conn) conn.link.socketClosed(why);
        else fail(new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `${why} during the handshake`));
      });
    });
  }

  private startKeepalive(): void {
    this.mux.ping(); // an RTT for status views right away, not 25 s later
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
    // The close frame carrying the real code (ours, or the relay's after its GOAWAY) is on its way: terminating
    // now would drop it (the other side sees 1006). Only a peer that never completes the handshake is cut off.
    if (err && this.ws.readyState !== WebSocket.CLOSED) {
      const cut = setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
      this.ws.once('close', () => clearTimeout(cut));
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
