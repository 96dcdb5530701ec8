// Sequenced records in the real stack (PROTOCOL.md §2.5a): a relay-mode client and a real exit peer agree on them
// through the Worker's room in workerd; a stream carries 8 MB both ways through a real TCP echo server, and the
// acknowledgements empty the client's replay queue. Direct mode (the Worker as the far end) never uses them.
import { createServer, type Server } from 'node:net';
import { TunnelPool } from '../../src/client/pool';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TunnelConnection } from '../../src/client/connection';
import { ZksError } from '../../src/errors/zks-error';
import type { ReplayQueue } from '../../src/link/sequenced';
import { useRelayStack } from './relay-stack';

const stack = useRelayStack();
let echo: Server;
let echoPort = 0;

beforeAll(async () => {
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => echo.close(() => r())));

function connection(c: TunnelConnection | ZksError): TunnelConnection {
  if (c instanceof ZksError) throw c;
  return c;
}

/** Resolves once `cond()` holds, rechecked after every acknowledgement the replay queue takes (the awaited event). */
function untilAcknowledged(replay: ReplayQueue, cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const ack = replay.ack.bind(replay);
    replay.ack = (...a) => {
      const ok = ack(...a);
      if (cond()) resolve();
      return ok;
    };
    if (cond()) resolve();
  });
}

describe('sequenced records through a room', () => {
  it('client and exit peer agree on them; 8 MB echoed intact; the acknowledgements empty the replay queue', async () => {
    const { pool } = await stack.relay();
    const conn = connection(await pool.anyConnection());
    const replay = conn.link.replay;
    expect(replay).not.toBeNull();
    const opened = await pool.open({ host: '127.0.0.1', port: echoPort });
    if (!opened.ok) throw new Error(opened.message);
    const stream = opened.stream;
    const total = 8_000_000;
    const sent = new Uint8Array(total).map((_, i) => (i * 31 + (i >> 11)) & 0xff);
    const back = new Uint8Array(total);
    let got = 0;
    let maxHeld = 0;
    await new Promise<void>((resolve, reject) => {
      stream.onData = (chunk) => {
        back.set(chunk, got);
        got += chunk.length;
        stream.consume(chunk.length);
        maxHeld = Math.max(maxHeld, replay!.bytes);
        if (got === total) resolve();
      };
      stream.onClose = (err) => (err ? reject(err) : undefined);
      let off = 0;
      const pump = () => {
        while (off < total && stream.writable) {
          const n = Math.min(64 * 1024, total - off);
          stream.write(sent.subarray(off, off + n));
          off += n;
        }
        if (off === total) stream.end();
      };
      stream.onDrain = pump;
      pump();
    });
    expect(Buffer.from(back).equals(Buffer.from(sent))).toBe(true);
    // Everything but records holding only a PATH_ACK gets acknowledged (8 + 9 + 8 + 16 bytes each).
    await untilAcknowledged(replay!, () => replay!.unacknowledged().every((e) => e.message.length === 41));
    expect(maxHeld).toBeGreaterThan(0); // records were held until acknowledged
    expect(maxHeld).toBeLessThan(8 * 1024 * 1024 + 256 * 1024); // the budget and at most a record or two above it
    expect(conn.link.duplicatesDropped).toBe(0);
  });

  it('direct mode: the Worker chooses them only for a session it keeps (§11.8), never for a client that does not resume', async () => {
    const kept = connection(await stack.direct().anyConnection());
    expect(kept.link.replay).not.toBeNull();
    const pool = new TunnelPool({ url: stack.url, key: stack.key, resumeGraceMs: 0 });
    stack.defer(() => pool.stop());
    expect(connection(await pool.anyConnection()).link.replay).toBeNull();
  });
});
