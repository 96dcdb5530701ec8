// DatagramDialer on top of the connection pool: UDP flows and echoes ride on a live relay connection whose peer
// announced the capability (an exit peer through a room). A Worker (direct mode) relays no UDP; for echoes it can
// only time a TCP connect() — so without Capability.ICMP_ECHO an echo becomes a CONNECT to tcpPort, timed here,
// and says so (method 'tcp'). A refused connection is an answer too: the host is up.

import { ConnectResult, type ConnectResultCode } from '../protocol/constants';
import {
  Capability, EchoFailure, type DatagramDialer, type DatagramFlow, type EchoFailureCode, type EchoRequest, type EchoResult,
} from '../protocol/datagram-types';
import { ResetCode } from '../protocol/constants';
import { ZksError } from '../errors/zks-error';
import type { TunnelConnection } from './connection';
import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';

/** What the dialer needs from the pool. */
export interface ConnectionSource {
  /** A live connection (waiting for the warm one to come up), or why there is none. */
  anyConnection(): Promise<TunnelConnection | ZksError>;
  /** TunnelPool.open (its OpenResult, restated here so pool.ts and this module do not import each other). */
  open(target: Target): Promise<{ ok: true; stream: MuxStream } | { ok: false; code: ConnectResultCode; message: string }>;
}

const ECHO_FAILURE_BY_RESULT: Partial<Record<ConnectResultCode, EchoFailureCode>> = {
  [ConnectResult.FORBIDDEN]: EchoFailure.FORBIDDEN,
  [ConnectResult.TIMEOUT]: EchoFailure.TIMEOUT,
};

export class PoolDatagrams implements DatagramDialer {
  constructor(private readonly pool: ConnectionSource) {}

  async openDatagramFlow(): Promise<DatagramFlow | ZksError> {
    const conn = await this.pool.anyConnection();
    if (conn instanceof ZksError) return conn;
    await conn.mux.datagrams.peerCapabilities();
    return conn.mux.datagrams.openFlow();
  }

  async echo(req: EchoRequest): Promise<EchoResult> {
    const conn = await this.pool.anyConnection();
    if (conn instanceof ZksError) return { ok: false, code: EchoFailure.UNREACHABLE, message: conn.message };
    const caps = await conn.mux.datagrams.peerCapabilities();
    if (caps & Capability.ICMP_ECHO) return withTimeout(conn.mux.datagrams.echo(req), req.timeoutMs + 2_000);
    return withTimeout(this.tcpEcho(req), req.timeoutMs);
  }

  /** The Worker's echo: the time a CONNECT to host:tcpPort takes through the tunnel. */
  private async tcpEcho(req: EchoRequest): Promise<EchoResult> {
    const port = req.tcpPort ?? 443;
    const started = performance.now();
    const r = await this.pool.open({ host: req.host, port });
    const rttMs = performance.now() - started;
    if (r.ok) {
      r.stream.reset(ResetCode.CANCEL, 'echo done');
    } else if (r.code !== ConnectResult.REFUSED) {
      return { ok: false, code: ECHO_FAILURE_BY_RESULT[r.code] ?? EchoFailure.UNREACHABLE, message: r.message };
    }
    return { ok: true, method: 'tcp', tcpPort: port, address: req.host, ttl: 0, rttMs, payload: new Uint8Array(0) };
  }
}

/** The answer, or TIMEOUT once `ms` passed (a late answer is dropped). */
function withTimeout(answer: Promise<EchoResult>, ms: number): Promise<EchoResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, code: EchoFailure.TIMEOUT, message: `no answer within ${ms} ms` }), ms);
    answer.then((r) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
}
