// The far end of the link tests: accepts every stream it is offered and echoes what arrives, ending when the peer ends.
import type { MuxStream } from '../../src/protocol/stream';

export function echoStream(stream: MuxStream): void {
  stream.accept();
  stream.onData = (chunk) => (stream.write(chunk), stream.consume(chunk.length));
  stream.onEnd = () => stream.end();
}
