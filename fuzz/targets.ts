// What `npm run fuzz` drives (issue 13): every parser that reads bytes from a peer or a user, fed random input and
// mutations of valid input (bit flips, overwritten bytes, cuts, splices). Each target's check throws on a finding:
// an exception escaping the parser, or an answer that breaks the parser's contract (decode → encode → decode must
// agree, a bad handshake must be a ZksError value, a forged record must never open). fast-check drives them
// (fuzz/run.ts for the long runs, test/fuzz/targets.test.ts for a short run in `npm test`).

import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { nodeCrypto } from '../src/crypto/node';
import { createChannel } from '../src/crypto/record';
import { createClientHello, finishClientHandshake, respondToHello, verifyClientHello } from '../src/crypto/handshake';
import { ZksError } from '../src/errors/zks-error';
import { decodeRecord, encodeFrames, INVALID_FRAME, ProtocolError, type Frame } from '../src/protocol/index';
import { decodeSidMessage, parseRoomControl } from '../src/protocol/room-wire';
import { decodeResumeMessage, encodeResumeMessage, ResumeKind } from '../src/protocol/resume-wire';
import { Socks5Parser } from '../src/socks/socks5-parser';
import { HttpConnectParser } from '../src/socks/http-connect-parser';
import { parseUdpDatagram } from '../src/socks/udp-header';
import { parseRequest } from '../src/control/protocol';
import { readStatus } from '../src/control/status';
import { MessageReader } from '../src/direct/tcp-framing';
import { parseTcpAnswer } from '../src/direct/tcp-hello';
import { WsMessageReader } from '../src/protocol/tunnel-ws';
import { checkRequestHead, checkResponseHead, encodeClaim, encodeHead, HeadReader, parseClaim } from '../src/protocol/tunnel-http';
import { Interface } from '../src/netstack/iface';
import { APP4, APP6, DST4, DST6, SYN_SEG, ipPacket, tcpPacket } from '../test/netstack/iface/helpers';
import { TcpFlags } from '../src/netstack/wire/index';

export interface FuzzTarget {
  name: string;
  /** What one case is, for the report. */
  what: string;
  property(): fc.IProperty<[Uint8Array]> | fc.IAsyncProperty<[Uint8Array]>;
}

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const utf8 = new TextEncoder();

/** Valid inputs mutated: bytes overwritten or bit-flipped, a cut, a splice of two seeds. */
export function mutated(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean());
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: 8 }), fc.option(fc.nat()), fc.option(fc.tuple(fc.constantFrom(...seeds), fc.nat())))
    .map(([seed, edits, cut, splice]) => {
      let b = seed.slice();
      if (b.length) for (const [i, v, flip] of edits) b[i % b.length] = flip ? b[i % b.length]! ^ (1 << (v & 7)) : v;
      if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
      if (splice !== null) b = Uint8Array.from([...b, ...splice[0].subarray(splice[1] % (splice[0].length + 1))]);
      return b;
    });
}

/** Random bytes, seeds, and mutated seeds. */
function input(seeds: readonly Uint8Array[], maxLength = 300): fc.Arbitrary<Uint8Array> {
  return fc.oneof({ arbitrary: fc.uint8Array({ maxLength }), weight: 2 }, { arbitrary: mutated(seeds), weight: 5 }, { arbitrary: fc.constantFrom(...seeds), weight: 1 });
}

const frameVectors = JSON.parse(readFileSync(new URL('../test/vectors/frames.json', import.meta.url), 'utf8')) as { valid: Array<{ hex: string }>; invalid: Array<{ hex: string }> };
const FRAME_SEEDS = [...frameVectors.valid, ...frameVectors.invalid].map((v) => hex(v.hex));

function notProtocolError(e: unknown): boolean {
  return !(e instanceof ProtocolError);
}

const frames: FuzzTarget = {
  name: 'frames',
  what: 'one record plaintext into decodeRecord; what decodes must encode and decode the same again',
  property: () => fc.property(input(FRAME_SEEDS, 600), (bytes) => {
    const r = decodeRecord(bytes);
    if (!r.ok && notProtocolError(r.error)) throw new Error(`decodeRecord failed with ${String(r.error)}`);
    if (!r.ok) return;
    const good = r.frames.filter((f) => f.type !== INVALID_FRAME) as Frame[];
    for (const f of r.frames) if (f.type === INVALID_FRAME && notProtocolError(f.error)) throw new Error('an invalid frame without a ProtocolError');
    if (good.length === 0) return;
    const again = decodeRecord(encodeFrames(good));
    if (!again.ok || again.frames.length !== good.length) throw new Error('decoded frames did not survive encode → decode');
  }),
};

const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const SID = new Uint8Array(32).fill(3);
const SEALED = await (await createChannel(nodeCrypto, { suite: 'aes-256-gcm', sendKey: K1, recvKey: K2, sessionId: SID })).sealer.seal(hex(frameVectors.valid[0]!.hex));

const recordOpen: FuzzTarget = {
  name: 'record-open',
  what: 'one record into a fresh opener (AES-256-GCM): only the untouched sealed record opens',
  property: () => fc.asyncProperty(input([SEALED], 200), async (bytes) => {
    const ch = await createChannel(nodeCrypto, { suite: 'aes-256-gcm', sendKey: K2, recvKey: K1, sessionId: SID });
    const opened = await ch.opener.open(bytes.slice()).then((p) => p, (e: unknown) => e);
    const original = Buffer.from(bytes).equals(Buffer.from(SEALED));
    if (opened instanceof Uint8Array) {
      if (!original) throw new Error('a record that is not the sealed one opened');
    } else if (!(opened instanceof ZksError)) throw new Error(`open failed with ${String(opened)}`);
    else if (original) throw new Error('the sealed record did not open');
  }),
};

const PSK = new Uint8Array(32).fill(7);
const HELLO = (await createClientHello(nodeCrypto, PSK, { capabilities: true, sequencedRecords: true })).hello;

const handshakeHello: FuzzTarget = {
  name: 'handshake-hello',
  what: 'a HELLO (mutated or random) into verifyClientHello: a ZksError value unless it is the genuine one',
  property: () => fc.asyncProperty(fc.oneof(input([HELLO], 120), fc.uint8Array({ minLength: 91, maxLength: 91 })), async (bytes) => {
    const v = await verifyClientHello(nodeCrypto, PSK, bytes).catch((e: unknown) => e);
    if (v instanceof ZksError) return;
    if (v instanceof Error || v === null || typeof v !== 'object') throw new Error(`verifyClientHello threw ${String(v)}`);
    if (!Buffer.from(bytes).equals(Buffer.from(HELLO))) throw new Error('a HELLO that is not the genuine one verified');
  }),
};

// One genuine exchange with fixed keys, nonce and time: every case rebuilds the same client state cheaply (no key
// generation) and so can be answered by the same REPLY, or a mutation of it.
const CLIENT_EPHEMERAL = await nodeCrypto.x25519Keypair();
const CLIENT_NONCE = new Uint8Array(16).fill(5);
const clientHello = (nowMs: number) => createClientHello(nodeCrypto, PSK, { ephemeral: CLIENT_EPHEMERAL, clientNonce: CLIENT_NONCE, nowMs });
const HELLO_AT = Date.now();
const REPLY = await (async () => {
  const verified = await verifyClientHello(nodeCrypto, PSK, (await clientHello(HELLO_AT)).hello, { nowMs: HELLO_AT });
  if (verified instanceof ZksError) throw verified;
  return (await respondToHello(nodeCrypto, PSK, verified, { relayEntropy: new Uint8Array(32).fill(6) })).reply;
})();

const handshakeReply: FuzzTarget = {
  name: 'handshake-reply',
  what: 'a REPLY (mutated or random) into finishClientHandshake: a ZksError value unless it is the genuine one',
  property: () => fc.asyncProperty(fc.oneof(input([REPLY], 130), fc.uint8Array({ minLength: 98, maxLength: 98 })), async (bytes) => {
    const { state } = await clientHello(HELLO_AT);
    const keys = await finishClientHandshake(nodeCrypto, state, bytes).catch((e: unknown) => e);
    if (keys instanceof ZksError) return;
    if (keys instanceof Error || keys === null || typeof keys !== 'object') throw new Error(`finishClientHandshake threw ${String(keys)}`);
    if (!Buffer.from(bytes).equals(Buffer.from(REPLY))) throw new Error('a REPLY that is not the genuine one was accepted');
  }),
};

const ROOM_SEEDS = [Uint8Array.of(0, 0, 0, 1, 9, 9), utf8.encode('{"type":"attached","sid":1}'), utf8.encode('{"type":"closed","sid":2,"code":1,"reason":"x"}')];

const roomWire: FuzzTarget = {
  name: 'room-wire',
  what: 'a room message: as binary into decodeSidMessage, as text into parseRoomControl',
  property: () => fc.property(input(ROOM_SEEDS, 200), (bytes) => {
    const m = decodeSidMessage(bytes);
    if (m instanceof Error && notProtocolError(m)) throw m;
    const c = parseRoomControl(Buffer.from(bytes).toString('utf8'));
    if (c instanceof Error && notProtocolError(c)) throw c;
  }),
};

const SOCKS_SEEDS = [
  Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80),
  Uint8Array.of(5, 1, 2, 1, 1, 0x75, 1, 0x70, 5, 1, 0, 3, 11, ...utf8.encode('example.com'), 1, 187),
  Uint8Array.of(5, 1, 0, 5, 3, 0, 4, ...new Uint8Array(15), 1, 0, 53),
];

/** Feeds `bytes` in pieces (a cut per byte of `cuts`) and drains every event; a thrown error is a finding. */
function feedAll(bytes: Uint8Array, feed: (chunk: Uint8Array) => { type: string }, next: () => { type: string }): void {
  const step = 1 + (bytes[0] ?? 0) % 7;
  for (let off = 0; off < bytes.length; off += step) {
    let e = feed(bytes.subarray(off, off + step));
    for (let i = 0; i < 16 && e.type !== 'need-more' && e.type !== 'error' && e.type !== 'done'; i++) e = next();
    if (e.type === 'error' || e.type === 'done') return;
  }
}

const socks5: FuzzTarget = {
  name: 'socks5',
  what: 'a client byte stream in pieces into Socks5Parser (with and without required auth)',
  property: () => fc.property(input(SOCKS_SEEDS, 300), (bytes) => {
    for (const authRequired of [false, true]) {
      const p = new Socks5Parser({ authRequired });
      feedAll(bytes, (c) => p.feed(c), () => p.next());
    }
    parseUdpDatagram(bytes);
  }),
};

const HTTP_SEEDS = [
  utf8.encode('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'),
  utf8.encode('CONNECT [2001:db8::1]:22 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\nSSH-2.0'),
];

const httpConnect: FuzzTarget = {
  name: 'http-connect',
  what: 'a client byte stream in pieces into HttpConnectParser',
  property: () => fc.property(input(HTTP_SEEDS, 400), (bytes) => {
    const p = new HttpConnectParser();
    const step = 1 + (bytes[0] ?? 0) % 11;
    for (let off = 0; off < bytes.length; off += step) {
      const e = p.feed(bytes.subarray(off, off + step));
      if (e.type !== 'need-more') return;
    }
  }),
};

const PACKET_SEEDS = [
  tcpPacket(SYN_SEG), tcpPacket({ flags: TcpFlags.ACK, ack: 7, payload: utf8.encode('data') }), tcpPacket(SYN_SEG, APP6, DST6),
  ipPacket(APP4, DST4, 17, Uint8Array.of(0, 53, 0, 53, 0, 8, 0, 0)), ipPacket(APP6, DST6, 58, Uint8Array.of(128, 0, 0, 0, 0, 0, 0, 0)),
];

const netstack: FuzzTarget = {
  name: 'netstack',
  what: 'one IP packet into a netstack Interface (every SYN accepted), then a poll',
  property: () => fc.property(input(PACKET_SEEDS, 120), (packet) => {
    const iface = new Interface({ isn: () => 1, onConnect: (f) => f.socket.accept(0) });
    iface.receive(packet, 0);
    iface.poll(0, () => undefined);
  }),
};

const CONTROL_SEEDS = ['{"v":1,"id":1,"cmd":"status"}', '{"v":1,"id":"a","cmd":"flows","args":{"closed":true}}', '{"v":1,"id":2,"cmd":"route","args":{"add":"10.0.0.0/8"}}'].map((s) => utf8.encode(s));

const control: FuzzTarget = {
  name: 'control',
  what: 'a control-socket line into parseRequest; any JSON it holds into readStatus',
  property: () => fc.property(input(CONTROL_SEEDS, 200), (bytes) => {
    const line = Buffer.from(bytes).toString('utf8');
    const r = parseRequest(line);
    if ('error' in r && !(r.error instanceof ZksError)) throw new Error('parseRequest returned a non-ZksError');
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return;
    }
    readStatus(json);
  }),
};

const TCP_PATH_SEEDS = [Uint8Array.of(0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1), Uint8Array.of(0, 0, 0, 24, ...new Uint8Array(24)), utf8.encode('000102030405060708090a0b0c0d0e0f\n192.0.2.7 40001')];

const tcpPath: FuzzTarget = {
  name: 'tcp-path',
  what: 'a direct TCP path byte stream in pieces into its MessageReader; the same bytes as a TCP_ANSWER text',
  property: () => fc.property(input(TCP_PATH_SEEDS, 300), (bytes) => {
    const reader = new MessageReader();
    const step = 1 + (bytes[0] ?? 0) % 13;
    for (let off = 0; off < bytes.length; off += step) if (reader.push(bytes.slice(off, off + step), () => undefined)) break;
    const a = parseTcpAnswer(Buffer.from(bytes).toString('utf8'));
    if (typeof a !== 'string' && a.candidates.length === 0) throw new Error('an answer without addresses parsed');
  }),
};

const TUNNEL_SEEDS = [
  encodeHead({ method: 'POST', target: '/a?b=1', headers: [['host', 'x'], ['content-length', '3']] }),
  encodeHead({ status: 206, statusText: 'Partial Content', headers: [['content-range', 'bytes 0-1/9']] }),
  utf8.encode(encodeClaim({ verifier: new Uint8Array(32), access: 'public', maxConcurrent: 1, ratePerSecond: 1, maxBodyBytes: null, keepPrefix: false })),
];

const tunnelHttp: FuzzTarget = {
  name: 'tunnel-http',
  what: 'HTTP tunnel heads in pieces (request and response readers; a head read must encode again), WebSocket messages in pieces, the bytes as a TUNNEL_CLAIM',
  property: () => fc.property(input(TUNNEL_SEEDS, 400), (bytes) => {
    const step = 1 + (bytes[0] ?? 0) % 17;
    for (const check of [checkRequestHead, checkResponseHead] as const) {
      const reader = new HeadReader<ReturnType<typeof check>>(check);
      for (let off = 0; off < bytes.length; off += step) {
        const got = reader.push(bytes.slice(off, off + step));
        if (got === null) continue;
        if (!(got instanceof ProtocolError)) encodeHead(got.head as Parameters<typeof encodeHead>[0]); // must not throw
        break;
      }
    }
    const messages = new WsMessageReader();
    for (let off = 0; off < bytes.length; off += step) if (messages.push(bytes.slice(off, off + step)) instanceof ProtocolError) break;
    const claim = parseClaim(Buffer.from(bytes).toString('utf8'));
    if (!(claim instanceof ProtocolError)) parseClaim(encodeClaim(claim));
  }),
};

const RESUME_SEEDS = [
  encodeResumeMessage({ kind: ResumeKind.RESUME, ticket: new Uint8Array(16).fill(1), proof: new Uint8Array(32).fill(2), next: 77 }),
  encodeResumeMessage({ kind: ResumeKind.RESUMED, proof: new Uint8Array(32).fill(3), next: 2 ** 40 }),
  encodeResumeMessage({ kind: ResumeKind.REFUSED, reason: 'no such session' }),
];

const resumeWire: FuzzTarget = {
  name: 'resume-wire',
  what: 'a resume record plaintext (§11.7) into decodeResumeMessage; what decodes must encode back to the same bytes',
  property: () => fc.property(input(RESUME_SEEDS, 120), (bytes) => {
    const m = decodeResumeMessage(bytes);
    if (m instanceof ZksError) {
      if (m.code !== 'ZKS_ERR_HANDSHAKE') throw m;
      return;
    }
    if (!Buffer.from(encodeResumeMessage(m)).equals(Buffer.from(bytes))) throw new Error('a decoded resume message encodes to other bytes');
  }),
};

export const TARGETS: readonly FuzzTarget[] = [frames, recordOpen, handshakeHello, handshakeReply, roomWire, socks5, httpConnect, netstack, control, tcpPath, tunnelHttp, resumeWire];
