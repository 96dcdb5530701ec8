// Raw room peers for the relay tests: `ws` WebSockets from Node acting as exit peer or client, with room tokens
// from createRoomToken, a queue of received messages (binary as Buffer, text as string) and the close event.
// Rooms come from real secrets (newRoomId), so a raw exit can answer the room's challenge with proveExit.
// Every wait is bounded; close() terminates the socket whatever its state.

import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';
import { createRoomToken, deriveRoomKeys, EXIT_INSTANCE_SIZE, proveExit, RoomRole, type RoomKeys, type RoomRoleValue } from '../../src/crypto/room';
import { decodeBase64Url, encodeBase64Url } from '../../src/crypto/bytes';
import { nodeCrypto } from '../../src/crypto/node';
import { encodeRoomControl, ROOM_PATH_PREFIX, ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX } from '../../src/protocol/room-wire';
import { generateKey } from '../../src/cli/args';

export const WAIT_MS = 5_000;

export type Received = Buffer | string;

export class Peer {
  private readonly queue: Received[] = [];
  private waiter: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.queue.push(isBinary ? data : data.toString('utf8'));
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {}); // surfaced through `closed`
  }

  /** The next message, or a rejection after `ms`. */
  async next(ms = WAIT_MS): Promise<Received> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); resolve(); };
      });
      this.waiter = null;
    }
    return this.queue.shift()!;
  }

  async nextText(ms?: number): Promise<string> {
    const m = await this.next(ms);
    if (typeof m !== 'string') throw new Error(`expected text, got ${m.length} binary bytes`);
    return m;
  }

  async nextJson<T = Record<string, unknown>>(ms?: number): Promise<T> {
    return JSON.parse(await this.nextText(ms)) as T;
  }

  async nextBinary(ms?: number): Promise<Buffer> {
    const m = await this.next(ms);
    if (typeof m === 'string') throw new Error(`expected binary, got text ${m.slice(0, 100)}`);
    return m;
  }

  /**
   * True if nothing arrived before the answer to a "ping" sent now. The room handles each WebSocket's messages in
   * order, so whatever it sent this peer before handling the ping comes first: no waiting for a silence.
   */
  async quiet(): Promise<boolean> {
    this.send('ping');
    return (await this.next()) === 'pong';
  }

  /** Waits for the close event (bounded). */
  async closeEvent(ms = WAIT_MS): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms).unref()),
    ]);
  }

  send(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** The keys of every room made by newRoomId, by room id (base64url): what a raw exit needs for its proof. */
const roomKeys = new Map<string, RoomKeys>();

/** A fresh room from a fresh `zks keygen`-style secret; returns its id (its keys stay here for joinExit). */
export async function newRoomId(): Promise<Uint8Array> {
  const keys = await deriveRoomKeys(nodeCrypto, generateKey());
  roomKeys.set(encodeBase64Url(keys.roomId), keys);
  return keys.roomId;
}

export function keysOf(roomId: Uint8Array): RoomKeys {
  const keys = roomKeys.get(encodeBase64Url(roomId));
  if (!keys) throw new Error('not a room made by newRoomId');
  return keys;
}

export const newInstance = (): Uint8Array => new Uint8Array(randomBytes(EXIT_INSTANCE_SIZE));

export function roomUrl(relay: string, roomId: Uint8Array | string): string {
  return `${relay}${ROOM_PATH_PREFIX}${typeof roomId === 'string' ? roomId : encodeBase64Url(roomId)}`;
}

export async function roomProtocols(key: Uint8Array, roomId: Uint8Array, role: RoomRoleValue): Promise<string[]> {
  const token = await createRoomToken(nodeCrypto, key, roomId, role);
  return [ROOM_SUBPROTOCOL, `${ROOM_TOKEN_PREFIX}${encodeBase64Url(token)}`];
}

export type UpgradeResult = { peer: Peer; protocol: string } | { status: number; body: string };

/** Attempts an upgrade; resolves with an open Peer, or the HTTP status and body of a refusal. */
export function upgrade(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { maxPayload: 64 * 1024 * 1024, headers });
    const peer = new Peer(ws);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('upgrade timed out')); }, WAIT_MS);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => { clearTimeout(timer); ws.terminate(); resolve({ status: res.statusCode ?? 0, body }); });
    });
    ws.on('open', () => { clearTimeout(timer); resolve({ peer, protocol: ws.protocol }); });
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

/** Opens a room WebSocket in `role`; throws with the HTTP answer if it is refused. */
export async function join(relay: string, key: Uint8Array, roomId: Uint8Array, role: RoomRoleValue): Promise<Peer> {
  const r = await upgrade(roomUrl(relay, roomId), await roomProtocols(key, roomId, role));
  if ('status' in r) throw new Error(`upgrade refused: ${r.status} ${r.body}`);
  return r.peer;
}

/** The proof a raw exit sends for `challenge` (the text of the room's challenge message). */
export async function proofFor(roomId: Uint8Array, challenge: string, instance: Uint8Array): Promise<string> {
  const { key } = JSON.parse(challenge) as { key: string };
  const keys = keysOf(roomId);
  const mac = await proveExit(nodeCrypto, keys, decodeBase64Url(key)!, instance);
  return encodeRoomControl({ t: 'prove', key: encodeBase64Url(keys.exitKey.publicKey), instance: encodeBase64Url(instance), mac: encodeBase64Url(mac) });
}

/** An exit that holds the room secret: upgrades, answers the challenge, and returns once the room attached it. */
export async function joinExit(relay: string, key: Uint8Array, roomId: Uint8Array, instance = newInstance()): Promise<Peer> {
  const exit = await join(relay, key, roomId, RoomRole.EXIT);
  exit.send(await proofFor(roomId, await exit.nextText(), instance));
  const answer = await exit.nextText();
  if (answer !== '{"t":"attached"}') throw new Error(`exit not attached: ${answer}`);
  return exit;
}

/** An exit with the Worker key and the room id only (no secret): upgrades, and nothing else. */
export const joinExitUnproven = (relay: string, key: Uint8Array, roomId: Uint8Array) => join(relay, key, roomId, RoomRole.EXIT);
export const joinClient = (relay: string, key: Uint8Array, roomId: Uint8Array) => join(relay, key, roomId, RoomRole.CLIENT);
