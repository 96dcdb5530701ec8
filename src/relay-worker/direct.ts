// Direct mode: one CONNECT stream = one outbound TCP socket from connect() (cloudflare:sockets).
// workerd gives no backpressure in either direction, so the stream's credit does it: we read the socket only
// while the peer has granted credit, and return upload credit only after socket writes resolve. Reads use a
// BYOB reader growing to 64 KiB blocks (the default reader yields 4 KiB chunks, which costs ~40% throughput).
// A stream cut by RST, idle timeout or the loss of its WebSocket ends the target connection at once. Neither
// workerd nor the documented connect() API can send a TCP RST: abort()/cancel() do not reach the connection
// (it stays ESTABLISHED until garbage collection, then gets a FIN anyway), so we close our sending side now —
// the target sees a prompt FIN, which it cannot tell from a clean end (README: "What a cut stream looks like").

import { connect } from 'cloudflare:sockets';
import { ConnectResult, ResetCode } from '../protocol/constants';
import { hostKind, isLocalOrPrivate, type Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';
import type { RelayConfig } from './env';
import { classifyConnectFailure, resolveName } from './resolve';
import { viaName, workerCannotReach } from '../protocol/worker-reach';

// Read buffers start small (an idle stream pins its pending read's buffer) and double while reads fill them.
const READ_BLOCK_MIN = 4 * 1024;
const READ_BLOCK_MAX = 64 * 1024;

/**
 * A direct-mode link's onStream: a stream beyond config.maxStreams on its WebSocket is refused (Cloudflare's
 * per-invocation socket limit; `open()` counts the link's streams, the new one included), any other connects.
 */
export function serveDirectStreams(config: RelayConfig, open: () => number): (stream: MuxStream, target: Target) => void {
  return (stream, target) => {
    if (open() > config.maxStreams) {
      stream.reject(ConnectResult.GENERAL_FAILURE, `this WebSocket already carries ${config.maxStreams} streams`);
      return;
    }
    void startDirectStream(stream, target, config);
  };
}

export async function startDirectStream(stream: MuxStream, target: Target, config: RelayConfig): Promise<void> {
  const forbidden = (host: string) => !config.allowPrivateTargets && isLocalOrPrivate(host);
  if (forbidden(target.host)) {
    stream.reject(ConnectResult.FORBIDDEN, 'target is a loopback, private or link-local address');
    return;
  }
  if (!config.blockedRanges) {
    return stream.reject(ConnectResult.FORBIDDEN, 'this relay is misconfigured (ZKS_BLOCKED_RANGES is not a comma-separated list of CIDRs): it opens no connection');
  }
  // Refused here, not by connect(): the same clear message locally (workerd would connect) and on Cloudflare.
  const unreachable = workerCannotReach(target.host, target.port, config.blockedRanges);
  if (unreachable) return stream.reject(ConnectResult.FORBIDDEN, unreachable);
  let hostname = target.host;
  // Blocked ranges hold for names too: resolve first, then connect() to the address that was checked.
  if ((config.resolveFirst || config.blockedRanges.length > 0) && hostKind(target.host) === 'domain') {
    const addresses = await resolveName(config.dohUrl, target.host);
    if (addresses === null) return stream.reject(ConnectResult.GENERAL_FAILURE, `could not look up ${target.host}`);
    if (addresses.length === 0) return stream.reject(ConnectResult.HOST_UNREACHABLE, `${target.host}: no such host`);
    hostname = addresses[0];
    if (forbidden(hostname)) return stream.reject(ConnectResult.FORBIDDEN, `${target.host} resolves to a private address`);
    const behind = workerCannotReach(hostname, target.port, config.blockedRanges);
    if (behind) return stream.reject(ConnectResult.FORBIDDEN, viaName(target.host, behind));
  }
  if (stream.state === 'closed') return;
  // workerd joins hostname and port as "host:port" before its lookup: an IPv6 literal needs its brackets.
  if (hostKind(hostname) === 'ipv6') hostname = `[${hostname}]`;
  let socket: Socket;
  try {
    socket = connect({ hostname, port: target.port }, { allowHalfOpen: true, secureTransport: 'off' });
  } catch (err) {
    void classifyConnectFailure(target, err, config.dohUrl, config.blockedRanges).then((r) => stream.reject(r.code, r.message));
    return;
  }
  let settled = false;
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    stream.reject(ConnectResult.TIMEOUT, `no answer from the target within ${config.connectTimeoutMs} ms`);
    abandon(socket);
  }, config.connectTimeoutMs);
  stream.onClose = () => {
    if (!settled) {
      settled = true;
      clearTimeout(timer);
      abandon(socket);
    }
  };
  socket.opened.then(
    () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.accept();
      pipe(stream, socket);
    },
    async (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const r = await classifyConnectFailure(target, err, config.dohUrl, config.blockedRanges!);
      stream.reject(r.code, r.message);
    },
  );
}

/** Gives up a socket that may still be connecting: should it connect after all, the target sees a FIN at once. */
function abandon(socket: Socket): void {
  socket.writable.getWriter().close().catch(() => {}); // queued until opened; rejected if it never opens
  socket.readable.cancel().catch(() => {});
  socket.close().catch(() => {});
}

function pipe(stream: MuxStream, socket: Socket): void {
  const writer = socket.writable.getWriter();
  const reader = socket.readable.getReader({ mode: 'byob' });
  let drained: (() => void) | null = null;
  let closed = false;

  stream.onDrain = () => {
    const d = drained;
    drained = null;
    d?.();
  };
  stream.onData = (chunk) => {
    writer.write(chunk).then(
      () => stream.consume(chunk.length),
      (err: Error) => stream.reset(ResetCode.REMOTE_ERROR, `write to target failed: ${err.message}`),
    );
  };
  stream.onEnd = () => {
    writer.close().catch(() => {});
  };
  stream.onClose = (err) => {
    closed = true;
    stream.onDrain?.();
    if (err) {
      reader.cancel().catch(() => {});
      // The only thing workerd passes on to the connection now (see the top of this file).
      writer.close().catch(() => {});
    }
    socket.close().catch(() => {});
  };

  void (async () => {
    let buf = new ArrayBuffer(READ_BLOCK_MIN);
    try {
      while (!closed) {
        if (!stream.writable) {
          await new Promise<void>((resolve) => (drained = resolve));
          continue;
        }
        const { value, done } = await reader.read(new Uint8Array(buf));
        if (done || !value) {
          stream.end();
          return;
        }
        stream.write(value);
        buf = value.buffer as ArrayBuffer;
        if (value.length === buf.byteLength && buf.byteLength < READ_BLOCK_MAX) buf = new ArrayBuffer(buf.byteLength * 2);
      }
    } catch (err) {
      if (!closed) stream.reset(ResetCode.REMOTE_ERROR, `target connection failed: ${(err as Error).message}`);
    }
  })();
}
