// Resume in relay mode (PROTOCOL.md §11.7) with the real Worker in workerd, a real exit peer and the real client pool:
// the client's WebSocket is cut (terminate: as if the network dropped it) or the exit's own room WebSocket is, in the
// middle of a transfer through a real TCP echo server; the stream goes on with every byte, in order. A resume that
// cannot prove the session, or comes after the exit's grace period, is refused and the streams end with that reason.
import { createHash } from 'node:crypto';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TunnelConnection } from '../../src/client/connection';
import { TunnelPool } from '../../src/client/pool';
import { dialResume } from '../../src/client/resume-dial';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveResumeKeys } from '../../src/crypto/resume';
import { deriveRoomKeys } from '../../src/crypto/room';
import { ZksError } from '../../src/errors/zks-error';
import type { MuxStream } from '../../src/protocol/stream';
import { echoThrough, watcher } from '../fixtures/resume-helpers';
import type { ExitPeer } from '../../src/exit/index';
import { useRelayStack } from './relay-stack';
import { relayLinkText } from '../../src/control/format';
import { relayLinkSnapshot } from '../../src/control/status';

const stack = useRelayStack();
let echo: Server;
let echoPort = 0;
/** Hashes what each connection uploads; answers with the hex sha256 once the upload ends. */
let sink: Server;
let sinkPort = 0;

beforeAll(async () => {
  sink = createServer((s) => {
    const h = createHash('sha256');
    s.on('error', () => {});
    s.on('data', (d) => h.update(d));
    s.on('end', () => s.end(h.digest('hex')));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  sinkPort = (sink.address() as { port: number }).port;
  echo = createServer((s) => {
    s.on('error', () => {}); // a session that ends for good resets its target connections
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((r) => echo.close(() => r()));
  await new Promise<void>((r) => sink.close(() => r()));
});

async function resumingRelay(opts: { exitGraceMs?: number; clientGraceMs?: number; openTcp?: (host: string, port: number) => Promise<Socket> } = {}) {
  const w = watcher();
  const { exit, secret } = await stack.relay({ resumeGraceMs: opts.exitGraceMs ?? 30_000, log: w.log });
  const room = await deriveRoomKeys(nodeCrypto, secret);
  const pool = new TunnelPool({ url: stack.url, key: stack.key, room, resumeGraceMs: opts.clientGraceMs ?? 30_000, log: w.log, openTcp: opts.openTcp });
  stack.defer(() => pool.stop());
  const conn = await pool.anyConnection();
  if (conn instanceof ZksError) throw conn;
  await conn.link.mux.datagrams.peerCapabilities(); // resume is armed once the exit said it keeps sessions
  await Promise.resolve();
  return { exit, pool, conn, room, w };
}

async function openEcho(pool: TunnelPool): Promise<MuxStream> {
  const opened = await pool.open({ host: '127.0.0.1', port: echoPort });
  if (!opened.ok) throw new Error(opened.message);
  return opened.stream;
}

const MB = 1024 * 1024;
const exitRoom = (exit: ExitPeer) => (exit as unknown as { attachments: Array<{ room: { terminate(why: string): void } }> }).attachments[0]!.room;

describe('resume in relay mode', () => {
  it("the client's WebSocket cut twice mid-transfer: the stream goes on, 40 MB echoed intact", async () => {
    const { pool, conn, exit, w } = await resumingRelay();
    const stream = await openEcho(pool);
    const cuts = [10 * MB, 25 * MB];
    const ok = await echoThrough(stream, 40 * MB, (sent) => {
      if (cuts.length && sent >= cuts[0]!) {
        cuts.shift();
        (conn as TunnelConnection).terminate();
      }
    });
    expect(ok).toBe(true);
    expect(conn.resumes).toBe(2);
    expect(conn.closed).toBe(false);
    expect(w.lines.filter((l) => /session resumed after \d+ ms/.test(l))).toHaveLength(2);
    expect(exit.resumes!.detached).toBe(0);
    // zks status / zks-tui show it (relayLinkSnapshot is what the control socket sends).
    expect(relayLinkText(relayLinkSnapshot(conn))).toMatch(/via room, resumed 2×$/);
    expect(conn.link.recordsResent).toBeGreaterThanOrEqual(0);
  });

  it('an upload cut three times while its writers wait for credit: the target receives every byte, in order', async () => {
    const { pool, conn } = await resumingRelay();
    const opened = await pool.open({ host: '127.0.0.1', port: sinkPort });
    if (!opened.ok) throw new Error(opened.message);
    const stream = opened.stream;
    const total = 48 * MB;
    const data = new Uint8Array(total).map((_, i) => (i * 7 + (i >> 13)) & 0xff);
    const answer = new Promise<string>((resolve, reject) => {
      let text = '';
      stream.onData = (chunk) => {
        text += Buffer.from(chunk).toString();
        stream.consume(chunk.length);
        if (text.length === 64) resolve(text);
      };
      stream.onClose = (err) => (err ? reject(err) : undefined);
    });
    const cuts = [8 * MB, 20 * MB, 33 * MB];
    let off = 0;
    const pump = () => {
      while (off < total && stream.writable) {
        stream.write(data.subarray(off, off + 64 * 1024));
        off += 64 * 1024;
        if (cuts.length && off >= cuts[0]!) {
          cuts.shift();
          conn.terminate();
        }
      }
      if (off === total) stream.end();
    };
    stream.onDrain = pump;
    pump();
    expect(await answer).toBe(createHash('sha256').update(data).digest('hex'));
    expect(conn.resumes).toBe(3);
  });

  it("the exit's own room WebSocket cut (as in a Worker restart): sessions wait, the client resumes once the exit is back", async () => {
    const { pool, conn, exit, w } = await resumingRelay();
    const stream = await openEcho(pool);
    let cut = false;
    const ok = await echoThrough(stream, 16 * MB, (sent) => {
      if (!cut && sent >= 4 * MB) {
        cut = true;
        exitRoom(exit).terminate('test: the room WebSocket dropped');
      }
    });
    expect(ok).toBe(true);
    expect(conn.resumes).toBeGreaterThanOrEqual(1);
    expect(w.lines.some((l) => /lost its WebSocket .*kept 30 s for its client/.test(l))).toBe(true);
  });

  it('a resume without the secret is refused and touches nothing; the real session goes on', async () => {
    const { pool, conn, room, w } = await resumingRelay();
    const stream = await openEcho(pool);
    // A client that knows the room but not the session: it guesses a ticket and a secret.
    const forged = await deriveResumeKeys(nodeCrypto, new Uint8Array(32).fill(7));
    const attempt = dialResume({
      url: `${stack.url}/room/${Buffer.from(room.roomId).toString('base64url')}`, relayName: stack.url, key: stack.key, roomId: room.roomId, psk: room.psk,
      timeoutMs: 10_000, resume: forged, receivedNext: () => 0,
    });
    await expect(attempt).rejects.toMatchObject({ code: 'ZKS_ERR_RESUME_REFUSED', message: expect.stringMatching(/no such session/) });
    expect(await echoThrough(stream, 2 * MB, () => {})).toBe(true);
    expect(conn.resumes).toBe(0);
    expect(w.lines.some((l) => /resume refused: no such session/.test(l))).toBe(true);
  });

  it('a resume with the real ticket but without the secret is refused', async () => {
    const { conn, room, w } = await resumingRelay();
    const real = (conn as unknown as { resume: { keys: { ticket: Uint8Array } } }).resume.keys;
    const attempt = dialResume({
      url: `${stack.url}/room/${Buffer.from(room.roomId).toString('base64url')}`, relayName: stack.url, key: stack.key, roomId: room.roomId, psk: room.psk,
      timeoutMs: 10_000, resume: { ticket: real.ticket, secret: new Uint8Array(32).fill(9) }, receivedNext: () => 0,
    });
    await expect(attempt).rejects.toMatchObject({ code: 'ZKS_ERR_RESUME_REFUSED', message: expect.stringMatching(/proof is wrong/) });
    expect(w.lines.some((l) => /resume refused: the resume proof is wrong/.test(l))).toBe(true);
    expect(conn.closed).toBe(false);
  });

  it('the client closed while it resumes: it stops dialling and its streams end', async () => {
    let blocked = false;
    let dials = 0;
    const openTcp = (host: string, port: number) =>
      new Promise<Socket>((resolve, reject) => {
        dials++;
        if (blocked) return reject(new Error('test: the relay is unreachable'));
        const s = tcpConnect({ host, port }, () => resolve(s));
        s.once('error', reject);
      });
    const { pool, conn, w } = await resumingRelay({ openTcp });
    const stream = await openEcho(pool);
    const closed = new Promise<void>((resolve) => (stream.onClose = () => resolve()));
    blocked = true;
    conn.terminate();
    await w.until(() => w.lines.some((l) => /resuming the session/.test(l)));
    await pool.stop();
    await closed;
    // The attempt in flight fails (blocked); the loop sees the connection closed and stops instead of dialling again.
    await w.until(() => w.lines.some((l) => /stopped resuming: the connection was closed/.test(l)));
    expect(dials).toBe(2); // the first connection, and the one resume attempt that was under way
    expect(conn.closed).toBe(true);
  });

  it("after the exit's grace period the resume is refused: the streams end, saying so", async () => {
    let blocked = false;
    const openTcp = (host: string, port: number) =>
      new Promise<Socket>((resolve, reject) => {
        if (blocked) return reject(new Error('test: the relay is unreachable'));
        const s = tcpConnect({ host, port }, () => resolve(s));
        s.once('error', reject);
      });
    const { pool, conn, w } = await resumingRelay({ exitGraceMs: 300, openTcp });
    const stream = await openEcho(pool);
    const closed = new Promise<Error | null>((resolve) => (stream.onClose = (err) => resolve(err ?? null)));
    blocked = true;
    conn.terminate();
    await w.until(() => w.lines.some((l) => /did not resume it within/.test(l)));
    blocked = false;
    const err = await closed;
    expect(err?.message).toMatch(/could not be resumed: the exit peer refused to resume the session: no such session/);
    expect(conn.resumes).toBe(0);
  });
});
