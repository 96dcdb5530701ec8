// How zksd's relay link reaches the relay: a TCP socket marked ZKSD_SOCKET_MARK (the kill switch lets only marked
// packets to the relay endpoints out, so no other process can use the relay's address as a way around the tunnel),
// connected to the addresses zksd resolved and pinned before routing everything into the TUN.

import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { ZksError } from '../errors/zks-error';
import { ZKSD_SOCKET_MARK } from './system/killswitch';
import { markedTcpSocket } from './tun/sockets';

export interface RelayEndpoint {
  address: string;
  port: number;
}

/** One marked connection; resolves once connected. */
export function connectMarked(e: RelayEndpoint, mark = ZKSD_SOCKET_MARK): Promise<Socket> {
  const socket = markedTcpSocket(isIP(e.address) === 6 ? 6 : 4, mark);
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      socket.off('error', failed);
      resolve(socket);
    });
    socket.connect({ host: e.address, port: e.port });
  });
}

/**
 * `openTcp` for the relay link: the pinned endpoints in turn until one connects (an address family without a route
 * fails at once), starting one further on each call so that a dead endpoint is not always the first tried. The
 * URL's host name is ignored (the addresses are pinned); its port equals the endpoints' (resolveRelay read both
 * from the same URL).
 */
export function relayConnector(endpoints: readonly RelayEndpoint[], mark = ZKSD_SOCKET_MARK): (host: string, port: number) => Promise<Socket> {
  if (endpoints.length === 0) throw new ZksError('ZKS_ERR_CONFIG', 'relayConnector: no relay endpoints');
  let next = 0;
  return () => connectAny(endpoints, next++, mark);
}

/** The key of a relay URL's host and port, as the WebSocket client hands them to `openTcp` (no IPv6 brackets). */
export function relayKey(host: string, port: number): string {
  return `${host.replace(/^\[|\]$/g, '').toLowerCase()}|${port}`;
}

/**
 * `openTcp` for several relays: each relay's own pinned endpoints, found by the host and port of its URL (relayKey).
 * A host that was not pinned is refused: nothing but the relays resolved at start may be dialled.
 */
export function relaysConnector(byRelay: ReadonlyMap<string, readonly RelayEndpoint[]>, mark = ZKSD_SOCKET_MARK): (host: string, port: number) => Promise<Socket> {
  const connectors = new Map([...byRelay].map(([k, endpoints]) => [k, relayConnector(endpoints, mark)] as const));
  return async (host, port) => {
    const connect = connectors.get(relayKey(host, port));
    if (!connect) throw new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `${host}:${port} is not one of the relays zksd pinned at start`);
    return connect(host, port);
  };
}

/** The endpoints in turn from `first` (modulo) until one connects. */
async function connectAny(endpoints: readonly RelayEndpoint[], first: number, mark: number): Promise<Socket> {
  const failures: string[] = [];
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[(first + i) % endpoints.length]!;
    try {
      return await connectMarked(e, mark);
    } catch (err) {
      if (err instanceof ZksError) throw err; // no CAP_NET_ADMIN: the same for every endpoint
      failures.push(`${isIP(e.address) === 6 ? `[${e.address}]` : e.address}:${e.port} ${(err as Error).message}`);
    }
  }
  throw new Error(failures.join('; '));
}
