// A WebSocket through an HTTP tunnel (docs/PROTOCOL.md §12.5), the Worker's side: once the agent answered 101 (its
// WebSocket to the local server is open), the client's upgrade is accepted here and whole messages cross the
// request's stream in both directions (src/protocol/tunnel-ws.ts). The client's messages arrive as events, with no
// way to pause them: while the stream has no credit they queue in it, and past BACKLOG_LIMIT the WebSocket is closed
// (1013) rather than grown without bound. Messages for the client go out at once: workerd's send() has no
// backpressure and reports nothing queued, so a client that reads slower than the local server writes makes the
// runtime hold the difference (a platform limit, README). An open WebSocket keeps its slot of maxConcurrent.

import { ResetCode } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';
import type { MuxStream } from '../protocol/stream';
import type { ResponseHead } from '../protocol/tunnel-http';
import { decodeWsClose, encodeWsClose, encodeWsMessage, WsMessageReader, WsMessageType } from '../protocol/tunnel-ws';

/** Client messages queued for the agent before the client is closed (1013); with maxConcurrent sockets, bounded. */
const BACKLOG_LIMIT = 1024 * 1024;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A close code one may send (RFC 6455 §7.4): 1005, 1006 and 1015 only describe what happened. */
const sendableCode = (code: number) => (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);

export function acceptUpgrade(stream: MuxStream, head: ResponseHead, rest: Uint8Array): Response {
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  (server as unknown as { binaryType: string }).binaryType = 'arraybuffer';
  let closed = false;
  const closeClient = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    try {
      server.close(sendableCode(code) ? code : 1000, reason);
    } catch {
      // already closing
    }
  };

  const reader = new WsMessageReader();
  const fromAgent = (chunk: Uint8Array) => {
    stream.consume(chunk.length);
    const messages = reader.push(chunk);
    if (messages instanceof ProtocolError) {
      stream.reset(ResetCode.PROTOCOL, messages.message);
      return closeClient(1011, 'the tunnel received an invalid message');
    }
    for (const m of messages) {
      if (closed) return;
      if (m.type === WsMessageType.CLOSE) {
        const { code, reason } = decodeWsClose(m.payload);
        closeClient(code, reason);
      } else if (m.type === WsMessageType.TEXT) server.send(utf8Decoder.decode(m.payload));
      else server.send(m.payload);
    }
  };
  stream.onData = fromAgent;
  if (rest.length > 0) fromAgent(rest);
  stream.onEnd = () => closeClient(1000, '');
  const requestOver = stream.onClose; // the request's own bookkeeping (its slot of maxConcurrent) stays attached
  stream.onClose = (err) => {
    if (err) closeClient(1011, 'the tunnel lost the connection to its agent');
    requestOver?.(null);
  };

  let backlog = 0;
  stream.onDrain = () => void (backlog = 0);
  const toAgent = (bytes: Uint8Array) => {
    if (!stream.writable) backlog += bytes.length;
    stream.write(bytes);
    if (backlog > BACKLOG_LIMIT) {
      stream.reset(ResetCode.CANCEL, 'WebSocket backlog over the limit');
      closeClient(1013, 'the local server reads too slowly');
    }
  };
  server.addEventListener('message', (ev: MessageEvent) => {
    if (closed || stream.state === 'closed') return;
    const data = ev.data;
    if (typeof data === 'string') toAgent(encodeWsMessage(WsMessageType.TEXT, utf8.encode(data)));
    else toAgent(encodeWsMessage(WsMessageType.BINARY, new Uint8Array(data as ArrayBuffer)));
  });
  server.addEventListener('close', (ev: CloseEvent) => {
    if (stream.state !== 'closed') {
      stream.write(encodeWsClose(ev.code, ev.reason));
      stream.end();
    }
    closeClient(ev.code, ev.reason);
  });
  server.addEventListener('error', () => {
    if (!closed) stream.reset(ResetCode.CANCEL, 'the client WebSocket failed');
  });

  const headers = new Headers();
  const protocol = head.headers.find(([n]) => n.toLowerCase() === 'sec-websocket-protocol');
  if (protocol) headers.set('sec-websocket-protocol', protocol[1]);
  return new Response(null, { status: 101, webSocket: client, headers });
}
