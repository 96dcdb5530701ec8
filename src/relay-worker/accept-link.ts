// The Worker's side of a session whose HELLO it has verified (direct mode, and HTTP tunnels' agents): the REPLY,
// the record layer and a SecureLink on the accepted WebSocket, with the Worker's memory policy (env.ts), its idle
// watch and the first-record deadline. Callers decide what the link's streams and signals do.

import { respondToHello, type VerifiedHello } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import type { CipherSuite } from '../crypto/types';
import { webCrypto } from '../crypto/webcrypto';
import { CloseCode } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';
import type { MuxOptions } from '../protocol/mux';
import { SecureLink, type LinkOptions } from '../link/secure-link';
import type { RelayConfig } from './env';
import { watchIdle } from './idle';
import { isolateSendBudget } from './send-budget';

/** The Worker runs AES-GCM natively; ChaCha20-Poly1305 would be pure JavaScript, ~8x its CPU (PROTOCOL.md §2.7). */
export const WORKER_SUITES: CipherSuite[] = ['aes-256-gcm'];

export interface AcceptHandlers {
  /** Send credit honoured per stream (default config.streamSendCredit); the link's unacknowledged cap still holds. */
  maxSendCredit?: number;
  onStream?: MuxOptions['onStream'];
  onSignal?: MuxOptions['onSignal'];
  onClose?: MuxOptions['onClose'];
}

/** The Worker's memory policy (env.ts) for a link on one of its WebSockets, with the caller's handlers. */
export function workerLinkOptions(config: RelayConfig, handlers: AcceptHandlers, onClose: MuxOptions['onClose']): LinkOptions {
  return {
    role: 'server',
    // Bounded memory per WebSocket (env.ts): workerd's ws.send() has no backpressure of its own.
    window: config.streamReceiveWindow,
    maxSendCredit: handlers.maxSendCredit ?? config.streamSendCredit,
    maxUnackedBytes: config.linkUnackedBytes,
    sharedBudget: isolateSendBudget,
    onClose,
    onStream: handlers.onStream,
    onSignal: handlers.onSignal,
  };
}

/**
 * Answers `verified` on `server` (accepted, binary) and returns the link; null when no cipher suite is shared
 * (the socket is then closed with a reason the client may read: it proved the key).
 */
export async function acceptLink(
  server: WebSocket, psk: Uint8Array, verified: VerifiedHello, config: RelayConfig, handlers: AcceptHandlers,
): Promise<SecureLink | null> {
  if (!verified.offeredSuites.some((s) => WORKER_SUITES.includes(s))) {
    server.close(CloseCode.HANDSHAKE_FAILED, `ZKS_ERR_HANDSHAKE: this relay offers only ${WORKER_SUITES.join(', ')}`);
    return null;
  }
  const { reply, keys } = await respondToHello(webCrypto, psk, verified, { supportedSuites: WORKER_SUITES });
  const { sealer, opener } = await createChannel(webCrypto, keys);
  server.send(reply);

  const link: SecureLink = new SecureLink(
    { send: (d) => server.send(d), close: (code, reason) => server.close(code, reason) },
    sealer,
    opener,
    workerLinkOptions(config, handlers, (err) => {
      stopIdle();
      handlers.onClose?.(err);
    }),
  );
  // A HELLO replayed within its ±10 min lets anyone open this WebSocket, but only the real client can seal a record
  // (the first one, a PING, follows the REPLY at once): whoever stays silent is closed, not kept open forever.
  let firstRecordTimer: ReturnType<typeof setTimeout> | null = setTimeout(() => {
    link.socketClosed(`no record within ${config.firstRecordTimeoutMs} ms of the handshake`);
    server.close(CloseCode.HANDSHAKE_FAILED, 'ZKS_ERR_TIMEOUT');
  }, config.firstRecordTimeoutMs);
  const stopFirstRecordTimer = () => {
    if (firstRecordTimer !== null) clearTimeout(firstRecordTimer);
    firstRecordTimer = null;
  };
  const stopIdle = watchIdle(link, config, (code, reason) => server.close(code, reason));
  server.addEventListener('message', (ev: MessageEvent) => {
    stopFirstRecordTimer(); // a record that fails to open closes the link at once (4003)
    const data = ev.data;
    if (data instanceof ArrayBuffer) link.receive(new Uint8Array(data));
    else link.mux.close(new ProtocolError('ZKS_ERR_MALFORMED_FRAME', 'text message on a binary-only WebSocket'));
  });
  server.addEventListener('close', () => {
    stopFirstRecordTimer();
    link.socketClosed('client closed the WebSocket');
  });
  server.addEventListener('error', () => {
    stopFirstRecordTimer();
    link.socketClosed('WebSocket error');
  });
  return link;
}
