// `zks socks5`: the SOCKS5 / HTTP CONNECT front wired to the relay pool. Each accepted request opens one
// tunnel stream; the proxy reply is sent only after the relay's CONNECT_RESULT, so applications see the real
// outcome (refused, unreachable, forbidden, timeout) with the matching SOCKS5 reply code. UDP ASSOCIATE relays
// through a datagram flow (udp.ts).

import type { AddressInfo, Server } from 'node:net';
import { createProxyServer, checkListenPolicy } from '../socks';
import { formatTarget } from '../protocol/address';
import { ZksError } from '../errors/zks-error';
import { TunnelPool } from '../client/pool';
import { ExitRouter } from '../client/exit-router';
import type { Via, ViaRule } from '../client/exit-choice';
import type { RoomPath } from '../client/connection';
import { bridge } from '../link/socket-bridge';
import { proxyFlowRegistry, trackConnection, type ProxyFlowRegistry } from './flows';
import { startProxyControl } from './control';
import { newProxyUdpStats, proxyUdpCounters, udpAssociateVia, type DatagramOpener, type ProxyUdpStats } from './udp';

export interface SocksClientOptions {
  relay: string;
  /** More relays: connections spread over all that are up, a lost one's sessions resume on another (relay-set.ts). */
  moreRelays?: string[];
  key: Uint8Array;
  /** An exit peer: go through this room to it (all streams, or those the Worker cannot reach: defaultVia). */
  room?: RoomPath;
  /**
   * Where streams go unless a rule says otherwise: 'exit' (p2p-client, the default with a room) or 'worker'
   * (`zks socks5 --room`: the Worker connects, the exit peer takes what it cannot reach, and all UDP).
   */
  defaultVia?: Via;
  /** The user's `--via` rules (exit-choice.ts), read per stream. */
  viaRules?: () => readonly ViaRule[];
  /** How long a lost WebSocket is resumed, where the far end keeps sessions (ConnectionOptions.resumeGraceMs). */
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
  /** The pool of the default way (the exit peer's in relay mode, else the Worker's). */
  pool: TunnelPool;
  router: ExitRouter;
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
  const defaultVia = opts.defaultVia ?? (opts.room ? 'exit' : 'worker');
  const poolFor = (room: RoomPath | undefined, label: string) => new TunnelPool({
    url: opts.relay,
    relayUrls: [opts.relay, ...(opts.moreRelays ?? [])],
    key: opts.key,
    room,
    window: opts.window,
    maxStreamsPerConnection: opts.maxStreamsPerConnection,
    resumeGraceMs: opts.resumeGraceMs,
    log: label ? (line) => log(`${label}${line}`) : log,
  });
  // Log lines of the second pool say which one they are about; a single pool's stay as they were.
  const router = new ExitRouter({
    worker: poolFor(undefined, opts.room && defaultVia === 'exit' ? 'Worker: ' : ''),
    exit: opts.room ? poolFor(opts.room, defaultVia === 'worker' ? 'exit peer: ' : '') : null,
    defaultVia,
    rules: opts.viaRules ?? (() => []),
    log,
  });
  const [pool, second] = router.pools as [TunnelPool, TunnelPool | undefined];
  if (opts.waitForRelay !== false) {
    try {
      await pool.start();
    } catch (err) {
      await router.stop();
      throw err instanceof ZksError ? err : new ZksError('ZKS_ERR_RELAY_UNREACHABLE', (err as Error).message);
    }
  }
  // The Worker beside an exit peer is opened on demand; an exit peer beside the Worker is warmed now (it carries
  // the UDP and what the Worker cannot reach), and a failure there is only logged: the Worker still serves.
  if (second && defaultVia === 'worker') second.start().catch((err: Error) => log(`exit peer not reachable yet: ${err.message}`));
  const flows = proxyFlowRegistry((stream) => router.pathOf(stream));
  const udp = newProxyUdpStats();
  const server = createProxyServer({
    auth: opts.auth,
    log,
    udpStats: udp,
    udpAssociate: udpAssociateVia({
      datagrams: opts.datagrams ?? router.exit ?? pool, dialer: router.exit ?? pool, relayMode: opts.room !== undefined, stats: udp, log,
    }),
    connect: async (target) => {
      const result = await router.open(target);
      if (!result.ok) {
        log(`connect ${formatTarget(target)} failed: ${result.message}`);
        return result;
      }
      return {
        ok: true,
        attach: (socket, head) => {
          trackConnection(flows, socket, result.stream, target, result.via);
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
    await router.stop();
    throw err;
  });
  const addr = server.address() as AddressInfo;
  const control = opts.control
    ? await startProxyControl({
      mode: defaultVia === 'exit' ? 'p2p-client' : 'socks5',
      relay: opts.relay,
      listen: `${host}:${addr.port}`,
      pools: router.pools,
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
    router,
    server,
    flows,
    udp,
    controlPath: control?.path ?? null,
    close: async () => {
      await control?.close();
      await router.stop();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
