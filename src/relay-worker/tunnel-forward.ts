// One public request through an HTTP tunnel (docs/PROTOCOL.md §12.3): the request head and then its body go to
// the agent on a fresh mux stream, the response head and body come back on it. Bodies stream both ways under the
// stream's credit: the upload is read from the client only while the stream is writable, the download is handed
// to the client's response only as it reads (credit returned on pull), so neither ever sits whole in the Worker.
// A stream that dies before the response head is a 502; after it, the response body is cut short with an error
// (the client sees an incomplete transfer, never a silently short one).

import { ConnectResult, ResetCode } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';
import type { MuxStream } from '../protocol/stream';
import {
  checkResponseHead,
  encodeHead,
  endToEndHeaders,
  HeadReader,
  TUNNEL_PUBLIC_PREFIX,
  WEBSOCKET_HOP_FIELDS,
  type HeaderList,
  type RequestHead,
  type ResponseHead,
} from '../protocol/tunnel-http';
import { tunnelErrorPage } from './tunnel-pages';
import { acceptUpgrade } from './tunnel-websocket';

export interface ForwardOptions {
  id: string;
  keepPrefix: boolean;
  maxBodyBytes: number | null;
  /** The local server's answer must begin within this long (504 otherwise). */
  headTimeoutMs: number;
  /** Fields the tunnel consumed or set itself (its Basic auth, the Worker's internal headers): not passed on. */
  dropHeaders: ReadonlySet<string>;
}

const UPLOAD_BLOCK_MIN = 16 * 1024;
const UPLOAD_BLOCK_MAX = 64 * 1024;

/** Statuses whose responses have no body whatever their headers say (RFC 9110 §6.4.1). */
const NO_BODY = new Set([204, 205, 304]);

/** The request head the agent gets, or an error response for the client (400/431). */
export function requestHead(request: Request, opts: ForwardOptions): RequestHead | Response {
  const url = new URL(request.url); // dot segments, plain or %2e-encoded, are already resolved here
  const prefix = `${TUNNEL_PUBLIC_PREFIX}${opts.id}`;
  const path = opts.keepPrefix ? url.pathname : url.pathname.slice(prefix.length) || '/';
  if (!path.startsWith('/')) return tunnelErrorPage(400, 'The request path is not under this tunnel.');
  const raw: HeaderList = [];
  for (const [name, value] of request.headers) if (!opts.dropHeaders.has(name)) raw.push([name, value]);
  const has = (name: string) => request.headers.has(name);
  // Request smuggling: a message framed two ways is refused here even where the front end let it through.
  if (has('content-length') && has('transfer-encoding')) return tunnelErrorPage(400, 'Content-Length and Transfer-Encoding together are refused.');
  // The runtime rewrites Accept-Encoding to what it can decode (the client may accept nothing) and compresses for
  // the client itself: the local server is asked for identity bodies, so no client gets a coding it did not ask for.
  const headers = endToEndHeaders(raw).filter(([n]) => !n.startsWith('x-forwarded-') && n !== 'accept-encoding');
  headers.push(['accept-encoding', 'identity']);
  const clientIp = request.headers.get('cf-connecting-ip');
  const forwardedFor = request.headers.get('x-forwarded-for');
  if (clientIp) headers.push(['x-forwarded-for', forwardedFor ? `${forwardedFor}, ${clientIp}` : clientIp]);
  else if (forwardedFor) headers.push(['x-forwarded-for', forwardedFor]);
  headers.push(['x-forwarded-proto', url.protocol.replace(/:$/, '')]);
  headers.push(['x-forwarded-host', request.headers.get('host') ?? url.host]);
  // A body without a length (chunked from the client) is chunked to the local server too: for GET or DELETE
  // Node would otherwise send it unframed, and the local server would read it as the next request.
  const chunked = request.body !== null && !request.headers.has('content-length');
  const upgrade = request.headers.get('upgrade');
  if (upgrade?.toLowerCase() === 'websocket') {
    return { method: request.method, target: path + url.search, headers: headers.filter(([n]) => !WEBSOCKET_HOP_FIELDS.has(n)), upgrade: 'websocket' };
  }
  return chunked ? { method: request.method, target: path + url.search, headers, chunked } : { method: request.method, target: path + url.search, headers };
}

/** `done` is called once when the request is over (its stream closed, or it never got one). */
export async function forwardRequest(
  request: Request, streams: { take(): MuxStream }, head: RequestHead, opts: ForwardOptions, done: () => void,
): Promise<Response> {
  let encoded: Uint8Array;
  try {
    encoded = encodeHead(head);
  } catch (err) {
    done();
    if (err instanceof ProtocolError) return tunnelErrorPage(431, 'The request line and headers are too large.');
    throw err;
  }
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (opts.maxBodyBytes !== null && declared > opts.maxBodyBytes) {
    done();
    return tunnelErrorPage(413, `This tunnel accepts request bodies of at most ${opts.maxBodyBytes} bytes.`);
  }
  let stream: MuxStream;
  try {
    stream = streams.take();
  } catch {
    done();
    return tunnelErrorPage(502, "The tunnel's agent is not connected.");
  }
  stream.write(encoded);

  return new Promise<Response>((resolve) => {
    let answered = false;
    let body: ResponseBody | null = null;
    const answer = (r: Response) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      stream.reset(ResetCode.CANCEL, 'no response head in time');
      answer(tunnelErrorPage(504, `The local server did not answer within ${opts.headTimeoutMs / 1000} s.`));
    }, opts.headTimeoutMs);

    const reader = new HeadReader<ResponseHead>(checkResponseHead);
    stream.onData = (chunk) => {
      if (body) return body.push(chunk);
      const got = reader.push(chunk);
      stream.consume(chunk.length);
      if (got === null) return;
      if (got instanceof ProtocolError) {
        stream.reset(ResetCode.PROTOCOL, got.message);
        return answer(tunnelErrorPage(502, 'The tunnel received an invalid response head.'));
      }
      if (got.head.status === 101) {
        if (head.upgrade) return answer(acceptUpgrade(stream, got.head, got.rest));
        stream.reset(ResetCode.PROTOCOL, '101 without an upgrade');
        return answer(tunnelErrorPage(502, 'The tunnel received an invalid response head.'));
      }
      // A refused upgrade is an ordinary response: our direction (kept open for messages) ends, so the stream can.
      if (head.upgrade) stream.end();
      body = new ResponseBody(stream);
      if (got.rest.length > 0) body.push(got.rest);
      const empty = request.method === 'HEAD' || NO_BODY.has(got.head.status);
      if (empty) body.discard();
      answer(new Response(empty ? null : withLength(body.readable, got.head.headers), {
        status: got.head.status,
        statusText: got.head.statusText,
        headers: responseHeaders(got.head.headers),
        encodeBody: 'manual', // the local server's Content-Encoding stays as it sent it: no second compression
      } as ResponseInit));
    };
    stream.onEnd = () => body?.end();
    stream.onResult = (code, message) => {
      if (code !== ConnectResult.OK) answer(tunnelErrorPage(502, `The tunnel's agent refused the request: ${message}`));
    };
    const upload = { tooLarge: false };
    stream.onClose = (err) => {
      done();
      if (err) {
        body?.fail(err);
        answer(upload.tooLarge
          ? tunnelErrorPage(413, `This tunnel accepts request bodies of at most ${opts.maxBodyBytes} bytes.`)
          : tunnelErrorPage(502, "The connection to the tunnel's agent was lost."));
      }
    };
    // An upgrade's stream stays open for the WebSocket's messages (tunnel-websocket.ts).
    if (!head.upgrade) void pumpUpload(request, stream, opts.maxBodyBytes, upload);
  });
}

/**
 * A body of announced length keeps its Content-Length (the runtime would send a stream chunked): FixedLengthStream
 * also errors the response if the agent's bytes fall short or run over, so the client never gets a wrong length.
 */
function withLength(body: ReadableStream<Uint8Array>, headers: HeaderList): ReadableStream<Uint8Array> {
  const lengths = headers.filter(([n]) => n.toLowerCase() === 'content-length').map(([, v]) => v.trim());
  if (lengths.length === 0 || !lengths.every((v) => v === lengths[0]) || !/^\d{1,15}$/.test(lengths[0])) return body;
  const fixed = new FixedLengthStream(Number(lengths[0]));
  body.pipeTo(fixed.writable).catch(() => {}); // the readable side reports the error to the client
  return fixed.readable;
}

/** Drops what the Worker must not pass on (hop-by-hop fields; the runtime frames the body itself). */
function responseHeaders(list: HeaderList): Headers {
  const h = new Headers();
  for (const [name, value] of endToEndHeaders(list)) h.append(name, value);
  return h;
}

async function pumpUpload(request: Request, stream: MuxStream, maxBodyBytes: number | null, upload: { tooLarge: boolean }): Promise<void> {
  if (!request.body) return stream.end();
  // BYOB reads in blocks growing to 64 KiB: the default reader's small chunks cost a promise and a frame each.
  const reader = request.body.getReader({ mode: 'byob' });
  let block = new ArrayBuffer(UPLOAD_BLOCK_MIN);
  let sent = 0;
  let drained: (() => void) | null = null;
  let closed = false;
  stream.onDrain = () => {
    const d = drained;
    drained = null;
    d?.();
  };
  const onClose = stream.onClose;
  stream.onClose = (err) => {
    closed = true;
    stream.onDrain?.();
    onClose?.(err);
  };
  try {
    while (!closed) {
      if (!stream.writable && stream.state !== 'closed') {
        await new Promise<void>((r) => (drained = r));
        continue;
      }
      const { value, done } = await reader.read(new Uint8Array(block));
      if (done || !value) return stream.end();
      sent += value.length;
      if (maxBodyBytes !== null && sent > maxBodyBytes) {
        // Chunked uploads announce no length: the limit is found mid-way, and the request cannot succeed.
        upload.tooLarge = true;
        stream.reset(ResetCode.CANCEL, `request body over ${maxBodyBytes} bytes`);
        return;
      }
      stream.write(value); // copied into the record (or the stream's queue) before the next read reuses the block
      block = value.buffer as ArrayBuffer;
      if (value.length === block.byteLength && block.byteLength < UPLOAD_BLOCK_MAX) block = new ArrayBuffer(block.byteLength * 2);
    }
  } catch (err) {
    stream.reset(ResetCode.CANCEL, `the client's upload failed: ${(err as Error).message}`);
  } finally {
    if (closed) reader.cancel().catch(() => {});
  }
}

/**
 * The response body as a ReadableStream that takes bytes from the mux stream only as the client reads: credit
 * goes back to the agent on pull, so a slow client holds at most one stream window here.
 */
class ResponseBody {
  readonly readable: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private queue: Uint8Array[] = [];
  private wanted = false;
  private ended = false;
  private discarded = false;
  /** Closed or errored: the controller takes nothing more. */
  private finished = false;

  constructor(private readonly stream: MuxStream) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => void (this.controller = c),
        pull: () => this.deliver(),
        cancel: () => this.stream.reset(ResetCode.CANCEL, 'the client stopped reading the response'),
      },
      { highWaterMark: 0 },
    );
  }

  push(chunk: Uint8Array): void {
    if (this.discarded) return this.stream.consume(chunk.length);
    this.queue.push(chunk);
    if (this.wanted) this.deliver();
  }

  end(): void {
    this.ended = true;
    if (!this.discarded) this.deliver();
  }

  fail(err: Error): void {
    // After the agent's FIN the response is whole: a reset that follows (the local server closed while the
    // upload still ran, e.g. after an early 413) must not throw away what the client has yet to read.
    if (this.discarded || this.finished || this.ended) return;
    this.finished = true;
    this.queue = [];
    this.controller.error(err);
  }

  /** HEAD and bodiless statuses: whatever the agent still sends is read and dropped. */
  discard(): void {
    this.discarded = true;
    for (const c of this.queue) this.stream.consume(c.length);
    this.queue = [];
  }

  private deliver(): void {
    const chunk = this.queue.shift();
    if (chunk) {
      this.wanted = false;
      this.controller.enqueue(chunk);
      this.stream.consume(chunk.length);
      return;
    }
    if (this.ended) {
      if (!this.finished) this.controller.close();
      this.finished = true;
      return;
    }
    this.wanted = true;
  }
}
