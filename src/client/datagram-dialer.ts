// DatagramDialer on top of the connection pool. UDP flows and echoes ride on a relay connection of their own,
// beside the stream connections: a bulk TCP transfer keeps up to a stream window of data queued in the
// WebSocket, the kernel and the relay, and a datagram behind it on the same connection would wait for all of it
// (measured: a 5 ms-paced echo went from 11 to 249 ms p99 during a download on the shared link). Record-level
// priority cannot reorder bytes already in a socket buffer; a second TCP connection has its own buffers.
// A Worker (direct mode) relays no UDP: that is learnt from the warm stream connection, without opening another.
// For echoes a Worker can only time a TCP connect() — so without Capability.ICMP_ECHO an echo becomes a CONNECT
// to tcpPort, timed here, and says so (method 'tcp'). Only a completed connect counts: workerd reports an
// unreachable address as "refused" too, so through a Worker a refusal proves nothing (unlike a real RST at an exit).

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
  /** A new connection outside the pool's stream slots (never given streams); closed by its owner. */
  openDedicated(): Promise<TunnelConnection | ZksError>;
  /** TunnelPool.open (its OpenResult, restated here so pool.ts and this module do not import each other). */
  open(target: Target): Promise<{ ok: true; stream: MuxStream } | { ok: false; code: ConnectResultCode; message: string }>;
}

const ECHO_FAILURE_BY_RESULT: Partial<Record<ConnectResultCode, EchoFailureCode>> = {
  [ConnectResult.FORBIDDEN]: EchoFailure.FORBIDDEN,
  [ConnectResult.TIMEOUT]: EchoFailure.TIMEOUT,
};

export class PoolDatagrams implements DatagramDialer {
  /** The datagram connection, while it is being opened or up; null before the first use and after it died. */
  private dedicated: Promise<TunnelConnection | ZksError> | null = null;
  /** The same connection once it is up, for the sweep and status. */
  private live: TunnelConnection | null = null;
  /** Since when the datagram connection has carried no flow (keepalive PONGs keep arriving, so not lastReceiveAt). */
  private emptySince: number | null = null;
  private stopped = false;

  constructor(private readonly pool: ConnectionSource) {}

  async openDatagramFlow(): Promise<DatagramFlow | ZksError> {
    const conn = await this.connectionFor(Capability.UDP);
    if (conn instanceof ZksError) return conn;
    return conn.mux.datagrams.openFlow();
  }

  async echo(req: EchoRequest): Promise<EchoResult> {
    const conn = await this.connectionFor(Capability.ICMP_ECHO);
    if (conn instanceof ZksError) {
      if (conn.code !== 'ZKS_ERR_UNSUPPORTED') return { ok: false, code: EchoFailure.UNREACHABLE, message: conn.message };
      return withTimeout(this.tcpEcho(req), req.timeoutMs);
    }
    return withTimeout(conn.mux.datagrams.echo(req), req.timeoutMs + 2_000);
  }

  /** The datagram connection when the far end announced `capability`; ZKS_ERR_UNSUPPORTED when it did not. */
  private async connectionFor(capability: number): Promise<TunnelConnection | ZksError> {
    const warm = await this.pool.anyConnection();
    if (warm instanceof ZksError) return warm;
    const caps = await warm.mux.datagrams.peerCapabilities();
    if ((caps & capability) === 0) {
      return new ZksError('ZKS_ERR_UNSUPPORTED', capability === Capability.UDP
        ? 'the other end of this tunnel does not relay UDP (the Worker cannot send UDP: use an exit peer, relay mode)'
        : 'the other end of this tunnel does not answer echo requests');
    }
    if (this.stopped) return new ZksError('ZKS_ERR_CONNECTION_LOST', 'client is shutting down');
    if (this.live?.closed) this.forget();
    if (!this.dedicated) {
      this.dedicated = this.pool.openDedicated().then((c) => {
        if (c instanceof ZksError) this.dedicated = null; // the next flow tries again
        else this.live = c;
        return c;
      });
    }
    const conn = await this.dedicated;
    if (conn instanceof ZksError) return conn;
    if (conn.closed) {
      this.forget();
      return warm.closed ? new ZksError('ZKS_ERR_CONNECTION_LOST', 'the relay connection closed') : this.connectionFor(capability);
    }
    await conn.mux.datagrams.peerCapabilities();
    return conn;
  }

  private forget(): void {
    this.dedicated = null;
    this.live = null;
  }

  /** The datagram connection, when it is up (status shows it among the links). */
  get connection(): TunnelConnection | null {
    return this.live && !this.live.closed ? this.live : null;
  }

  /** Closes the datagram connection once it has had no flow for `idleMs` (the pool's sweep calls this). */
  sweep(idleMs: number, now = Date.now()): void {
    const c = this.live;
    if (!c || c.closed || c.mux.datagrams.flows.size > 0) {
      this.emptySince = null;
      return;
    }
    this.emptySince ??= now;
    if (now - this.emptySince < idleMs) return;
    this.emptySince = null;
    this.forget();
    c.close();
  }

  /** Closes the datagram connection (its flows end with ZKS_ERR_CONNECTION_LOST). */
  async stop(): Promise<void> {
    this.stopped = true;
    const c = await this.dedicated;
    this.forget();
    if (c && !(c instanceof ZksError)) c.close();
  }

  /** The Worker's echo: the time a CONNECT to host:tcpPort takes through the tunnel. */
  private async tcpEcho(req: EchoRequest): Promise<EchoResult> {
    const port = req.tcpPort ?? 443;
    const started = performance.now();
    const r = await this.pool.open({ host: req.host, port });
    const rttMs = performance.now() - started;
    if (!r.ok) return { ok: false, code: ECHO_FAILURE_BY_RESULT[r.code] ?? EchoFailure.UNREACHABLE, message: r.message };
    r.stream.reset(ResetCode.CANCEL, 'echo done');
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
