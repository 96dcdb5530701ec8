// The ZKS relay Worker. Only a WebSocket upgrade carrying a valid key proof (the handshake HELLO in
// Sec-WebSocket-Protocol, MAC'd with the pre-shared key) is answered; everything else gets one and the same bare
// answer (refuse()), whatever its path, method or headers, so nothing can be learnt without the key. After the upgrade: encrypted records, a Mux, direct-mode streams.
// `/room/<roomId>` is relay mode instead: a room access token (src/crypto/room.ts) is checked here, before any
// Durable Object is touched, and a valid upgrade goes to that room's ZksRoom (room.ts), which forwards blindly.

import { decodeBase64Url, respondToHello, verifyClientHello } from '../crypto/handshake';
import type { CipherSuite } from '../crypto/types';
import { createChannel } from '../crypto/record';
import { webCrypto } from '../crypto/webcrypto';
import { ZksError } from '../errors/zks-error';
import { ProtocolError } from '../protocol/errors';
import { CloseCode, ConnectResult } from '../protocol/constants';
import { SecureLink } from '../link/secure-link';
import { verifyRoomToken, ROOM_ID_SIZE, RoomRole } from '../crypto/room';
import { equalBytes } from '../crypto/bytes';
import { ROOM_PATH_PREFIX, ROOM_TOKEN_PREFIX } from '../protocol/room-wire';
import { loadConfig, type Env } from './env';
import { startDirectStream } from './direct';
import { watchIdle } from './idle';
import { isolateSendBudget } from './send-budget';
import { ROOM_ROLE_HEADER } from './room';
import { ROOM_CLIENT_RATE_HEADER } from './room-limits';

export { ZksRoom } from './room';

const SUBPROTOCOL = 'zks1';
const HELLO_PREFIX = 'zks1.';

/** The Worker runs AES-GCM natively; ChaCha20-Poly1305 would be pure JavaScript, ~8x its CPU (PROTOCOL.md §2.7). */
const WORKER_SUITES: CipherSuite[] = ['aes-256-gcm'];

/** The one answer to every request that has not proved the key: same status, body and headers for every probe. */
const refuse = () => new Response('Unauthorized', { status: 401 });

/** The base64url token after `prefix` among the offered subprotocols, decoded; null if absent or not canonical. */
function tokenFromHeader(header: string | null, prefix: string): Uint8Array | null {
  if (!header) return null;
  for (const part of header.split(',')) {
    const p = part.trim();
    if (p.startsWith(prefix)) return decodeBase64Url(p.slice(prefix.length));
  }
  return null;
}

const ROOM_ID_CHARS = Math.ceil((ROOM_ID_SIZE * 4) / 3); // 22: 16 bytes of unpadded base64url

async function handleRoomUpgrade(request: Request, env: Env, roomIdText: string): Promise<Response> {
  const config = loadConfig(env);
  if (!config || !env.ZKS_ROOMS) return refuse();
  const roomId = roomIdText.length === ROOM_ID_CHARS ? decodeBase64Url(roomIdText) : null;
  if (!roomId || roomId.length !== ROOM_ID_SIZE) return refuse();
  const token = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), ROOM_TOKEN_PREFIX);
  if (!token) return refuse();
  const granted = await verifyRoomToken(webCrypto, config.key, token);
  if (granted instanceof ZksError || !equalBytes(granted.roomId, roomId)) return refuse();

  const headers = new Headers(request.headers);
  headers.set(ROOM_CLIENT_RATE_HEADER, String(config.roomClientRate));
  headers.set(ROOM_ROLE_HEADER, granted.role === RoomRole.EXIT ? 'exit' : 'client');
  const stub = env.ZKS_ROOMS.get(env.ZKS_ROOMS.idFromName(roomIdText));
  try {
    return await stub.fetch(new Request(request, { headers }));
  } catch (err) {
    // The caller proved the key, so it may learn that the relay, not its key, is at fault.
    console.error('zks relay: room unavailable:', (err as Error).message);
    return new Response('relay room unavailable', { status: 503 });
  }
}

async function handleUpgrade(request: Request, env: Env): Promise<Response> {
  const config = loadConfig(env);
  if (!config) return refuse();
  const hello = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), HELLO_PREFIX);
  if (!hello) return refuse();
  const verified = await verifyClientHello(webCrypto, config.key, hello);
  if (verified instanceof ZksError) return refuse();

  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  (server as unknown as { binaryType: string }).binaryType = 'arraybuffer';
  const upgraded = new Response(null, { status: 101, webSocket: client, headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } });
  if (!verified.offeredSuites.some((s) => WORKER_SUITES.includes(s))) {
    // The client proved the key, so it may learn why: a close frame it reports instead of a bare refusal.
    server.close(CloseCode.HANDSHAKE_FAILED, `ZKS_ERR_HANDSHAKE: this relay offers only ${WORKER_SUITES.join(', ')}`);
    return upgraded;
  }
  const { reply, keys } = await respondToHello(webCrypto, config.key, verified, { supportedSuites: WORKER_SUITES });
  const { sealer, opener } = await createChannel(webCrypto, keys);
  server.send(reply);

  const link: SecureLink = new SecureLink(
    { send: (d) => server.send(d), close: (code, reason) => server.close(code, reason) },
    sealer,
    opener,
    {
      role: 'server',
      // Bounded memory per WebSocket (env.ts): workerd's ws.send() has no backpressure of its own.
      window: config.streamReceiveWindow,
      maxSendCredit: config.streamSendCredit,
      maxUnackedBytes: config.linkUnackedBytes,
      sharedBudget: isolateSendBudget,
      onClose: () => stopIdle(),
      onStream: (stream, target) => {
        // The new stream is already in the table: count it against Cloudflare's per-invocation socket limit.
        if (link.mux.streams.size > config.maxStreams) {
          stream.reject(ConnectResult.GENERAL_FAILURE, `this WebSocket already carries ${config.maxStreams} streams`);
          return;
        }
        void startDirectStream(stream, target, config);
      },
    },
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

  return upgraded;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') return refuse();
    try {
      const path = new URL(request.url).pathname;
      // Never falls through to direct mode: a /room/ path without a valid room token is refused.
      if (path.startsWith(ROOM_PATH_PREFIX)) return await handleRoomUpgrade(request, env, path.slice(ROOM_PATH_PREFIX.length));
      return await handleUpgrade(request, env);
    } catch (err) {
      console.error('zks relay: upgrade failed:', (err as Error).message);
      return refuse();
    }
  },
} satisfies ExportedHandler<Env>;
