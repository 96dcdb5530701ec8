// `zks socks5`: the SOCKS5 / HTTP CONNECT front wired to the relay pool. Each accepted request opens one
// tunnel stream; the proxy reply is sent only after the relay's CONNECT_RESULT, so applications see the real
// outcome (refused, unreachable, forbidden, timeout) with the matching SOCKS5 reply code. UDP ASSOCIATE relays
// through a datagram flow (udp.ts).

import type { AddressInfo, Server } from 'node:net';
import { createProxyServer, checkListenPolicy } from '../socks';
import { formatTarget } from '../protocol/address';
import { ZksError } from '../errors/zks-error';
import { TunnelPool } from '../client/pool';
import type { RoomPath } from '../client/connection';
import { bridge } from '../link/socket-bridge';
import { proxyFlowRegistry, trackConnection, type ProxyFlowRegistry } from './flows';
import { startProxyControl } from './control';
import { newProxyUdpStats, proxyUdpCounters, udpAssociateVia, type DatagramOpener, type ProxyUdpStats } from './udp';

export interface SocksClientOptions {
  relay: string;
  key: Uint8Array;
  /** Relay mode: go through this room to its exit peer instead of letting the Worker connect. */
  room?: RoomPath;
  /** Relay mode: how long a lost WebSocket is resumed (ConnectionOptions.resumeGraceMs). */
  resumeGraceMs?: number;
  listenHost?: string;
  listenPort?: number;
  allowRemote?: boolean;
  auth?: { username: string; password: string };
  maxStreamsPerConnection?: number;
  window?: number;
  log?: (line: string) => void;
  /** Wait for the first relay connection before listening (fail fast on a wrong key or URL). */
  waitForRelay?: boolean;
  /** Serve a control socket for zks-tui / `zks flows` (the CLI turns it on; a path overrides the default). */
  control?: boolean | string;
  /** Datagram flows for UDP ASSOCIATE (default: the pool's, which a Worker answers with ZKS_ERR_UNSUPPORTED). */
  datagrams?: DatagramOpener;
}

export interface SocksClient {
  host: string;
  port: number;
  pool: TunnelPool;
  server: Server;
  flows: ProxyFlowRegistry;
  /** SOCKS5 UDP ASSOCIATE counters (live). */
  udp: ProxyUdpStats;
  /** The control socket's path, when one is served. */
  controlPath: string | null;
  close(): Promise<void>;
}

export async function startSocksClient(opts: SocksClientOptions): Promise<SocksClient> {
  const host = opts.listenHost ?? '127.0.0.1';
  const policy = checkListenPolicy(host, { allowRemote: opts.allowRemote, auth: opts.auth });
  if (policy) throw policy;
  const log = opts.log ?? (() => {});
  const pool = new TunnelPool({
    url: opts.relay,
    key: opts.key,
    room: opts.room,
    window: opts.window,
    maxStreamsPerConnection: opts.maxStreamsPerConnection,
    resumeGraceMs: opts.resumeGraceMs,
    log,
  });
  if (opts.waitForRelay !== false) {
    try {
      await pool.start();
    } catch (err) {
      await pool.stop();
      throw err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', (err as Error).message);
    }
  }
  const flows = proxyFlowRegistry(opts.room ? 'exit' : 'worker', (stream) => pool.pathOf(stream));
  const udp = newProxyUdpStats();
  const server = createProxyServer({
    auth: opts.auth,
    log,
    udpStats: udp,
    udpAssociate: udpAssociateVia({
      datagrams: opts.datagrams ?? pool, dialer: pool, relayMode: opts.room !== undefined, stats: udp, log,
    }),
    connect: async (target) => {
      const result = await pool.open(target);
      if (!result.ok) {
        log(`connect ${formatTarget(target)} failed: ${result.message}`);
        return result;
      }
      return {
        ok: true,
        attach: (socket, head) => {
          trackConnection(flows, socket, result.stream, target);
          bridge(socket, result.stream, head);
        },
      };
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new ZksError('ZKS_ERR_CONFIG', err.code === 'EADDRINUSE'
        ? `${host}:${opts.listenPort ?? 1080} is already in use: stop the other proxy or pass --listen with another port`
        : `cannot listen on ${host}:${opts.listenPort ?? 1080}: ${err.message}`));
    });
    server.listen(opts.listenPort ?? 1080, host, () => resolve());
  }).catch(async (err) => {
    await pool.stop();
    throw err;
  });
  const addr = server.address() as AddressInfo;
  const control = opts.control
    ? await startProxyControl({
      mode: opts.room ? 'p2p-client' : 'socks5',
      relay: opts.relay,
      listen: `${host}:${addr.port}`,
      pool,
      flows,
      roomId: opts.room?.roomId,
      path: typeof opts.control === 'string' ? opts.control : undefined,
      udp: () => proxyUdpCounters(udp),
      log,
    }).catch((err: Error) => {
      log(`no control socket: ${err.message}`);
      return null;
    })
    : null;
  return {
    host,
    port: addr.port,
    pool,
    server,
    flows,
    udp,
    controlPath: control?.path ?? null,
    close: async () => {
      await control?.close();
      await pool.stop();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
