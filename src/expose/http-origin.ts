// The agent's end of one HTTP tunnel request (docs/PROTOCOL.md §12.3): a mux stream from the tunnel carries the
// request head and body; Node's HTTP client sends them to the local server and the response head and body go
// back on the stream. Backpressure both ways: upload credit returns to the tunnel only once the local server's
// socket took the bytes, and the response is paused while the stream has no credit. The head is checked before
// anything reaches the local server; a local server that cannot be reached is answered with a plain 502 page.

import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { ResetCode } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';
import type { MuxStream } from '../protocol/stream';
import { checkRequestHead, encodeHead, endToEndHeaders, HeadReader, type HeaderList, type RequestHead } from '../protocol/tunnel-http';

export interface Origin {
  host: string;
  port: number;
  /** Keep-alive connections to the local server, shared by the agent's requests. */
  agent: Agent;
}

/** What one request did, for the log line and the counters (never headers, never the query). */
export interface RequestRecord {
  method: string;
  path: string;
  /** 0 when no response head was sent (the stream was reset). */
  status: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
  error: string | null;
}

// `Expect: 100-continue` was answered by the front end already; passing it on would make the local server wait.
const AGENT_DROPS = new Set(['expect']);

function pairs(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function originError(err: NodeJS.ErrnoException, origin: Origin): string {
  const where = `${origin.host}:${origin.port}`;
  if (err.code === 'ECONNREFUSED') return `the local server ${where} refused the connection`;
  if (err.code === 'ECONNRESET') return `the local server ${where} closed the connection`;
  return `the local server ${where} failed: ${err.code ?? err.message}`;
}

function errorResponse(stream: MuxStream, status: number, sentence: string): number {
  const body = new TextEncoder().encode(`${status} ${sentence}\n`);
  stream.write(encodeHead({
    status, statusText: status === 502 ? 'Bad Gateway' : 'Bad Request',
    headers: [['content-type', 'text/plain; charset=utf-8'], ['content-length', String(body.length)], ['cache-control', 'no-store']],
  }));
  stream.write(body);
  stream.end();
  return body.length;
}

export function serveRequestStream(stream: MuxStream, origin: Origin, done: (r: RequestRecord) => void): void {
  const started = performance.now();
  const record: RequestRecord = { method: '-', path: '-', status: 0, bytesIn: 0, bytesOut: 0, ms: 0, error: null };
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
    const headers = endToEndHeaders(head.headers).filter(([n]) => !AGENT_DROPS.has(n.toLowerCase()));
    if (!headers.some(([n]) => n.toLowerCase() === 'host')) headers.push(['host', `${origin.host}:${origin.port}`]);
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
    let head: Uint8Array;
    try {
      head = encodeHead({ status: r.statusCode ?? 0, statusText: r.statusMessage ?? '', headers: endToEndHeaders(pairs(r.rawHeaders)) });
    } catch (err) {
      r.destroy();
      const why = `the local server sent a response the tunnel cannot carry: ${(err as Error).message}`;
      record.status = 502;
      record.bytesOut = errorResponse(stream, 502, why);
      return finish(why);
    }
    record.status = r.statusCode!;
    stream.write(head);
    r.on('data', (chunk: Buffer) => {
      record.bytesOut += chunk.length;
      if (!stream.write(chunk) || !stream.writable) r.pause();
    });
    stream.onDrain = () => r.resume();
    r.on('end', () => stream.end());
    r.on('close', () => {
      if (r.complete || stream.state === 'closed') return;
      stream.reset(ResetCode.REMOTE_ERROR, 'the local server cut its response short');
      finish('the local server cut its response short');
    });
  };

  stream.accept();
}
