// Joins a TCP socket (the SOCKS5 front's client, or the exit peer's target) to a tunnel stream, both ways, with
// backpressure at both points: the socket is paused while the stream has no credit, and credit is returned
// to the relay only once the socket has flushed the bytes. A stream that dies abnormally resets the socket,
// so the application sees an error, never a silently truncated transfer.

import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { ResetCode } from '../protocol/constants';
import type { MuxStream } from '../protocol/stream';
import { TurnBudget } from './turn-budget';

const debugTcp = debuglog('zks:tcp'); // NODE_DEBUG=zks:tcp: why a TCP side ended abnormally

export function bridge(socket: Socket, stream: MuxStream, head: Uint8Array): void {
  if (stream.state === 'closed') {
    // Reset by the far end between CONNECT_RESULT and the hand-over.
    socket.resetAndDestroy();
    return;
  }
  if (socket.destroyed) {
    // The client left while the relay was still connecting: release the tunnel stream.
    stream.reset(ResetCode.CANCEL, 'local client went away');
    return;
  }
  socket.setNoDelay(true);
  // The front hands the socket over paused; it stays paused while `head` waits for credit.
  const headFits = head.length === 0 || stream.write(head);

  // Paused for two reasons: no credit (until onDrain), and a spent read budget (until later in this turn).
  let waitingForCredit = !headFits;
  const budget = new TurnBudget(() => socket.pause(), () => {
    if (!waitingForCredit) socket.resume();
  });
  socket.on('data', (chunk: Buffer) => {
    if (!stream.write(chunk) || !stream.writable) {
      waitingForCredit = true;
      socket.pause();
    }
    budget.spend(chunk.length);
  });
  stream.onDrain = () => {
    waitingForCredit = false;
    if (!budget.isYielding) socket.resume();
  };
  // Both directions ended cleanly: the socket may close while the stream still holds its last bytes (waiting for
  // credit) and its FIN; that close is no reason to reset (it cut the tail of transfers under load).
  let readEnded = false;
  let writeEnded = false;
  socket.on('end', () => {
    readEnded = true;
    stream.end();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    // 'close' follows and resets the stream
    if (debugTcp.enabled) debugTcp('stream %d: socket error %s', stream.id, err.code ?? err.message);
  });
  socket.on('close', (hadError: boolean) => {
    if (stream.state === 'closed' || (readEnded && writeEnded && !hadError)) return;
    stream.reset(ResetCode.CANCEL, 'local client went away');
  });

  stream.onData = (chunk) => {
    const n = chunk.length;
    socket.write(chunk, (err) => {
      if (!err) stream.consume(n);
    });
  };
  stream.onEnd = () => {
    writeEnded = true;
    socket.end();
  };
  stream.onClose = (err) => {
    if (err && !socket.destroyed) {
      if (debugTcp.enabled) debugTcp('stream %d: resetting the TCP socket: %s', stream.id, err.message);
      socket.resetAndDestroy();
    }
  };
  if (headFits) socket.resume();
}
