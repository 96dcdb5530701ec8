// Takes a TCP connection out of its net.Socket when all that is left to know about it is when it ends — a SOCKS5
// UDP association's control connection (RFC 1928 §7) — and holds it in the data path addon's ConnectionWatch
// (addon/connection-watch.cc): a poll on a dup() of the fd that reads and discards, for a fraction of the memory
// of a net.Socket with its handle and stream states (measured in `npm run bench -- udp`: the client's memory per
// idle association). Optional like the rest of the addon: watchConnectionEnd() returns null without it, or when
// the socket has no file descriptor to take, and the caller keeps its socket.
import type { Socket } from 'node:net';
import { datapathAddon, type NativeConnectionWatch } from './datapath';

export type ConnectionWatch = Pick<NativeConnectionWatch, 'close'>;

/** The fd of a connected net.Socket (libuv's TCP handle; no public accessor), or -1. */
function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}

/**
 * Moves `socket`'s connection into a ConnectionWatch and destroys the socket (its listeners should be off first:
 * 'close' fires). `ended(errno)` comes once: 0 when the peer closed, else the error; not after close(). Data the
 * socket had already read is dropped with it, as anything the peer sends later is. Call it once the socket's
 * writes have been handed to the kernel (a write callback), since its unsent buffer goes with it. Never throws:
 * when the addon cannot take the connection (no fds left...), null, and the socket is untouched.
 */
export function watchConnectionEnd(socket: Socket, ended: (errno: number) => void): ConnectionWatch | null {
  const addon = datapathAddon();
  const fd = socketFd(socket);
  if (!addon || fd < 0 || socket.destroyed || socket.writableLength > 0) return null;
  let watch: NativeConnectionWatch | null = null;
  try {
    watch = new addon.ConnectionWatch(fd);
    watch.start(ended);
  } catch {
    watch?.close(); // dup() refused (EMFILE) or the poll could not start: the socket goes on as it was
    return null;
  }
  socket.destroy();
  return watch;
}
