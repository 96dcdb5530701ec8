// The agent's end of one HTTP tunnel request (docs/PROTOCOL.md §12.3): a mux stream from the tunnel carries the
// request head and body; Node's HTTP client sends them to the local server and the response head and body go
// back on the stream. Backpressure both ways: upload credit returns to the tunnel only once the local server's
// socket took the bytes, and the response is paused while the stream has no credit. The head is checked before
// anything reaches the local server; a local server that cannot be reached is answered with a plain 502 page.

import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { ResetCode } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';
import type { MuxStream } from '../protocol/stream';
import { serveWebSocket } from './ws-origin';
import { checkRequestHead, endToEndHeaders, HeadReader, type RequestHead } from '../protocol/tunnel-http';
import { errorResponse, originError, relayResponse, type Origin, type RequestRecord } from './origin-response';

export type { Origin, RequestRecord } from './origin-response';

// `Expect: 100-continue` was answered by the front end already; passing it on would make the local server wait.
const AGENT_DROPS = new Set(['expect']);

/** A fresh record for one request (filled in as it goes). */
export const newRequestRecord = (): RequestRecord => ({ method: '-', path: '-', client: '-', status: 0, bytesIn: 0, bytesOut: 0, ms: 0, error: null });

/**
 * Serves one stream of the tunnel. `onHead` runs once its request head has arrived (the tunnel opens streams ahead of
 * requests: one that closes without a head was never a request); `done` once the stream is over either way.
 */
export function serveRequestStream(
  stream: MuxStream, origin: Origin, record: RequestRecord, done: (r: RequestRecord) => void, onHead: () => void = () => {},
): void {
  const started = performance.now();
  let finished = false;
  const finish = (error: string | null) => {
    if (finished) return;
    finished = true;
    record.ms = performance.now() - started;
    record.error = error;
    done(record);
  };
  const reader = new HeadReader<RequestHead>(checkRequestHead);
  let req: ClientRequest | null = null;
  let res: IncomingMessage | null = null;

  const writeBody = (chunk: Uint8Array) => {
    record.bytesIn += chunk.length;
    const n = chunk.length;
    req!.write(chunk, (err) => {
      if (!err) stream.consume(n);
    });
  };

  stream.onData = (chunk) => {
    if (req) return writeBody(chunk);
    const got = reader.push(chunk);
    if (got === null) return stream.consume(chunk.length);
    if (got instanceof ProtocolError) {
      stream.reset(ResetCode.PROTOCOL, got.message);
      return finish(got.message);
    }
    stream.consume(chunk.length - got.rest.length);
    const head = got.head;
    record.method = head.method;
    record.path = head.target.split('?')[0];
    const forwarded = head.headers.filter(([n]) => n.toLowerCase() === 'x-forwarded-for').map(([, v]) => v).join(',');
    record.client = forwarded.split(',').pop()?.trim() || '-';
    onHead();
    if (head.upgrade === 'websocket') return serveWebSocket(stream, origin, head, got.rest, record, finish);
    const headers = endToEndHeaders(head.headers).filter(([n]) => !AGENT_DROPS.has(n.toLowerCase()));
    if (!headers.some(([n]) => n.toLowerCase() === 'host')) headers.push(['host', `${origin.host}:${origin.port}`]);
    // A body of unknown length: said so explicitly, else Node sends a GET's or DELETE's body unframed (smuggling).
    if (head.chunked && !headers.some(([n]) => n.toLowerCase() === 'content-length')) headers.push(['transfer-encoding', 'chunked']);
    try {
      req = httpRequest({
        host: origin.host, port: origin.port, method: head.method, path: head.target, agent: origin.agent,
        headers: headers.flat(), setHost: false,
      });
    } catch (err) {
      record.status = 400;
      record.bytesOut = errorResponse(stream, 400, `the request could not be sent: ${(err as Error).message}`);
      return finish(null);
    }
    req.on('response', (r) => respond(r));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (finished || stream.state === 'closed') return;
      const why = originError(err, origin);
      if (!res) {
        record.status = 502;
        record.bytesOut = errorResponse(stream, 502, why);
        return finish(why);
      }
      stream.reset(ResetCode.REMOTE_ERROR, why);
      finish(why);
    });
    if (got.rest.length > 0) writeBody(got.rest);
  };
  stream.onEnd = () => {
    if (req) req.end();
    else {
      stream.reset(ResetCode.PROTOCOL, 'the request ended inside its head');
      finish('the request ended inside its head');
    }
  };
  stream.onClose = (err) => {
    if (!err) return finish(null);
    req?.destroy();
    res?.destroy();
    finish(err.message);
  };

  const respond = (r: IncomingMessage) => {
    res = r;
    relayResponse(stream, r, record, finish);
  };

  stream.accept();
}
