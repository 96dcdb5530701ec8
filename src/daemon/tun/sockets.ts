// The socket options zksd needs and Node does not expose, through the zks_tun addon (addon/tun.cc): SO_MARK on
// the relay link's TCP sockets (set before the first packet, so the kill switch can tell zksd's own traffic from
// everyone else's) and SO_PEERCRED on control-socket connections (who is asking, as the kernel saw it at connect()).

import { Socket } from 'node:net';
import { ZksError } from '../../errors/zks-error';
import { loadAddon } from './index';

/**
 * A TCP socket carrying `mark` on every packet, not yet connected: call `connect({ host, port })` with an address
 * of `family` in the same tick (net treats an fd socket as open; connect() is what makes it one). Needs CAP_NET_ADMIN (so no unprivileged process can forge the mark); throws ZKS_ERR_SYSTEM otherwise.
 */
export function markedTcpSocket(family: 4 | 6, mark: number): Socket {
  let fd: number;
  try {
    fd = loadAddon().openMarkedTcpSocket(family, mark);
  } catch (e) {
    throw new ZksError('ZKS_ERR_SYSTEM', `cannot open a marked socket for the relay link (${(e as Error).message}): zksd needs root (CAP_NET_ADMIN)`);
  }
  return new Socket({ fd });
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The credentials of the process at the other end of a unix-socket connection, or null when they cannot be read. */
export function peerCredentials(socket: Socket): PeerCredentials | null {
  // net keeps the libuv handle private; its fd is the only way to the kernel's SO_PEERCRED.
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    return loadAddon().peerCredentials(fd);
  } catch {
    return null;
  }
}

/** The peer's uid, for the control server's `peerUid` (root-only commands); null when it cannot be read. */
export function peerUid(socket: Socket): number | null {
  return peerCredentials(socket)?.uid ?? null;
}
