// Exit side of one CONNECT: resolve the target, apply the LAN policy, open the real TCP connection and hand
// it to the socket bridge (src/link/socket-bridge.ts), which owns backpressure, half-close and resets.
// Invariant: the policy is checked on every address the connection could use, *after* resolution, so a
// public-looking name that resolves to 127.0.0.1 (DNS rebinding, numeric names) is refused like the literal.

import { promises as dns } from 'node:dns';
import { connect, type Socket } from 'node:net';
import { hostKind, isLocalOrPrivate, type Target } from '../protocol/address';
import { ConnectResult, type ConnectResultCode } from '../protocol/constants';
import type { MuxStream } from '../protocol/stream';
import { bridge } from '../link/socket-bridge';

/** The subset of `dns.promises.lookup` the exit uses; injectable so tests never send a DNS query. */
export type LookupFn = (
  hostname: string,
  options: { all: true; verbatim: true },
) => Promise<Array<{ address: string; family: number }>>;

export interface ExitConnectOptions {
  /** Allow loopback, private, link-local and multicast targets (`--allow-lan`). */
  allowLan: boolean;
  /** Budget for lookup + TCP connect together. */
  connectTimeoutMs: number;
  lookup: LookupFn;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const defaultLookup: LookupFn = (hostname, options) => dns.lookup(hostname, options);

export const FORBIDDEN_MESSAGE =
  'target is a loopback/private/link-local/multicast address; the exit peer allows it only with --allow-lan';

interface Outcome {
  code: ConnectResultCode;
  message: string;
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

/** A failed name lookup, as a CONNECT_RESULT. */
export function classifyLookupError(host: string, err: unknown): Outcome {
  switch (errnoOf(err)) {
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return { code: ConnectResult.HOST_UNREACHABLE, message: `${host}: no such host` };
    case 'EAI_AGAIN':
      // The resolver gave up (temporary failure): to the application this is an unreachable host.
      return { code: ConnectResult.HOST_UNREACHABLE, message: `${host}: no such host (lookup failed, try again later)` };
    default:
      return { code: ConnectResult.GENERAL_FAILURE, message: `could not look up ${host}: ${(err as Error)?.message ?? String(err)}` };
  }
}

/** A failed TCP connect, as a CONNECT_RESULT. */
export function classifyConnectError(err: unknown): Outcome {
  switch (errnoOf(err)) {
    case 'ECONNREFUSED':
      return { code: ConnectResult.REFUSED, message: 'connection refused' };
    case 'ENOTFOUND':
    case 'EAI_NONAME':
      return { code: ConnectResult.HOST_UNREACHABLE, message: 'no such host' };
    case 'EHOSTUNREACH':
      return { code: ConnectResult.HOST_UNREACHABLE, message: 'no route to host' };
    case 'ENETUNREACH':
      return { code: ConnectResult.NETWORK_UNREACHABLE, message: 'network unreachable' };
    case 'ETIMEDOUT':
      return { code: ConnectResult.TIMEOUT, message: 'connection timed out' };
    default:
      return { code: ConnectResult.GENERAL_FAILURE, message: `connect failed: ${(err as Error)?.message ?? String(err)}` };
  }
}

/**
 * Serves one CONNECT from a client: ends with stream.accept() + bridge, or stream.reject(code, message).
 * Never throws; if the client gives up (the stream closes) while we are still connecting, the socket is destroyed.
 */
export async function startExitStream(stream: MuxStream, target: Target, opts: ExitConnectOptions): Promise<void> {
  const forbidden = (host: string) => !opts.allowLan && isLocalOrPrivate(host);
  if (forbidden(target.host)) {
    stream.reject(ConnectResult.FORBIDDEN, FORBIDDEN_MESSAGE);
    return;
  }

  let settled = false;
  let socket: Socket | null = null;
  const finish = (outcome: Outcome | null): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    if (outcome) stream.reject(outcome.code, outcome.message);
    return true;
  };
  const timer = setTimeout(() => {
    if (finish({ code: ConnectResult.TIMEOUT, message: `no answer from the target within ${opts.connectTimeoutMs} ms` })) {
      socket?.destroy();
    }
  }, opts.connectTimeoutMs);
  // The client reset the stream (or its session died) while we were still resolving or connecting.
  stream.onClose = () => {
    if (finish(null)) socket?.destroy();
  };

  let address = target.host;
  if (hostKind(target.host) === 'domain') {
    let addresses: string[];
    try {
      addresses = (await opts.lookup(target.host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (err) {
      finish(classifyLookupError(target.host, err));
      return;
    }
    if (settled) return;
    if (addresses.length === 0) {
      finish({ code: ConnectResult.HOST_UNREACHABLE, message: `${target.host}: no such host` });
      return;
    }
    // ANY private answer refuses the name: a resolver that mixes one in is exactly the rebinding case.
    if (addresses.some(forbidden)) {
      finish({ code: ConnectResult.FORBIDDEN, message: FORBIDDEN_MESSAGE });
      return;
    }
    address = addresses[0];
  }

  const sock = connect({ host: address, port: target.port, allowHalfOpen: true });
  socket = sock;
  const onError = (err: Error) => {
    finish(classifyConnectError(err));
    sock.destroy();
  };
  sock.once('error', onError);
  sock.once('connect', () => {
    sock.off('error', onError);
    if (!finish(null)) {
      sock.destroy();
      return;
    }
    stream.onClose = undefined; // bridge() installs its own
    stream.accept();
    bridge(sock, stream, new Uint8Array(0));
  });
}
