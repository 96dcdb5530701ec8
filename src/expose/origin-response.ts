// What the agent's request handlers share (http-origin.ts, ws-origin.ts): the local server's coordinates, the
// per-request record behind the log line, and the two ways a response goes back on the stream — the local server's
// own (head, then body under the stream's credit) or a plain page of the agent's.

import type { Agent, IncomingMessage } from 'node:http';
import { ResetCode } from '../protocol/constants';
import type { MuxStream } from '../protocol/stream';
import { encodeHead, endToEndHeaders, type HeaderList } from '../protocol/tunnel-http';

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
  /** The client as the tunnel saw it (the last X-Forwarded-For entry), '-' before the head arrived. */
  client: string;
  /** 0 when no response head was sent (the stream was reset). */
  status: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
  error: string | null;
}

function pairs(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

export function originError(err: NodeJS.ErrnoException, origin: Origin): string {
  const where = `${origin.host}:${origin.port}`;
  if (err.code === 'ECONNREFUSED') return `the local server ${where} refused the connection`;
  if (err.code === 'ECONNRESET') return `the local server ${where} closed the connection`;
  return `the local server ${where} failed: ${err.code ?? err.message}`;
}

export function errorResponse(stream: MuxStream, status: number, sentence: string): number {
  const body = new TextEncoder().encode(`${status} ${sentence}\n`);
  stream.write(encodeHead({
    status, statusText: status === 502 ? 'Bad Gateway' : 'Bad Request',
    headers: [['content-type', 'text/plain; charset=utf-8'], ['content-length', String(body.length)], ['cache-control', 'no-store']],
  }));
  stream.write(body);
  stream.end();
  return body.length;
}

/** Sends a local server's response back on the stream: its head, then its body under the stream's credit. */
export function relayResponse(stream: MuxStream, r: IncomingMessage, record: RequestRecord, finish: (error: string | null) => void): void {
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
}
