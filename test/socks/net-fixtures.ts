// Real-socket scaffolding for the server tests: upstream servers (HTTP and raw echo) on loopback, a connect()
// implementation that dials them over plain TCP and splices the client socket on (test stand-in for the tunnel),
// raw-socket clients, and a curl runner. Everything listens on port 0 and is closed by the caller.

import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ConnectResult } from '../../src/protocol/constants';
import type { Target } from '../../src/protocol/address';
import type { ConnectOutcome, ProxyRequestInfo } from '../../src/socks/server';

export async function listen<S extends Server | HttpServer>(server: S, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export function close(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** An HTTP server answering "hello via <method> <url>" (used behind curl). */
export function upstreamHttp(): HttpServer {
  return createHttpServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(`hello via ${req.method} ${req.url}\n`);
  });
}

/** A TCP echo server; sockets are tracked so close() does not wait for them. */
export function upstreamEcho(): Server {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  server.on('close', () => { for (const s of sockets) s.destroy(); });
  return server;
}

export interface Recorded { target: Target; info: ProxyRequestInfo }

/**
 * A connect() that dials the target directly (localhost → 127.0.0.1) and splices the client socket onto it,
 * recording each call. `override` may answer instead (to simulate refusal, timeouts, throws).
 */
export function directConnect(
  calls: Recorded[],
  override?: (target: Target, info: ProxyRequestInfo) => Promise<ConnectOutcome> | undefined,
) {
  return (target: Target, info: ProxyRequestInfo): Promise<ConnectOutcome> => {
    calls.push({ target, info });
    const o = override?.(target, info);
    if (o) return o;
    return new Promise((resolve) => {
      const host = target.host === 'localhost' ? '127.0.0.1' : target.host;
      const up = netConnect({ host, port: target.port });
      up.once('error', (err: NodeJS.ErrnoException) => resolve({
        ok: false,
        code: err.code === 'ECONNREFUSED' ? ConnectResult.REFUSED : ConnectResult.GENERAL_FAILURE,
        message: err.message,
      }));
      up.once('connect', () => resolve({
        ok: true,
        attach(socket, head) {
          up.on('error', () => socket.destroy());
          socket.on('error', () => up.destroy());
          socket.on('close', () => up.destroy());
          up.on('close', () => socket.destroy());
          if (head.length > 0) up.write(head);
          socket.pipe(up);
          up.pipe(socket);
        },
      }));
    });
  };
}

export interface CurlResult { code: number; stdout: string; stderr: string }

export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A raw client: connect, write `hello`, and collect everything until the server closes or `until` is satisfied. */
export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('error', reject);
    s.once('connect', () => resolve(new RawClient(s)));
  });
}

export class RawClient {
  received = Buffer.alloc(0);
  closed: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]); // test code: simplicity over speed
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => {
      for (const w of this.waiters.splice(0)) w();
      resolve();
    }));
  }

  write(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  /** Resolves once at least n bytes arrived (or rejects if the socket closes first). */
  async readAtLeast(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      if (this.socket.destroyed) throw new Error(`closed after ${this.received.length} of ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timeout after ${this.received.length} of ${n} bytes`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
    return this.received;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Leaves abruptly (TCP RST). */
  reset(): void {
    this.socket.resetAndDestroy();
  }
}
