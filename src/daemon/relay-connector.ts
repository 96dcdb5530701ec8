// How zksd's relay link reaches the relay: a TCP socket marked ZKSD_SOCKET_MARK (the kill switch lets only marked
// packets to the relay endpoints out, so no other process can use the relay's address as a way around the tunnel),
// connected to the addresses zksd resolved and pinned before routing everything into the TUN.

import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { ZKSD_SOCKET_MARK } from './system/killswitch';
import { markedTcpSocket } from './tun/sockets';

export interface RelayEndpoint {
  address: string;
  port: number;
}

/**
 * `openTcp` for the relay link: each call takes the next pinned endpoint in turn (a dead one costs one attempt;
 * the pool reconnects to the next). The host name is the URL's and is ignored: the address is pinned. The port
 * is the URL's too, and equal to the endpoints' (resolveRelay took it from the same URL).
 */
export function relayConnector(endpoints: readonly RelayEndpoint[], mark = ZKSD_SOCKET_MARK): (host: string, port: number) => Socket {
  if (endpoints.length === 0) throw new Error('relayConnector: no relay endpoints');
  let next = 0;
  return () => {
    const e = endpoints[next++ % endpoints.length]!;
    const socket = markedTcpSocket(isIP(e.address) === 6 ? 6 : 4, mark);
    return socket.connect({ host: e.address, port: e.port });
  };
}
