// The ZKS relay Worker. Only a WebSocket upgrade carrying a valid key proof (the handshake HELLO in
// Sec-WebSocket-Protocol, MAC'd with the pre-shared key) is answered; everything else gets one and the same bare
// answer (refuse()), whatever its path, method or headers, so nothing can be learnt without the key. After the upgrade: encrypted records, a Mux, direct-mode streams.
// `/room/<roomId>` is relay mode instead: a room access token (src/crypto/room.ts) is checked here, before any
// Durable Object is touched, and a valid upgrade goes to that room's ZksRoom (room.ts), which forwards blindly.
// `/session/<name>` is direct mode kept in a ZksSession Durable Object (session-object.ts) so that it can be resumed,
// when the operator turned that on (ZKS_DIRECT_RESUME); otherwise it is plain direct mode.
// `/tunnel/<id>` and `/tunnel-agent/<id>` are HTTP tunnels (tunnel.ts): the only route that may answer without
// the key, and only for a tunnel whose agent chose a password or --public.

import { decodeBase64Url, encodeBase64Url, verifyClientHello } from '../crypto/handshake';
import { sessionName } from '../crypto/resume';
import { HELLO_PREFIX, refuse, SUBPROTOCOL, tokenFromHeader } from './upgrade';
import { isSessionName, SESSION_PATH_PREFIX } from '../protocol/resume-wire';
import { CloseCode } from '../protocol/constants';
import { SocketInbox } from './socket-inbox';
import { answerResumeHello } from './resume-answer';
import { webCrypto } from '../crypto/webcrypto';
import { ZksError } from '../errors/zks-error';
import { verifyRoomToken, ROOM_ID_SIZE, RoomRole } from '../crypto/room';
import { equalBytes } from '../crypto/bytes';
import { ROOM_PATH_PREFIX, ROOM_TOKEN_PREFIX } from '../protocol/room-wire';
import { loadConfig, type Env } from './env';
import { serveDirectStreams } from './direct';
import { acceptLink } from './accept-link';
import { TUNNEL_ID_HEADER, TUNNEL_ROLE_HEADER } from './tunnel';
import { tunnelErrorPage } from './tunnel-pages';
import { TUNNEL_AGENT_PREFIX, TUNNEL_ID_PATTERN, TUNNEL_PUBLIC_PREFIX } from '../protocol/tunnel-http';
import { ROOM_ROLE_HEADER } from './room';
import { ROOM_CLIENT_RATE_HEADER } from './room-limits';

export { ZksRoom } from './room';
export { ZksTunnel } from './tunnel';
export { ZksSession } from './session-object';

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

async function handleUpgrade(request: Request, env: Env, path: string): Promise<Response> {
  const config = loadConfig(env);
  if (!config) return refuse();
  const hello = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), HELLO_PREFIX);
  if (!hello) return refuse();
  const verified = await verifyClientHello(webCrypto, config.key, hello);
  if (verified instanceof ZksError) return refuse();
  // `/session/<name>`: a client that can resume asks for a kept session; kept only while ZKS_DIRECT_RESUME is on.
  const kept = path.startsWith(SESSION_PATH_PREFIX);
  const name = path.slice(SESSION_PATH_PREFIX.length);
  if (kept && !isSessionName(name)) return refuse();
  // A new session's name is bound to its HELLO (a replay cannot open objects under names of its choosing); a
  // resume names the session it resumes, and only its secret opens it.
  if (kept && !verified.resumesSession && name !== encodeBase64Url(await sessionName(webCrypto, config.key, hello))) return refuse();
  if (kept && config.directResume && env.ZKS_SESSIONS && verified.offersSequencedRecords && verified.offersCapabilities) {
    const stub = env.ZKS_SESSIONS.get(env.ZKS_SESSIONS.idFromName(path));
    try {
      return await stub.fetch(request);
    } catch (err) {
      console.error('zks relay: session object unavailable:', (err as Error).message);
      return new Response('relay session unavailable', { status: 503 });
    }
  }

  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  (server as unknown as { binaryType: string }).binaryType = 'arraybuffer';
  if (verified.resumesSession) {
    // Nothing is kept here: say so under the handshake's keys, so the client resets its streams at once.
    const inbox = new SocketInbox(server);
    void answerResumeHello(inbox, config.key, verified, config.firstRecordTimeoutMs, 'this relay keeps no direct-mode sessions (ZKS_DIRECT_RESUME is off)')
      .catch(() => server.close(CloseCode.PROTOCOL_ERROR, 'resume failed'));
    return new Response(null, { status: 101, webSocket: client, headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } });
  }
  const link = await acceptLink(server, config.key, verified, config, {
    // The new stream is already in the table: count it against Cloudflare's per-invocation socket limit.
    onStream: serveDirectStreams(config, () => link!.mux.streams.size),
  });
  return new Response(null, { status: 101, webSocket: client, headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } });
}

/**
 * `/tunnel-agent/<id>` (an agent, proving the Worker key like a direct-mode client) and `/tunnel/<id>…` (the public,
 * answered by the tunnel only if its agent made it public or set a password): both go to the tunnel's object.
 */
async function handleTunnel(request: Request, env: Env, path: string): Promise<Response> {
  const config = loadConfig(env);
  if (!config || !env.ZKS_TUNNELS) return refuse();
  const agent = path.startsWith(TUNNEL_AGENT_PREFIX);
  const rest = path.slice((agent ? TUNNEL_AGENT_PREFIX : TUNNEL_PUBLIC_PREFIX).length);
  const slash = rest.indexOf('/');
  const id = slash < 0 ? rest : rest.slice(0, slash);
  if (!TUNNEL_ID_PATTERN.test(id) || (agent && slash >= 0)) return refuse();
  if (agent) {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') return refuse();
    const hello = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), HELLO_PREFIX);
    if (!hello || (await verifyClientHello(webCrypto, config.key, hello)) instanceof ZksError) return refuse();
  }
  const headers = new Headers(request.headers);
  headers.set(TUNNEL_ROLE_HEADER, agent ? 'agent' : 'public'); // never trusted from outside: overwritten here
  headers.set(TUNNEL_ID_HEADER, id);
  const stub = env.ZKS_TUNNELS.get(env.ZKS_TUNNELS.idFromName(`tunnel:${id}`));
  try {
    return await stub.fetch(new Request(request, { headers }));
  } catch (err) {
    console.error('zks relay: tunnel unavailable:', (err as Error).message);
    return agent ? new Response('relay tunnel unavailable', { status: 503 }) : tunnelErrorPage(503, 'The tunnel is unavailable right now.');
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path.startsWith(TUNNEL_PUBLIC_PREFIX) || path.startsWith(TUNNEL_AGENT_PREFIX)) {
      try {
        return await handleTunnel(request, env, path);
      } catch (err) {
        console.error('zks relay: tunnel request failed:', (err as Error).message);
        return refuse();
      }
    }
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') return refuse();
    try {
      // Never falls through to direct mode: a /room/ path without a valid room token is refused.
      if (path.startsWith(ROOM_PATH_PREFIX)) return await handleRoomUpgrade(request, env, path.slice(ROOM_PATH_PREFIX.length));
      return await handleUpgrade(request, env, path);
    } catch (err) {
      console.error('zks relay: upgrade failed:', (err as Error).message);
      return refuse();
    }
  },
} satisfies ExportedHandler<Env>;
