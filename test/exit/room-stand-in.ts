// Test scaffolding for the exit peer: a stand-in for the relay room (the Durable Object's room→exit side of
// src/protocol/room-wire.ts) on 127.0.0.1:0, where the test plays the clients with the real client crypto
// (createClientHello / finishClientHandshake / createChannel) and a real client Mux through SecureLink.
// It checks the exit's access token with verifyRoomToken and refuses anything else with 401, like the room,
// then challenges the exit and checks its proof of the room secret with verifyExitProof before it is the exit.
// Also: a TCP echo target that hashes what it receives, a fixed-map resolver, and stream helpers.

import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { createClientHello, decodeBase64Url, encodeBase64Url, equalBytes, finishClientHandshake } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { createChannel } from '../../src/crypto/record';
import { RoomRole, verifyExitProof, verifyRoomToken } from '../../src/crypto/room';
import { ZksError } from '../../src/errors/zks-error';
import type { ConnectResultCode } from '../../src/protocol/constants';
import type { MuxStream } from '../../src/protocol/stream';
import type { Mux } from '../../src/protocol/mux';
import {
  decodeSidMessage,
  encodeRoomControl,
  encodeSidMessage,
  KEEPALIVE_PING,
  KEEPALIVE_PONG,
  parseRoomControl,
  ROOM_PATH_PREFIX,
  ROOM_SUBPROTOCOL,
  ROOM_TOKEN_PREFIX,
} from '../../src/protocol/room-wire';
import { SecureLink } from '../../src/link/secure-link';
import type { LookupFn } from '../../src/exit/connect';

/** Resolves `predicate` by polling (bounded): for states the code under test reaches asynchronously. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One client session as the room sees it: payloads to the exit, payloads and a `close` from it. */
export class RoomSession {
  private queue: Uint8Array[] = [];
  private handler: ((p: Uint8Array) => void) | null = null;
  closedReason: string | null = null;
  onClosed: ((reason: string) => void) | null = null;
  readonly closed: Promise<string>;
  private resolveClosed!: (reason: string) => void;

  constructor(
    readonly sid: number,
    private readonly room: StandInRoom,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  /** Client → exit: the room prefixes the sid. */
  send(payload: Uint8Array): void {
    this.room.exit?.send(encodeSidMessage(this.sid, payload));
  }

  /** The client left: the room tells the exit. */
  close(reason = 'client left'): void {
    if (this.closedReason !== null) return;
    this.room.exit?.send(encodeRoomControl({ t: 'close', sid: this.sid, reason }));
    this.ended(reason);
  }

  /** Payloads from the exit, queued until a handler is attached. */
  set onPayload(handler: (p: Uint8Array) => void) {
    this.handler = handler;
    const q = this.queue;
    this.queue = [];
    for (const p of q) handler(p);
  }

  nextPayload(timeoutMs = 5000): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no payload for sid ${this.sid}`)), timeoutMs);
      void this.closed.then((reason) => {
        clearTimeout(timer);
        reject(new Error(`sid ${this.sid} closed: ${reason}`));
      });
      this.onPayload = (p) => {
        clearTimeout(timer);
        this.handler = null;
        resolve(p);
      };
    });
  }

  deliver(payload: Uint8Array): void {
    if (this.closedReason !== null) return;
    if (this.handler) this.handler(payload);
    else this.queue.push(payload);
  }

  ended(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.resolveClosed(reason);
    this.onClosed?.(reason);
  }
}

export interface StandInOptions {
  workerKey: Uint8Array;
  roomId: Uint8Array;
}

export class StandInRoom {
  exit: WebSocket | null = null;
  exitConnections = 0;
  refusedUpgrades = 0;
  /** Exit WebSockets accepted (proven or not), and how many of them are still open. */
  upgrades = 0;
  openSockets = 0;
  pings = 0;
  answerPings = true;
  /** False: behave like a Worker from before exit proofs (no challenge; the exit waits for one). */
  challenges = true;
  /** Text messages from the exit other than pings (close controls), in order. */
  readonly controls: Array<{ sid: number; reason: string }> = [];
  /** Anything the exit sent that breaks the room wire format (tests assert this stays empty). */
  readonly violations: string[] = [];
  readonly sessions = new Map<number, RoomSession>();
  private nextSid = 1;
  private workerKey: Uint8Array;

  private constructor(
    private readonly wss: WebSocketServer,
    readonly url: string,
    private readonly opts: StandInOptions,
  ) {
    this.workerKey = opts.workerKey;
  }

  static async start(opts: StandInOptions): Promise<StandInRoom> {
    let room!: StandInRoom;
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(ROOM_SUBPROTOCOL) ? ROOM_SUBPROTOCOL : false),
      verifyClient: (info: { req: IncomingMessage }, cb: (ok: boolean, code?: number) => void) => {
        void room.admit(info.req).then((ok) => {
          if (!ok) room.refusedUpgrades++;
          cb(ok, ok ? undefined : 401);
        });
      },
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const port = (wss.address() as AddressInfo).port;
    room = new StandInRoom(wss, `ws://127.0.0.1:${port}`, opts);
    wss.on('connection', (ws) => room.onExit(ws));
    return room;
  }

  /** From now on only tokens MAC'd with `key` are admitted (a rotated Worker key). */
  setWorkerKey(key: Uint8Array): void {
    this.workerKey = key;
  }

  private async admit(req: IncomingMessage): Promise<boolean> {
    const path = req.url ?? '';
    if (!path.startsWith(ROOM_PATH_PREFIX)) return false;
    const roomId = decodeBase64Url(path.slice(ROOM_PATH_PREFIX.length));
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!roomId || !protocols.includes(ROOM_SUBPROTOCOL)) return false;
    const tokenText = protocols.find((p) => p.startsWith(ROOM_TOKEN_PREFIX));
    const token = tokenText ? decodeBase64Url(tokenText.slice(ROOM_TOKEN_PREFIX.length)) : null;
    if (!token) return false;
    const v = await verifyRoomToken(nodeCrypto, this.workerKey, token);
    return !(v instanceof ZksError) && v.role === RoomRole.EXIT && equalBytes(v.roomId, roomId) && equalBytes(roomId, this.opts.roomId);
  }

  /** Like the room: a challenge first; the exit is attached (replacing any earlier one) once its proof checks. */
  private onExit(ws: WebSocket): void {
    let proven = false;
    this.upgrades++;
    this.openSockets++;
    ws.on('close', () => this.openSockets--);
    const challenge = nodeCrypto.x25519Keypair();
    if (this.challenges) void challenge.then((c) => ws.send(encodeRoomControl({ t: 'challenge', key: encodeBase64Url(c.publicKey) })));
    const attach = async (text: string) => {
      const c = parseRoomControl(text);
      if (c instanceof ZksError || c.t !== 'prove') return void this.violations.push(`expected prove from exit: ${text}`);
      const ok = await verifyExitProof(nodeCrypto, this.opts.roomId, await challenge, {
        exitPublic: decodeBase64Url(c.key)!, instance: decodeBase64Url(c.instance)!, mac: decodeBase64Url(c.mac)!,
      });
      if (ok !== true) return void this.violations.push(`exit proof refused: ${ok.message}`);
      proven = true;
      this.exit?.terminate();
      this.exit = ws;
      this.exitConnections++;
      ws.send(encodeRoomControl({ t: 'attached' }));
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!proven) return void attach(data.toString('utf8'));
      if (isBinary) {
        const m = decodeSidMessage(data);
        if (m instanceof ZksError) return void this.violations.push(m.message);
        this.sessions.get(m.sid)?.deliver(new Uint8Array(m.payload));
        return;
      }
      const text = data.toString('utf8');
      if (text === KEEPALIVE_PING) {
        this.pings++;
        if (this.answerPings) ws.send(KEEPALIVE_PONG);
        return;
      }
      const c = parseRoomControl(text);
      if (c instanceof ZksError || c.t !== 'close') return void this.violations.push(`unexpected text from exit: ${text}`);
      this.controls.push({ sid: c.sid, reason: c.reason });
      this.sessions.get(c.sid)?.ended(`exit closed: ${c.reason}`);
    });
    ws.on('close', () => {
      if (this.exit !== ws) return;
      this.exit = null;
      for (const s of this.sessions.values()) s.ended('EXIT_GONE');
    });
  }

  waitForExit(count = 1): Promise<void> {
    return waitFor(() => this.exitConnections >= count && this.exit?.readyState === WebSocket.OPEN, `exit connection #${count}`);
  }

  /** A client joins: the room picks a sid and sends the exit `open` with fresh entropy. */
  openSession(entropy: string = encodeBase64Url(nodeCrypto.randomBytes(32))): RoomSession {
    const sid = this.nextSid++;
    const s = new RoomSession(sid, this);
    this.sessions.set(sid, s);
    this.exit?.send(encodeRoomControl({ t: 'open', sid, entropy }));
    return s;
  }

  /** The room closes the exit's WebSocket with `code` (e.g. EXIT_REPLACED: another exit took over). */
  closeExit(code: number, reason = ''): void {
    this.exit?.close(code, reason);
  }

  /** The exit's WebSocket dies without a close handshake (network loss, DO eviction). */
  dropExit(): void {
    this.exit?.terminate();
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}

// ---- the test as client ----

export interface TestClient {
  session: RoomSession;
  link: SecureLink;
  mux: Mux;
}

/** Handshake with the exit through the room, then a client Mux over SecureLink (as src/client does). */
export async function connectClient(room: StandInRoom, psk: Uint8Array): Promise<TestClient> {
  const session = room.openSession();
  const { hello, state } = await createClientHello(nodeCrypto, psk);
  session.send(hello);
  const reply = await session.nextPayload();
  const keys = await finishClientHandshake(nodeCrypto, state, reply);
  if (keys instanceof ZksError) throw keys;
  const { sealer, opener } = await createChannel(nodeCrypto, keys);
  const link = new SecureLink(
    { send: (d) => session.send(d), close: (_code, reason) => session.close(reason) },
    sealer,
    opener,
    { role: 'client', scheduleFlush: (fn) => void setImmediate(fn) },
  );
  session.onPayload = (p) => link.receive(p);
  session.onClosed = (reason) => link.socketClosed(reason);
  return { session, link, mux: link.mux };
}

export interface StreamOutcome {
  code: ConnectResultCode;
  message: string;
  stream: MuxStream;
}

export function openStream(mux: Mux, host: string, port: number, timeoutMs = 5000): Promise<StreamOutcome> {
  const stream = mux.openStream({ host, port });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no CONNECT_RESULT for ${host}:${port}`)), timeoutMs);
    stream.onResult = (code, message) => {
      clearTimeout(timer);
      resolve({ code, message, stream });
    };
    stream.onClose = (err) => {
      clearTimeout(timer);
      if (stream.state !== 'open') reject(err ?? new Error('stream closed before its result'));
    };
  });
}

export const sha256 = (b: Uint8Array | Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Sends `data` on an open stream (honouring credit), half-closes, and collects everything that comes back
 * until the peer's FIN; resolves with the sha256 and length of what was received.
 */
export function roundTrip(stream: MuxStream, data: Uint8Array, chunk = 64 * 1024): Promise<{ sha: string; length: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    stream.onData = (c) => {
      hash.update(c);
      length += c.length;
      stream.consume(c.length);
    };
    stream.onEnd = () => resolve({ sha: hash.digest('hex'), length });
    stream.onClose = (err) => {
      if (err) reject(err);
    };
    let off = 0;
    const pump = () => {
      while (off < data.length) {
        const part = data.subarray(off, Math.min(off + chunk, data.length));
        off += part.length;
        if (!stream.write(part)) return; // resumed by onDrain
      }
      stream.end();
    };
    stream.onDrain = pump;
    pump();
  });
}

// ---- targets ----

export interface EchoServer {
  server: Server;
  port: number;
  /** sha256 of everything each finished connection received, in order of completion. */
  received: string[];
  connections: number;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** TCP echo on `host`:0 that hashes what it receives; half-close aware (echo FIN after the client's FIN). */
export async function startEcho(host = '127.0.0.1'): Promise<EchoServer> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const echo: EchoServer = {
    server: createServer({ allowHalfOpen: true }, (s) => {
      echo.connections++;
      sockets.add(s);
      const h = createHash('sha256');
      s.on('data', (d) => h.update(d));
      s.on('end', () => received.push(h.digest('hex')));
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
      s.pipe(s);
    }),
    port: 0,
    received,
    connections: 0,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => echo.server.close(() => r()));
    },
  };
  await new Promise<void>((r) => echo.server.listen(0, host, r));
  echo.port = (echo.server.address() as AddressInfo).port;
  return echo;
}

export { freePort } from '../net-helpers';

/** A resolver that answers from `table` and fails like getaddrinfo (ENOTFOUND) otherwise: no DNS query leaves. */
export function fixedLookup(table: Record<string, string[]>): LookupFn & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (hostname: string) => {
    calls.push(hostname);
    const addrs = table[hostname];
    if (!addrs) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}
