// A WebSocket client (RFC 6455) for the relay link, in place of the `ws` package: the receive path is ours
// (frame-reader.ts copies each message once into a buffer the link may keep and open in place), so records can
// later be received into recycled buffers, which `ws` cannot do. Measured (nc, 1 GB, alternating with the `ws`
// build): the same CPU per GB. Reading into one reused buffer with net's `onread` was tried and cost 1.8x more
// CPU per GB downloaded (the copy out of it into fresh memory dominated), so chunks come from 'data' events.
// Frames we send carry a zero masking key, so a record goes out as header + payload in one writev, never copied.
// Masking exists so that script-chosen bytes never appear verbatim on the wire to a confused intermediary (§10.3);
// after the upgrade everything we send is AEAD ciphertext (or a fixed-format handshake), which nobody can choose,
// and a zero key is a valid key: the relay cannot tell it from a random one (docs/PROTOCOL.md §1). Events: 'open', 'refused' (status: an HTTP answer instead of the upgrade), 'error'
// (before 'open': it failed; after: 'close' follows), 'message' (data, isBinary), 'close' (code, reason), once.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from '../../protocol/utf8';
import { WsCloseCode, WsFrameReader, WsProtocolError } from './frame-reader';
import { parseUpgradeResponse, UPGRADE_HEAD_LIMIT } from './upgrade';

/** How long a closing handshake may take before the socket is dropped (as `ws` does). */
const CLOSE_TIMEOUT_MS = 30_000;

export const WsState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type WsState = (typeof WsState)[keyof typeof WsState];

export interface WsClientOptions {
  url: string;
  protocols: string[];
  maxPayload: number;
  lookup?: LookupFunction;
  /** Opens the TCP connection instead of net.connect, resolving once connected (TLS, for wss:, is added here). */
  openTcp?: (host: string, port: number) => Promise<Socket>;
  /** wss: certificates to trust instead of the system's (a relay behind a private CA). */
  ca?: string | Buffer;
}

function frameHeader(opcode: number, length: number): Buffer {
  const size = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const h = Buffer.allocUnsafe(size + 4);
  h[0] = 0x80 | opcode;
  if (size === 2) h[1] = 0x80 | length;
  else if (size === 4) {
    h[1] = 0x80 | 126;
    h.writeUInt16BE(length, 2);
  } else {
    h[1] = 0x80 | 127;
    h.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2);
    h.writeUInt32BE(length >>> 0, 6);
  }
  h.writeUInt32BE(0, size); // the zero masking key: the payload goes out as it is
  return h;
}

export class WsClient extends EventEmitter {
  readyState: WsState = WsState.CONNECTING;
  private socket: Socket | null = null;
  private head: Buffer | null = Buffer.alloc(0);
  private readonly reader: WsFrameReader;
  private readonly key = randomBytes(16).toString('base64');
  private readonly url: URL;
  private closeSent = false;
  /** The server's close frame arrived: nothing after it counts (RFC 6455 §5.5.1), not even a second close frame. */
  private closeReceived = false;
  private closeCode: number = WsCloseCode.ABNORMAL;
  private closeReason = '';
  private closeTimer: NodeJS.Timeout | null = null;
  private gone = false;

  constructor(private readonly opts: WsClientOptions) {
    super();
    this.url = new URL(opts.url);
    this.reader = new WsFrameReader(opts.maxPayload, {
      message: (data, binary) => this.emit('message', data, binary),
      ping: (payload) => this.sendFrame(0xa, payload),
      pong: () => {},
      close: (code, reason) => this.serverClosed(code, reason),
    });
    this.connect().catch((err: Error) => this.fail(err));
  }

  /** The TCP (or TLS) socket once connected; tests use it to stall or cut the link underneath. */
  get rawSocket(): Socket | null {
    return this.socket;
  }

  /** Bytes handed to send() that the kernel has not taken yet. */
  get bufferedAmount(): number {
    return this.socket?.writableLength ?? 0;
  }

  private async connect(): Promise<void> {
    const secure = this.url.protocol === 'wss:';
    if (!secure && this.url.protocol !== 'ws:') throw new Error(`not a WebSocket URL: ${this.url.protocol}`);
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.url.port || (secure ? 443 : 80));
    const tcp = this.opts.openTcp ? await this.opts.openTcp(host, port) : null;
    if (this.gone) return void tcp?.destroy();
    let socket: Socket;
    if (secure) {
      socket = tlsConnect({
        host, port, servername: isIP(host) ? '' : host, ALPNProtocols: ['http/1.1'], ...(this.opts.ca ? { ca: this.opts.ca } : {}),
        ...(tcp ? { socket: tcp } : this.opts.lookup ? { lookup: this.opts.lookup } : {}),
      });
      socket.once('secureConnect', () => this.sendUpgrade());
    } else if (tcp) {
      socket = tcp;
      this.sendUpgrade(socket);
    } else {
      socket = netConnect({ host, port, ...(this.opts.lookup ? { lookup: this.opts.lookup } : {}) });
      socket.once('connect', () => this.sendUpgrade());
    }
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (err) => {
      if (this.readyState === WsState.CONNECTING) this.fail(err);
      // after the upgrade, 'close' follows and reports 1006
    });
    socket.on('end', () => {
      if (this.readyState === WsState.CONNECTING) return this.fail(new Error('the server closed the connection before the upgrade completed'));
      socket.end(); // the server is done; a close frame, if any, came first
    });
    socket.on('close', () => this.closed());
  }

  private sendUpgrade(socket = this.socket!): void {
    if (this.gone) return;
    const path = `${this.url.pathname || '/'}${this.url.search}`;
    socket.setNoDelay(true);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${this.url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n` +
        (this.opts.protocols.length ? `Sec-WebSocket-Protocol: ${this.opts.protocols.join(', ')}\r\n` : '') +
        '\r\n',
    );
  }

  private received(chunk: Uint8Array): void {
    if (this.gone || this.closeReceived) return;
    if (this.head) {
      const head: Buffer = Buffer.concat([this.head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > UPGRADE_HEAD_LIMIT) this.fail(new Error(`the server's answer to the upgrade is longer than ${UPGRADE_HEAD_LIMIT} bytes`));
        else this.head = head;
        return;
      }
      this.head = null;
      const answer = parseUpgradeResponse(head.subarray(0, end).toString('latin1'), this.key, this.opts.protocols);
      if (typeof answer === 'number') {
        this.gone = true;
        this.readyState = WsState.CLOSED;
        this.socket?.destroy();
        this.emit('refused', answer);
        return;
      }
      if (answer instanceof Error) return this.fail(answer);
      this.readyState = WsState.OPEN;
      this.emit('open');
      chunk = head.subarray(end + 4);
      if (chunk.length === 0 || this.readyState !== WsState.OPEN) return;
    }
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof WsProtocolError)) throw err;
      this.emit('error', err);
      this.closeCode = err.closeCode;
      this.closeReason = err.message;
      this.startClosing(err.closeCode, '');
      this.socket?.end();
    }
  }

  /** Before 'open': the attempt failed; reported once, as 'error'. */
  private fail(err: Error): void {
    if (this.gone || this.readyState !== WsState.CONNECTING) return;
    this.gone = true;
    this.readyState = WsState.CLOSED;
    this.socket?.destroy();
    this.emit('error', err);
  }

  private serverClosed(code: number, reason: string): void {
    if (this.closeReceived) return;
    this.closeReceived = true;
    this.closeCode = code;
    this.closeReason = reason;
    // Echo the code (RFC 6455 §5.5.1) unless we began the handshake; the server then closes the TCP connection.
    this.startClosing(code === WsCloseCode.NO_STATUS ? 0 : code, '');
    this.socket?.end();
  }

  private startClosing(code: number, reason: string): void {
    if (this.readyState === WsState.OPEN) this.readyState = WsState.CLOSING;
    if (this.closeSent) return;
    this.closeSent = true;
    let payload = Buffer.alloc(0);
    if (code) {
      reason = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES); // a control frame carries at most 125 bytes
      payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
      payload.writeUInt16BE(code, 0);
      payload.write(reason, 2);
    }
    this.sendFrame(0x8, payload, true);
    this.closeTimer = setTimeout(() => this.socket?.destroy(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  private closed(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    if (this.readyState === WsState.CONNECTING) return this.fail(new Error('the connection closed before the upgrade completed'));
    if (this.readyState === WsState.CLOSED) return;
    this.readyState = WsState.CLOSED;
    this.emit('close', this.closeCode, this.closeReason);
  }

  private sendFrame(opcode: number, payload: Uint8Array, control = false, written?: (err?: Error | null) => void): void {
    const socket = this.socket;
    if (!socket || socket.destroyed || (this.closeSent && !control)) return;
    socket.cork();
    socket.write(frameHeader(opcode, payload.length));
    if (payload.length) socket.write(payload, written);
    else if (written) socket.write(payload, written);
    socket.uncork();
  }

  /** One message; `written` runs once the kernel has it (never when it was dropped: not open, or closing). */
  send(data: Uint8Array | string, written?: (err?: Error | null) => void): void {
    if (this.readyState !== WsState.OPEN) return;
    if (typeof data === 'string') this.sendFrame(0x1, Buffer.from(data), false, written);
    else this.sendFrame(0x2, data, false, written);
  }

  /** Starts the closing handshake; throws while still connecting (there is no handshake to close: terminate). */
  close(code: number, reason: string): void {
    if (this.readyState === WsState.CONNECTING) throw new Error('the WebSocket is not open yet');
    if (this.readyState === WsState.CLOSED) return;
    this.startClosing(code, reason);
  }

  /** Drops the connection at once; 'close' reports 1006 (or 'error', while connecting). */
  terminate(): void {
    if (this.readyState === WsState.CONNECTING) return this.fail(new Error('the WebSocket was terminated before the upgrade completed'));
    this.closeCode = WsCloseCode.ABNORMAL;
    this.closeReason = '';
    this.socket?.destroy();
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }
}
