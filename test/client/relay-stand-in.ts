// Test scaffolding for the client's direct path: a relay stand-in on 127.0.0.1:0 that speaks the real handshake
// (verifyClientHello / respondToHello / createChannel, as the Worker does) and then hands the test the raw TCP
// socket, so it can put several WebSocket messages into one write — the REPLY and whatever follows it back-to-back.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeBase64Url, respondToHello, verifyClientHello } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { createChannel, type RecordOpener, type RecordOptions, type RecordSealer } from '../../src/crypto/record';
import { ZksError } from '../../src/errors/zks-error';
import { decodeRecord, encodeFrames, type DecodedFrame, type Frame } from '../../src/protocol/frames';

export interface RelaySide {
  ws: WebSocket;
  /** The upgraded TCP socket under `ws`, for writes that must arrive as one chunk. */
  raw: Duplex;
  reply: Uint8Array;
  sealer: RecordSealer;
  opener: RecordOpener;
  /** Frames of every record the client sends, opened in order. */
  frames: DecodedFrame[];
  /** Resolves once a received frame satisfies `predicate` (checked against earlier frames too). */
  waitForFrame(predicate: (f: DecodedFrame) => boolean): Promise<DecodedFrame>;
  closed: Promise<number>;
}

/** An unmasked, final binary WebSocket frame (server to client, RFC 6455 §5.2). */
export function wsBinaryFrame(payload: Uint8Array): Buffer {
  const n = payload.length;
  let head: Buffer;
  if (n < 126) head = Buffer.from([0x82, n]);
  else if (n < 0x10000) head = Buffer.from([0x82, 126, n >> 8, n & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = 0x82;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

/** An unmasked close frame with `code` and `reason` (reason ≤ 123 bytes). */
export function wsCloseFrame(code: number, reason: string): Buffer {
  const body = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);
  return Buffer.concat([Buffer.from([0x88, body.length]), body]);
}

export async function sealFrames(side: RelaySide, frames: Frame[]): Promise<Uint8Array> {
  return side.sealer.seal(encodeFrames(frames));
}

export interface RelayStandIn {
  url: string;
  /** Each upgraded connection, in order. */
  next(): Promise<RelaySide>;
  close(): Promise<void>;
}

export async function startRelayStandIn(key: Uint8Array, record?: RecordOptions): Promise<RelayStandIn> {
  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: () => 'zks1' });
  const sides: RelaySide[] = [];
  const waiters: ((s: RelaySide) => void)[] = [];
  http.on('upgrade', (req, socket, head) => {
    void (async () => {
      const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
      const token = offered.find((p) => p.startsWith('zks1.'));
      const hello = token ? decodeBase64Url(token.slice(5)) : null;
      const verified = hello ? await verifyClientHello(nodeCrypto, key, hello) : null;
      if (!verified || verified instanceof ZksError) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
        return;
      }
      const { reply, keys } = await respondToHello(nodeCrypto, key, verified);
      const { sealer, opener } = await createChannel(nodeCrypto, keys, record);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const frames: DecodedFrame[] = [];
        const frameWaiters: { predicate: (f: DecodedFrame) => boolean; resolve: (f: DecodedFrame) => void }[] = [];
        let received = Promise.resolve();
        ws.on('message', (data: Buffer) => {
          const opened = opener.open(new Uint8Array(data));
          opened.catch(() => {});
          received = received.then(() => opened).then((pt) => {
            for (const f of decodeRecord(pt).frames) {
              frames.push(f);
              for (const w of frameWaiters.filter((w) => w.predicate(f))) {
                frameWaiters.splice(frameWaiters.indexOf(w), 1);
                w.resolve(f);
              }
            }
          }, () => {});
        });
        const side: RelaySide = {
          ws,
          raw: socket,
          reply,
          sealer,
          opener,
          frames,
          closed: new Promise((r) => ws.on('close', (code) => r(code))),
          waitForFrame: (predicate) => {
            const seen = frames.find(predicate);
            return seen ? Promise.resolve(seen) : new Promise((resolve) => frameWaiters.push({ predicate, resolve }));
          },
        };
        const w = waiters.shift();
        if (w) w(side);
        else sides.push(side);
      });
    })();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const { port } = http.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    next: () => {
      const s = sides.shift();
      return s ? Promise.resolve(s) : new Promise((r) => waiters.push(r));
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
