// The ZKS relay Worker. Only a WebSocket upgrade carrying a valid key proof (the handshake HELLO in
// Sec-WebSocket-Protocol, MAC'd with the pre-shared key) is answered; everything else gets a bare 404 or 401
// that does not reveal a tunnel lives here. After the upgrade: encrypted records, a Mux, direct-mode streams.

import { decodeBase64Url, respondToHello, verifyClientHello } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import { webCrypto } from '../crypto/webcrypto';
import { ProtocolError, ZksError } from '../protocol/errors';
import { ConnectResult } from '../protocol/constants';
import { SecureLink } from '../link/secure-link';
import { loadConfig, type Env } from './env';
import { startDirectStream } from './direct';

const SUBPROTOCOL = 'zks1';
const HELLO_PREFIX = 'zks1.';

const notFound = () => new Response('Not Found', { status: 404 });
const unauthorized = () => new Response('Unauthorized', { status: 401 });

function helloFromHeader(header: string | null): Uint8Array | null {
  if (!header) return null;
  for (const part of header.split(',')) {
    const p = part.trim();
    if (p.startsWith(HELLO_PREFIX)) return decodeBase64Url(p.slice(HELLO_PREFIX.length));
  }
  return null;
}

async function handleUpgrade(request: Request, env: Env): Promise<Response> {
  const config = loadConfig(env);
  if (!config) return notFound();
  const hello = helloFromHeader(request.headers.get('Sec-WebSocket-Protocol'));
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
      return await handleUpgrade(request, env);
    } catch (err) {
      console.error('zks relay: upgrade failed:', (err as Error).message);
      return unauthorized();
    }
  },
} satisfies ExportedHandler<Env>;
