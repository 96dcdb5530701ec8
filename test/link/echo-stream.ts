// Both ends of the link tests' echo: echoStream accepts every stream it is offered and echoes what arrives (ending
// when the peer ends); echoThrough sends a known pattern through one stream of a link and checks it came back.
import { expect } from 'vitest';
import type { MuxStream } from '../../src/protocol/stream';
import type { SecureLink } from '../../src/link/secure-link';

export function echoStream(stream: MuxStream): void {
  stream.accept();
  stream.onData = (chunk) => (stream.write(chunk), stream.consume(chunk.length));
  stream.onEnd = () => stream.end();
}

export interface EchoOptions {
  /** Bytes per write (default 16 000). */
  chunk?: number;
  /** Runs once the stream is open, before the first write. */
  beforeWrite?: () => void;
  /** Awaited before each write at `offset`: a test pauses the writer there. */
  atOffset?: (offset: number) => Promise<void>;
  /** Each chunk that came back (tests that wait on events recheck their conditions here). */
  onChunk?: () => void;
}

/** Echoes `total` bytes through one new stream of `link`; resolves once all came back intact. */
export function echoThrough(link: SecureLink, total: number, opts: EchoOptions = {}): Promise<void> {
  const sent = new Uint8Array(total).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
  const back = new Uint8Array(total);
  const chunk = opts.chunk ?? 16_000;
  let got = 0;
  return new Promise<void>((resolve, reject) => {
    const stream = link.mux.openStream({ host: 'example.com', port: 443 });
    stream.onData = (data) => {
      back.set(data, got);
      got += data.length;
      stream.consume(data.length);
      opts.onChunk?.();
    };
    stream.onClose = (err) => (err ? reject(err) : resolve());
    stream.onResult = async () => {
      opts.beforeWrite?.();
      for (let off = 0; off < total; ) {
        if (opts.atOffset) await opts.atOffset(off);
        // The session's hold is advisory (as in socket-bridge.ts): a writer waits while the stream is not writable.
        if (!stream.writable) await new Promise<void>((r) => (stream.onDrain = () => r()));
        const n = Math.min(chunk, total - off);
        stream.write(sent.subarray(off, off + n));
        off += n;
      }
      stream.end();
    };
  }).then(() => {
    expect(got).toBe(total);
    expect(Buffer.from(back).equals(Buffer.from(sent))).toBe(true);
  });
}
