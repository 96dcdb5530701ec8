// The ZKS relay Worker. Only a WebSocket upgrade carrying a valid key proof (the handshake HELLO in
// Sec-WebSocket-Protocol, MAC'd with the pre-shared key) is answered; everything else gets a bare 404 or 401
// that does not reveal a tunnel lives here. After the upgrade: encrypted records, a Mux, direct-mode streams.
// `/room/<roomId>` is relay mode instead: a room access token (src/crypto/room.ts) is checked here, before any
// Durable Object is touched, and a valid upgrade goes to that room's ZksRoom (room.ts), which forwards blindly.

import { decodeBase64Url, respondToHello, verifyClientHello } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import { webCrypto } from '../crypto/webcrypto';
import { ZksError } from '../errors/zks-error';
import { ProtocolError } from '../protocol/errors';
import { ConnectResult } from '../protocol/constants';
import { SecureLink } from '../link/secure-link';
import { verifyRoomToken, ROOM_ID_SIZE, RoomRole } from '../crypto/room';
import { equalBytes } from '../crypto/bytes';
import { ROOM_PATH_PREFIX, ROOM_TOKEN_PREFIX } from '../protocol/room-wire';
import { loadConfig, type Env } from './env';
import { startDirectStream } from './direct';
import { watchIdle } from './idle';
import { isolateSendBudget } from './send-budget';
import { ROOM_ROLE_HEADER } from './room';

export { ZksRoom } from './room';

const SUBPROTOCOL = 'zks1';
const HELLO_PREFIX = 'zks1.';

const notFound = () => new Response('Not Found', { status: 404 });
const unauthorized = () => new Response('Unauthorized', { status: 401 });

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
  if (!config || !env.ZKS_ROOMS) return notFound();
  const roomId = roomIdText.length === ROOM_ID_CHARS ? decodeBase64Url(roomIdText) : null;
  if (!roomId || roomId.length !== ROOM_ID_SIZE) return notFound();
  // From here on, answers look exactly like direct mode's: nothing says whether a room or a tunnel lives here.
  const token = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), ROOM_TOKEN_PREFIX);
  if (!token) return unauthorized();
  const granted = await verifyRoomToken(webCrypto, config.key, token);
  if (granted instanceof ZksError || !equalBytes(granted.roomId, roomId)) return unauthorized();

  const headers = new Headers(request.headers);
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
  if (!config) return notFound();
  const hello = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), HELLO_PREFIX);
  if (!hello) return unauthorized();
  const verified = await verifyClientHello(webCrypto, config.key, hello);
  if (verified instanceof ZksError) return unauthorized();
  const { reply, keys } = await respondToHello(webCrypto, config.key, verified);
  const { sealer, opener } = await createChannel(webCrypto, keys);

  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  (server as unknown as { binaryType: string }).binaryType = 'arraybuffer';
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
  const stopIdle = watchIdle(link, config, (code, reason) => server.close(code, reason));
  server.addEventListener('message', (ev: MessageEvent) => {
    const data = ev.data;
    if (data instanceof ArrayBuffer) link.receive(new Uint8Array(data));
    else link.mux.close(new ProtocolError('ZKS_ERR_MALFORMED_FRAME', 'text message on a binary-only WebSocket'));
  });
  server.addEventListener('close', () => link.socketClosed('client closed the WebSocket'));
  server.addEventListener('error', () => link.socketClosed('WebSocket error'));

  return new Response(null, { status: 101, webSocket: client, headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') return notFound();
    try {
      const path = new URL(request.url).pathname;
      // Never falls through to direct mode: a /room/ path without a valid room token is refused.
      if (path.startsWith(ROOM_PATH_PREFIX)) return await handleRoomUpgrade(request, env, path.slice(ROOM_PATH_PREFIX.length));
      return await handleUpgrade(request, env);
    } catch (err) {
      console.error('zks relay: upgrade failed:', (err as Error).message);
      return unauthorized();
    }
  },
} satisfies ExportedHandler<Env>;
