// A WebSocket through an HTTP tunnel, the agent's side (docs/PROTOCOL.md §12.5): the client's upgrade becomes a
// WebSocket of our own to the local server (`ws`, with the client's subprotocols and end-to-end headers); once it is
// open the stream answers 101 and carries whole messages both ways. A local server that refuses the upgrade is
// answered as a normal response (its status, head and body); one that cannot be reached gets the 502 page.
// Backpressure: the local server's socket is paused while the stream has no credit; the tunnel's messages are
// credited back only once `ws` has written them.

import type { IncomingMessage } from 'node:http';
import { WebSocket, type RawData } from 'ws';
import { ResetCode } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';
import type { MuxStream } from '../protocol/stream';
import { encodeHead, type RequestHead } from '../protocol/tunnel-http';
import { decodeWsClose, encodeWsClose, encodeWsMessage, MAX_WS_MESSAGE, WsMessageReader, WsMessageType } from '../protocol/tunnel-ws';
import { errorResponse, originError, relayResponse, type Origin, type RequestRecord } from './origin-response';

const sendableCode = (code: number) => (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);

export function serveWebSocket(
  stream: MuxStream, origin: Origin, head: RequestHead, rest: Uint8Array, record: RequestRecord, finish: (error: string | null) => void,
): void {
  const protocols = head.headers
    .filter(([n]) => n.toLowerCase() === 'sec-websocket-protocol')
    .flatMap(([, v]) => v.split(',').map((p) => p.trim()).filter(Boolean));
  const headers: Record<string, string> = {};
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (lower === 'sec-websocket-protocol' || lower === 'host') continue;
    headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`;
  }
  const host = head.headers.find(([n]) => n.toLowerCase() === 'host')?.[1];
  let ws: WebSocket;
  try {
    ws = new WebSocket(`ws://${origin.host.includes(':') ? `[${origin.host}]` : origin.host}:${origin.port}${head.target}`, protocols, {
      headers: host ? { ...headers, host } : headers, perMessageDeflate: false, maxPayload: MAX_WS_MESSAGE, followRedirects: false,
    });
  } catch (err) {
    record.status = 400;
    record.bytesOut = errorResponse(stream, 400, `the WebSocket request could not be sent: ${(err as Error).message}`);
    return finish(null);
  }
  let open = false;

  ws.on('unexpected-response', (_req, res: IncomingMessage) => {
    // Not a 101: the local server's answer goes back as it is (403, 404, a redirect, …).
    relayResponse(stream, res, record, finish);
    res.on('end', () => finish(null));
  });
  ws.on('error', (err: NodeJS.ErrnoException) => {
    if (stream.state === 'closed') return;
    const why = originError(err, origin);
    if (!open && record.status === 0) {
      record.status = 502;
      record.bytesOut = errorResponse(stream, 502, why);
    } else stream.reset(ResetCode.REMOTE_ERROR, why);
    finish(why);
  });
  ws.on('open', () => {
    open = true;
    record.status = 101;
    stream.write(encodeHead({
      status: 101, statusText: 'Switching Protocols', headers: ws.protocol ? [['sec-websocket-protocol', ws.protocol]] : [],
    }));
    if (early.length > 0) for (const c of early.splice(0)) fromTunnel(c);
  });
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    record.bytesOut += bytes.length;
    if (!stream.write(encodeWsMessage(isBinary ? WsMessageType.BINARY : WsMessageType.TEXT, bytes)) || !stream.writable) ws.pause();
  });
  stream.onDrain = () => ws.resume();
  ws.on('close', (code: number, reason: Buffer) => {
    if (open && stream.state !== 'closed') {
      stream.write(encodeWsClose(code === 1005 ? 0 : code, reason.toString()));
      stream.end();
    }
    finish(null);
  });

  // Messages from the tunnel: held until the local WebSocket is open, then sent in order.
  const early: Uint8Array[] = [];
  const reader = new WsMessageReader();
  const fromTunnel = (chunk: Uint8Array) => {
    if (!open) return void early.push(chunk);
    const messages = reader.push(chunk);
    if (messages instanceof ProtocolError) {
      stream.reset(ResetCode.PROTOCOL, messages.message);
      ws.terminate();
      return finish(messages.message);
    }
    let pending = messages.length;
    if (pending === 0) return stream.consume(chunk.length);
    const sent = () => {
      if (--pending === 0) stream.consume(chunk.length);
    };
    for (const m of messages) {
      if (m.type === WsMessageType.CLOSE) {
        const { code, reason } = decodeWsClose(m.payload);
        try {
          if (sendableCode(code)) ws.close(code, reason);
          else ws.close();
        } catch {
          ws.close(); // a reason ws will not send (over 123 bytes): the code alone is not worth an exception here
        }
        sent();
        continue;
      }
      record.bytesIn += m.payload.length;
      ws.send(m.payload, { binary: m.type === WsMessageType.BINARY }, sent);
    }
  };
  stream.onData = fromTunnel;
  if (rest.length > 0) fromTunnel(rest);
  stream.onEnd = () => {
    if (ws.readyState === WebSocket.OPEN) ws.close();
  };
  stream.onClose = (err) => {
    if (!err) return;
    ws.terminate();
    finish(err.message);
  };
}
