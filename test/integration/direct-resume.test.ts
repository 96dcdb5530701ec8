// Resume in direct mode (PROTOCOL.md §11.8): the real Worker in workerd keeps each direct-mode session in a ZksSession
// Durable Object, which holds the target connections through a lost client WebSocket. The client's WebSocket is cut
// (terminate: as if the network dropped it) in the middle of a transfer through a real TCP echo server, and the
// stream goes on with every byte, in order. A resume that cannot prove the session, names one that is gone, or comes
// after the Worker's grace period, is refused, and the streams end with that reason; a Worker that keeps no sessions
// (the default on Cloudflare: ZKS_DIRECT_RESUME) refuses at once and the streams reset as before.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import type { TunnelConnection } from '../../src/client/connection';
import { TunnelPool } from '../../src/client/pool';
import { dialResume } from '../../src/client/resume-dial';
import { createClientHello, encodeBase64Url } from '../../src/crypto/handshake';
import { sessionName } from '../../src/crypto/resume';
import { nodeCrypto } from '../../src/crypto/node';
import { CloseCode } from '../../src/protocol/constants';
import WebSocket from 'ws';
import { ZksError } from '../../src/errors/zks-error';
import type { MuxStream } from '../../src/protocol/stream';
import { echoOpen, echoThrough, watcher } from '../fixtures/resume-helpers';

const MB = 1024 * 1024;
const key = new Uint8Array(randomBytes(32));
let echo: Server;
let echoPort = 0;
const workers = new Map<string, DevWorker>();
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  echo = createServer((s) => {
    s.on('error', () => {}); // a session that ends for good resets its target connections
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  for (const w of workers.values()) await w.dispose();
  await new Promise<void>((r) => echo.close(() => r()));
});

/** The Worker, once per grace setting (0: keeps no sessions), for the file. */
async function worker(resumeGraceMs = 30_000): Promise<DevWorker> {
  const name = String(resumeGraceMs);
  let w = workers.get(name);
  if (!w) {
    w = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true, resumeGraceMs });
    workers.set(name, w);
  }
  return w;
}

async function directPool(w: DevWorker, opts: { clientGraceMs?: number; openTcp?: (host: string, port: number) => Promise<Socket> } = {}) {
  const log = watcher();
  const pool = new TunnelPool({ url: w.url, key, resumeGraceMs: opts.clientGraceMs ?? 30_000, log: log.log, openTcp: opts.openTcp });
  cleanups.push(() => pool.stop());
  const conn = await pool.anyConnection();
  if (conn instanceof ZksError) throw conn;
  await conn.link.mux.datagrams.peerCapabilities(); // resume is armed once the Worker said it keeps the session
  return { pool, conn, w: log };
}

async function openEcho(pool: TunnelPool): Promise<MuxStream> {
  const opened = await pool.open({ host: '127.0.0.1', port: echoPort });
  if (!opened.ok) throw new Error(opened.message);
  return opened.stream;
}

describe('resume in direct mode', () => {
  it("the client's WebSocket cut twice mid-transfer: the Worker kept the target connection, 40 MB echoed intact", async () => {
    const { pool, conn, w } = await directPool(await worker());
    expect(conn.sessionKept).toBe(true);
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
  });
});

/** What a connection keeps to resume its session (private: read for the forged-resume tests). */
function resumeState(conn: TunnelConnection): { keys: { secret: Uint8Array; ticket: Uint8Array }; sessionPath: string } {
  return (conn as unknown as { resume: { keys: { secret: Uint8Array; ticket: Uint8Array }; sessionPath: string } }).resume;
}

/** A resume attempt with these keys at `path`, as the client would make it; resolves with how it ended. */
async function tryResume(w: DevWorker, path: string, keys: { secret: Uint8Array; ticket: Uint8Array }): Promise<string> {
  try {
    const r = await dialResume({ url: `${w.url}${path}`, relayName: w.url, key, psk: key, timeoutMs: 10_000, resume: keys, receivedNext: () => 0 });
    r.socket.terminate('test');
    return 'resumed';
  } catch (err) {
    return err instanceof ZksError ? `${err.code}: ${err.message}` : String(err);
  }
}

/** Gates the client's TCP connections to the Worker: closed, a dial fails at once (the relay looks unreachable). */
function gate() {
  let open = true;
  return {
    close: () => void (open = false),
    open: () => void (open = true),
    openTcp: async (host: string, port: number): Promise<Socket> => {
      const { connect } = await import('node:net');
      if (!open) throw new ZksError('ZKS_ERR_RELAY_UNREACHABLE', 'the test keeps the relay unreachable');
      const s = connect({ host, port });
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      return s;
    },
  };
}

describe('resume in direct mode: refused', () => {
  it('a forged proof and a stale ticket are refused; the real session is untouched and goes on', async () => {
    const w = await worker();
    const { pool, conn } = await directPool(w);
    const stream = await openEcho(pool);
    const { keys, sessionPath } = resumeState(conn);
    const forged = { secret: new Uint8Array(randomBytes(32)), ticket: keys.ticket };
    expect(await tryResume(w, sessionPath, forged)).toBe('ZKS_ERR_RESUME_REFUSED: the relay refused to resume the session: the resume proof is wrong');
    const stale = { secret: keys.secret, ticket: new Uint8Array(randomBytes(16)) };
    expect(await tryResume(w, sessionPath, stale)).toMatch(/^ZKS_ERR_RESUME_REFUSED: .*no such session here/);
    // The right keys under another session's name: that object keeps nothing.
    expect(await tryResume(w, `/session/${encodeBase64Url(randomBytes(16))}`, keys)).toMatch(/no such session here/);
    expect(await echoThrough(stream, 1 * MB, () => {})).toBe(true);
    expect(conn.closed).toBe(false);
    expect(conn.resumes).toBe(0);
  });

  it('past the Worker\'s grace period the target connection is closed, and the late resume is refused: the stream ends with why', async () => {
    const w = await worker(300);
    const line = gate();
    const { pool, conn, w: log } = await directPool(w, { openTcp: line.openTcp });
    // The echo server's side of the stream's target connection: it ends when the Worker gives the session up.
    const targetClosed = new Promise<void>((resolve) => echo.once('connection', (s: Socket) => s.once('close', () => resolve())));
    const stream = await openEcho(pool);
    await echoOpen(stream, 64 * 1024); // the stream works and stays open
    const ended = new Promise<string>((resolve) => (stream.onClose = (err) => resolve(err?.message ?? 'clean end')));
    line.close();
    conn.terminate();
    await targetClosed;
    line.open();
    const why = await ended;
    expect(why).toMatch(/could not be resumed: .*no such session here/);
    expect(log.lines.some((l) => /could not resume the session: the relay refused/.test(l))).toBe(true);
  });

  it('a Worker that keeps no sessions: nothing is kept, the stream resets with the reason, and a resume is refused at once', async () => {
    const w = await worker(0);
    const { pool, conn, w: log } = await directPool(w);
    expect(conn.sessionKept).toBe(false);
    const stream = await openEcho(pool);
    const ended = new Promise<string>((resolve) => (stream.onClose = (err) => resolve(err?.message ?? 'clean end')));
    conn.terminate();
    expect(await ended).not.toBe('clean end');
    await log.until(() => log.lines.some((l) => /keeps no direct-mode sessions \(ZKS_DIRECT_RESUME\)/.test(l)));
    const keys = { secret: new Uint8Array(32), ticket: new Uint8Array(16) };
    expect(await tryResume(w, `/session/${encodeBase64Url(randomBytes(16))}`, keys)).toMatch(/keeps no direct-mode sessions \(ZKS_DIRECT_RESUME is off\)/);
  });
});

describe('the /session/ route', () => {
  const offer = async (psk = key) => (await createClientHello(nodeCrypto, psk, { capabilities: true, sequencedRecords: true })).hello;
  const protocolsOf = (hello: Uint8Array) => ['zks1', `zks1.${encodeBase64Url(hello)}`];
  const nameOf = async (hello: Uint8Array) => encodeBase64Url(await sessionName(nodeCrypto, key, hello));
  /** How an upgrade ends: its HTTP status when refused, else the close code and reason after the REPLY. */
  const outcome = (url: string, protocols: string[]) => new Promise<string>((resolve) => {
    const ws = new WebSocket(url, protocols);
    ws.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
    ws.on('close', (code, reason) => resolve(`close ${code} ${reason.toString()}`));
    ws.on('error', () => {});
  });

  it('answers nothing without the key, to a malformed name, or to a name not bound to its HELLO; a replayed HELLO finds its name taken', async () => {
    const w = await worker();
    const hello = await offer();
    const name = await nameOf(hello);
    expect(await outcome(`${w.url}/session/${name}`, protocolsOf(await offer(new Uint8Array(randomBytes(32)))))).toBe('HTTP 401');
    expect(await outcome(`${w.url}/session/${name}`, ['zks1'])).toBe('HTTP 401');
    for (const bad of ['short', `${name}x`, `${name.slice(0, 21)}B`, `${name.slice(0, 21)}%2F`]) {
      expect(await outcome(`${w.url}/session/${bad}`, protocolsOf(hello)), bad).toBe('HTTP 401');
    }
    // A HELLO opens an object only under its own name: replayed to other names it opens none.
    for (let i = 0; i < 5; i++) expect(await outcome(`${w.url}/session/${encodeBase64Url(randomBytes(16))}`, protocolsOf(hello))).toBe('HTTP 401');
    // Under its own name it gets the REPLY (and, sealing nothing, the first-record deadline)...
    const first = new WebSocket(`${w.url}/session/${name}`, protocolsOf(hello));
    first.on('error', () => {});
    await new Promise((r) => first.once('message', r));
    // ...and a replay of it there finds the name taken.
    expect(await outcome(`${w.url}/session/${name}`, protocolsOf(hello))).toBe(`close ${CloseCode.HANDSHAKE_FAILED} ZKS_ERR_HANDSHAKE: this session name is taken`);
    first.terminate();
  });

  it('a real client\'s session is untouched by a replay of another HELLO or a resume to its name without the secret', async () => {
    const w = await worker();
    const { pool, conn } = await directPool(w);
    const stream = await openEcho(pool);
    const { sessionPath } = resumeState(conn);
    expect(await outcome(`${w.url}${sessionPath}`, protocolsOf(await offer()))).toBe('HTTP 401');
    expect(await tryResume(w, sessionPath, { secret: new Uint8Array(32), ticket: new Uint8Array(16) })).toMatch(/no such session here/);
    expect(await echoThrough(stream, 256 * 1024, () => {})).toBe(true);
    expect(conn.closed).toBe(false);
  });
});

describe("kept sessions and the Worker's limits", () => {
  it('detached sessions hold no share of the isolate send budget: a new client downloads at full speed beside five of them', async () => {
    // A grace period well past the failure deadline below: a client starved by the detached sessions fails, it is
    // not rescued by their end.
    const w = await worker(120_000);
    // An endless download source: whatever is read, more follows.
    const chunk = Buffer.alloc(256 * 1024, 7);
    const sockets = new Set<Socket>();
    const source = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      const pump = () => { while (!s.destroyed && s.write(chunk)); };
      s.on('drain', pump);
      pump();
    });
    await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
    // The detached sessions keep their target connections for the grace period: closed here, not waited for.
    cleanups.push(() => new Promise<void>((r) => (source.close(() => r()), sockets.forEach((s) => s.destroy()))));
    const port = (source.address() as { port: number }).port;
    const download = async (pool: TunnelPool, streams: number) => {
      let n = 0;
      for (let i = 0; i < streams; i++) {
        const o = await pool.open({ host: '127.0.0.1', port });
        if (!o.ok) throw new Error(o.message);
        o.stream.onData = (c) => { n += c.length; o.stream.consume(c.length); };
        o.stream.onClose = () => {};
      }
      return () => n;
    };
    const until = (cond: () => boolean, what: string) => new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 30_000; // a failure deadline only
      const t = setInterval(() => {
        if (cond()) return clearInterval(t), resolve();
        if (Date.now() > deadline) clearInterval(t), reject(new Error(`timed out waiting for ${what}`));
      }, 20);
    });
    // Five clients, six downloads each, lose their WebSockets and cannot come back: their sessions wait, detached.
    for (let i = 0; i < 5; i++) {
      const line = gate();
      const { pool, conn } = await directPool(w, { openTcp: line.openTcp });
      const got = await download(pool, 6);
      await until(() => got() > 1_000_000, `client ${i} downloading`);
      line.close();
      conn.terminate();
    }
    const { pool: fresh } = await directPool(w);
    const got = await download(fresh, 1);
    await until(() => got() > 32 * MB, 'the new client to download 32 MB');
  });

  it('a WebSocket gone silent (no close reached the Worker) is kept past the idle timeout, for the grace period', async () => {
    const w = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true, resumeGraceMs: 30_000, bindings: { ZKS_IDLE_TIMEOUT_MS: '1000' } });
    cleanups.push(() => w.dispose());
    // The client's TCP connections go through a relay of ours that never passes the client's close on: when the
    // client drops its WebSocket, the Worker's side stays open and silent, as when a network dies.
    let reachable = true;
    const workerSides: Socket[] = [];
    const openTcp = async (host: string, port: number): Promise<Socket> => {
      if (!reachable) throw new ZksError('ZKS_ERR_RELAY_UNREACHABLE', 'the network is down (test)');
      const { connect } = await import('node:net');
      const up = connect({ host, port });
      up.on('error', () => {});
      await new Promise<void>((resolve, reject) => up.once('connect', resolve).once('error', reject));
      workerSides.push(up);
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const accepted = new Promise<Socket>((r) => server.once('connection', r));
      const local = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
      const mine = await accepted;
      server.close();
      mine.on('error', () => {});
      mine.on('data', (d) => up.write(d));
      up.on('data', (d) => void (mine.destroyed || mine.write(d)));
      await new Promise<void>((r) => (local.connecting ? local.once('connect', () => r()) : r()));
      cleanups.push(async () => void (up.destroy(), mine.destroy(), local.destroy()));
      return local;
    };
    const { pool, conn } = await directPool(w, { openTcp });
    expect(conn.sessionKept).toBe(true);
    const stream = await openEcho(pool);
    await echoOpen(stream, 1024);
    const silenced = workerSides[0]!;
    // The Worker's close frame (opcode 8) on the silent connection: its idle watch gave that WebSocket up.
    const workerGaveUp = new Promise<void>((r) => silenced.on('data', (d: Buffer) => d[0] === 0x88 && r()));
    reachable = false;
    conn.terminate(); // the client notices; the Worker hears nothing
    await workerGaveUp; // its idle timeout (1 s) closed that WebSocket: now the session is kept, detached
    reachable = true;
    await echoOpen(stream, 4096); // resumed: the same stream carries on
    expect(conn.resumes).toBe(1);
  });
});
