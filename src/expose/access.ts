// `zks access --id ID --secret S (--listen HOST:PORT | --stdio)`: the client end of a TCP tunnel (`zks expose
// tcp://…`, docs/design/expose.md). It joins the tunnel's room (tunnelRoomSecret) as a relay-mode client: each
// local connection — or standard input and output, for `ssh -o ProxyCommand` — becomes one stream to the agent,
// sealed end to end (the Worker pairs the two ends and never holds a key). The agent sends every stream to its one
// service, whatever is asked, so the target named here is only a label.

import { createServer, type Server } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { nodeCrypto } from '../crypto/node';
import { deriveRoomKeys, tunnelRoomSecret } from '../crypto/room';
import { ZksError } from '../errors/zks-error';
import { TunnelPool } from '../client/pool';
import { bridge } from '../link/socket-bridge';
import { ResetCode } from '../protocol/constants';
import type { Target } from '../protocol/address';
import type { MuxStream } from '../protocol/stream';

/** What access names when it opens a stream: the agent ignores it (its one service is fixed). */
export const TUNNEL_TARGET: Target = { host: 'tunnel.invalid', port: 1 };

export interface AccessOptions {
  relay: string;
  key: Uint8Array;
  id: string;
  /** The tunnel secret (`zks keygen`), the same as the agent's. */
  secret: string;
  log?: (line: string) => void;
}

/** The tunnel's relay-mode pool; resolves once the agent answered (rejects when it is not there). */
export async function openTunnel(opts: AccessOptions): Promise<TunnelPool> {
  const room = await deriveRoomKeys(nodeCrypto, await tunnelRoomSecret(nodeCrypto, opts.secret, opts.id));
  const pool = new TunnelPool({ url: opts.relay, key: opts.key, room, log: opts.log });
  try {
    await pool.start();
  } catch (err) {
    await pool.stop();
    const why = err instanceof Error ? err.message : String(err);
    throw new ZksError('ZKS_ERR_EXIT_OFFLINE', `tunnel "${opts.id}" is not reachable (${why}): is \`zks expose … --id ${opts.id}\` running with the same secret?`);
  }
  return pool;
}

/** Listens on `host`:`port`; every connection is one stream through the tunnel. */
export async function listenForAccess(pool: TunnelPool, host: string, port: number, log: (line: string) => void): Promise<Server> {
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    socket.on('error', () => undefined); // bridge() reports what matters; a reset client must not crash us
    void pool.open(TUNNEL_TARGET).then((r) => {
      if (!r.ok) {
        log(`tunnel stream refused: ${r.message}`);
        return void socket.resetAndDestroy();
      }
      bridge(socket, r.stream, new Uint8Array(0));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ZksError('ZKS_ERR_CONFIG', `cannot listen on ${host}:${port}: ${err.message}`)));
    server.listen({ host, port }, () => resolve());
  });
  return server;
}

/**
 * One stream through the tunnel on `input` / `output` (standard input and output for ProxyCommand); resolves when
 * both directions have ended, rejects when the stream was reset or could not be opened.
 */
export async function pipeThroughTunnel(pool: TunnelPool, input: Readable, output: Writable): Promise<void> {
  const r = await pool.open(TUNNEL_TARGET);
  if (!r.ok) throw new ZksError('ZKS_ERR_EXIT_OFFLINE', `the tunnel's service did not answer: ${r.message}`);
  return pipeStream(r.stream, input, output);
}

function pipeStream(stream: MuxStream, input: Readable, output: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let inputEnded = false;
    let outputEnded = false;
    const done = () => inputEnded && outputEnded && resolve();
    input.on('data', (chunk: Buffer) => {
      if (!stream.write(chunk) || !stream.writable) input.pause();
    });
    stream.onDrain = () => input.resume();
    input.on('end', () => {
      inputEnded = true;
      stream.end();
      done();
    });
    input.on('error', (err) => stream.reset(ResetCode.CANCEL, `input failed: ${err.message}`));
    stream.onData = (chunk) => {
      const n = chunk.length;
      output.write(chunk, (err) => {
        if (!err) stream.consume(n);
      });
    };
    stream.onEnd = () => {
      outputEnded = true;
      output.end();
      done();
    };
    stream.onClose = (err) => {
      if (err) reject(err);
      else {
        // Both ends closed cleanly: whatever input is left has nowhere to go.
        input.pause();
        resolve();
      }
    };
    input.resume();
  });
}
