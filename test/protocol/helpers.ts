// Shared helpers for the protocol tests: hex, vector frames (JSON) <-> Frame, error asserts, frame templates,
// and two mux harnesses in smoltcp style (no timers, no I/O, the test owns the clock and every flush):
//   Pair    - two real Mux instances back to back over an in-memory FIFO; counts DATA bytes on the wire
//             against the credit each sender had received, so every test also checks flow control.
//   RawPeer - one Mux with the test as its peer: send({...CONNECT, stream: 3}) in, expectSent([...]) out.
import { expect } from 'vitest';
import {
  DEFAULT_STREAM_WINDOW, FrameType, ProtocolError, ZksError,
  decodeRecord, encodeFrames, INVALID_FRAME, Mux,
  type DecodedFrame, type Frame, type MuxOptions, type MuxStream, type SharedSendBudget, type Target, type ZksErrorCode,
} from '../../src/protocol/index';
import { EchoKind, type EchoMessage } from '../../src/protocol/datagram-codec';
import { SignalKind } from '../../src/protocol/signal-codec';

const SIGNAL_NAMES = Object.fromEntries(Object.entries(SignalKind).map(([n, v]) => [v, n])) as Record<number, NonNullable<JsonFrame['kind']>>;

// ---- bytes ----

/** Hex to bytes; whitespace is ignored so vectors can be grouped by field. */
export function h(text: string): Uint8Array {
  const s = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(s)) throw new Error(`not hex: ${text}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}
export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic filler so a transfer's bytes can be checked at the far end. */
export function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Byte equality without vitest's element-by-element diff (slow for megabytes). */
export function expectSameBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.length).toBe(want.length);
  expect(Buffer.compare(got, want), 'bytes differ').toBe(0);
}

// ---- errors ----

export function expectZksError(value: unknown, code: ZksErrorCode, message?: RegExp): void {
  expect(value).toBeInstanceOf(ZksError);
  expect((value as ZksError).code).toBe(code);
  if (message) expect((value as ZksError).message).toMatch(message);
}

/** decodeRecord(bytes) fails with `code`; returns the error for further checks. */
export function expectDecodeError(bytes: Uint8Array, code: ZksErrorCode, message?: RegExp): ProtocolError {
  const r = decodeRecord(bytes);
  expect(r.ok).toBe(false);
  if (r.ok) throw new Error('unreachable');
  expect(r.error).toBeInstanceOf(ProtocolError);
  expectZksError(r.error, code, message);
  expect(r.error.fatal).toBe(true);
  return r.error;
}

// ---- frames as JSON (test/vectors/frames.json) ----

export const FRAME_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(FrameType).map(([name, value]) => [value, name]),
);

export interface JsonFrame {
  type: string;
  stream: number;
  window?: number;
  host?: string;
  port?: number;
  code?: number;
  message?: string;
  data?: string;
  increment?: number;
  opaque?: string;
  caps?: number;
  /** PATH_ACK: the next sequence number expected. */
  next?: number;
  /** SIGNAL: kind (OFFER, ANSWER, CANDIDATE, CLOSE) and text. */
  kind?: 'OFFER' | 'ANSWER' | 'CANDIDATE' | 'CLOSE' | 'TCP_OFFER' | 'TCP_ANSWER' | 'TCP_CLOSE';
  text?: string;
  /** UDP_DATAGRAM with the CLOSE flag: its code (with `message`). */
  closeCode?: number;
  echo?: JsonEcho;
}

/** ICMP_ECHO's message; `data` in hex. */
export interface JsonEcho {
  kind: 'REQUEST' | 'REPLY' | 'FAILED';
  seq: number;
  tcpOnly?: boolean;
  tcpPort?: number;
  timeoutMs?: number;
  host?: string;
  method?: 'icmp' | 'tcp';
  ttl?: number;
  address?: string;
  code?: number;
  message?: string;
  data?: string;
}

function echoFromJson(e: JsonEcho): EchoMessage {
  switch (e.kind) {
    case 'REQUEST': return { kind: EchoKind.REQUEST, seq: e.seq, tcpOnly: e.tcpOnly!, tcpPort: e.tcpPort!, timeoutMs: e.timeoutMs!, host: e.host!, data: h(e.data ?? '') };
    case 'REPLY': return { kind: EchoKind.REPLY, seq: e.seq, method: e.method!, tcpPort: e.tcpPort!, ttl: e.ttl!, address: e.address!, data: h(e.data ?? '') };
    case 'FAILED': return { kind: EchoKind.FAILED, seq: e.seq, code: e.code as never, message: e.message! };
  }
}

function echoToJson(e: EchoMessage): JsonEcho {
  switch (e.kind) {
    case EchoKind.REQUEST: return { kind: 'REQUEST', seq: e.seq, tcpOnly: e.tcpOnly, tcpPort: e.tcpPort, timeoutMs: e.timeoutMs, host: e.host, data: hex(e.data) };
    case EchoKind.REPLY: return { kind: 'REPLY', seq: e.seq, method: e.method, tcpPort: e.tcpPort, ttl: e.ttl, address: e.address, data: hex(e.data) };
    case EchoKind.FAILED: return { kind: 'FAILED', seq: e.seq, code: e.code, message: e.message };
  }
}

export function frameFromJson(j: JsonFrame): Frame {
  const type = FrameType[j.type as keyof typeof FrameType];
  switch (type) {
    case FrameType.CONNECT: return { type, stream: j.stream, window: j.window!, target: { host: j.host!, port: j.port! } };
    case FrameType.CONNECT_RESULT: return { type, stream: j.stream, code: j.code as never, window: j.window!, message: j.message! };
    case FrameType.DATA: return { type, stream: j.stream, data: h(j.data!) };
    case FrameType.WINDOW_UPDATE: return { type, stream: j.stream, increment: j.increment! };
    case FrameType.FIN: return { type, stream: j.stream };
    case FrameType.RST: return { type, stream: j.stream, code: j.code as never, message: j.message! };
    case FrameType.PING: case FrameType.PONG: return { type, stream: 0, opaque: h(j.opaque!) };
    case FrameType.GOAWAY: return { type, stream: 0, code: j.code as never, message: j.message! };
    case FrameType.CAPABILITIES: return { type, stream: 0, caps: j.caps! };
    case FrameType.PATH_ACK: return { type, stream: 0, next: j.next! };
    case FrameType.SIGNAL: return { type, stream: 0, kind: SignalKind[j.kind!], text: j.text! };
    case FrameType.UDP_DATAGRAM:
      if (j.closeCode !== undefined) return { type, stream: j.stream, address: null, data: new Uint8Array(0), close: { code: j.closeCode, message: j.message! } };
      return { type, stream: j.stream, address: j.host ? { host: j.host, port: j.port! } : null, data: h(j.data!) };
    case FrameType.ICMP_ECHO: return { type, stream: j.stream, echo: echoFromJson(j.echo!) };
  }
  throw new Error(`frame type ${j.type} has no JSON form`);
}

export function frameToJson(f: DecodedFrame): JsonFrame {
  if (f.type === INVALID_FRAME) throw new Error(`invalid frame on stream ${f.stream}: ${f.error.message}`);
  const type = FRAME_NAMES[f.type];
  switch (f.type) {
    case FrameType.CONNECT: return { type, stream: f.stream, window: f.window, host: f.target.host, port: f.target.port };
    case FrameType.CONNECT_RESULT: return { type, stream: f.stream, code: f.code, window: f.window, message: f.message };
    case FrameType.DATA: return { type, stream: f.stream, data: hex(f.data) };
    case FrameType.WINDOW_UPDATE: return { type, stream: f.stream, increment: f.increment };
    case FrameType.FIN: return { type, stream: f.stream };
    case FrameType.RST: case FrameType.GOAWAY: return { type, stream: f.stream, code: f.code, message: f.message };
    case FrameType.PING: case FrameType.PONG: return { type, stream: 0, opaque: hex(f.opaque) };
    case FrameType.CAPABILITIES: return { type, stream: 0, caps: f.caps };
    case FrameType.PATH_ACK: return { type, stream: 0, next: f.next };
    case FrameType.SIGNAL: return { type, stream: 0, kind: SIGNAL_NAMES[f.kind], text: f.text };
    case FrameType.UDP_DATAGRAM:
      if (f.close) return { type, stream: f.stream, closeCode: f.close.code, message: f.close.message };
      return f.address ? { type, stream: f.stream, host: f.address.host, port: f.address.port, data: hex(f.data) } : { type, stream: f.stream, data: hex(f.data) };
    case FrameType.ICMP_ECHO: return { type, stream: f.stream, echo: echoToJson(f.echo) };
  }
}

/** Decodes a record that must be valid. */
export function framesOf(record: Uint8Array): DecodedFrame[] {
  const r = decodeRecord(record);
  if (!r.ok) throw r.error;
  return r.frames;
}

// ---- templates: spread and override, e.g. send({...CONNECT, stream: 3}) ----

export type FrameOf<T extends number> = Extract<Frame, { type: T }>;
export const TARGET: Target = { host: 'example.com', port: 443 };
export const CONNECT: FrameOf<typeof FrameType.CONNECT> = { type: FrameType.CONNECT, stream: 1, window: DEFAULT_STREAM_WINDOW, target: TARGET };
export const RESULT_OK: FrameOf<typeof FrameType.CONNECT_RESULT> = { type: FrameType.CONNECT_RESULT, stream: 1, code: 0, window: DEFAULT_STREAM_WINDOW, message: '' };
export const DATA: FrameOf<typeof FrameType.DATA> = { type: FrameType.DATA, stream: 1, data: utf8('hello') };
export const WINDOW_UPDATE: FrameOf<typeof FrameType.WINDOW_UPDATE> = { type: FrameType.WINDOW_UPDATE, stream: 1, increment: 16384 };
export const FIN: FrameOf<typeof FrameType.FIN> = { type: FrameType.FIN, stream: 1 };
export const RST: FrameOf<typeof FrameType.RST> = { type: FrameType.RST, stream: 1, code: 0, message: 'cancelled' };
export const PING: FrameOf<typeof FrameType.PING> = { type: FrameType.PING, stream: 0, opaque: h('0001020304050607') };
export const GOAWAY: FrameOf<typeof FrameType.GOAWAY> = { type: FrameType.GOAWAY, stream: 0, code: 6, message: 'shutdown' };

// ---- stream observer ----

/** Everything a MuxStream reported, in order; `received` holds copies of the DATA bytes. */
export interface StreamLog {
  stream: MuxStream;
  received: Uint8Array[];
  results: Array<{ code: number; message: string }>;
  ended: boolean;
  drains: number;
  closed: { err: ZksError | null } | null;
  /** Bytes received so far (concatenated). */
  bytes(): Uint8Array;
}

export function observe(stream: MuxStream): StreamLog {
  const log: StreamLog = {
    stream,
    received: [],
    results: [],
    ended: false,
    drains: 0,
    closed: null,
    bytes: () => concat(log.received),
  };
  stream.onData = (chunk) => void log.received.push(chunk.slice());
  stream.onResult = (code, message) => void log.results.push({ code, message });
  stream.onEnd = () => void (log.ended = true);
  stream.onDrain = () => void log.drains++;
  stream.onClose = (err) => void (log.closed = { err });
  return log;
}

// ---- Pair: two Mux instances back to back ----

type SideName = 'client' | 'server';

export interface Side {
  name: SideName;
  mux: Mux;
  /** Every frame this side put on the wire, in order. */
  sent: DecodedFrame[];
  /** Streams the peer opened, observed (server side: accepted unless `onStream` says otherwise). */
  incoming: StreamLog[];
  transportClose: { code: number; reason: string } | null;
  sessionClose: { err: ZksError | null } | null;
}

export interface PairOptions {
  clientWindow?: number;
  serverWindow?: number;
  /** Decides what the server does with a new stream; default: accept at once. */
  onServerStream?: (stream: MuxStream, target: Target) => void;
  /** Decides what the client does with a stream the server opens; default: accept at once. */
  onClientStream?: (stream: MuxStream, target: Target) => void;
  /** Extra Mux options per side (capabilities, datagram handlers, a transport backlog). */
  client?: Partial<MuxOptions> & { backlog?: () => number };
  server?: Partial<MuxOptions> & { backlog?: () => number };
}

/**
 * Records travel in one FIFO (each direction stays in order, as on one WebSocket). Nothing moves until pump(),
 * which runs scheduled flushes and delivers records until both sides are quiet.
 */
export class Pair {
  now = 1_000;
  readonly client: Side;
  readonly server: Side;
  /** Flow-control breaches seen on the wire: DATA beyond the credit its sender had been granted. */
  readonly creditViolations: string[] = [];
  private readonly tasks: Array<() => void> = [];
  /** `to` is looked up at delivery: a side may send (CAPABILITIES) while its peer is still being built. */
  private readonly wire: Array<{ to: () => Side; record: Uint8Array }> = [];
  /** Per direction and stream: DATA bytes sent, and credit granted (window announced + increments delivered). */
  private readonly dataSent = new Map<string, number>();
  private readonly credit = new Map<string, number>();

  constructor(opts: PairOptions = {}) {
    this.client = this.makeSide('client', opts.clientWindow, opts.onClientStream, opts.client);
    this.server = this.makeSide('server', opts.serverWindow, opts.onServerStream, opts.server);
  }

  private makeSide(
    name: SideName, window: number | undefined, onStream?: (s: MuxStream, t: Target) => void,
    extra: Partial<MuxOptions> & { backlog?: () => number } = {},
  ): Side {
    const side = { name, sent: [], incoming: [], transportClose: null, sessionClose: null } as unknown as Side;
    const { backlog, ...more } = extra;
    side.mux = new Mux({
      ...more,
      role: name,
      window,
      transport: {
        sendRecord: (record) => this.onRecord(side, record),
        close: (code, reason) => void (side.transportClose = { code, reason }),
        backlog,
      },
      onStream: (stream, target) => {
        side.incoming.push(observe(stream));
        if (onStream) onStream(stream, target);
        else stream.accept();
      },
      onClose: (err) => void (side.sessionClose = { err }),
      scheduleFlush: (fn) => void this.tasks.push(fn),
      now: () => this.now,
    });
    return side;
  }

  peerOf(side: Side): Side {
    return side === this.client ? this.server : this.client;
  }

  private onRecord(from: Side, record: Uint8Array): void {
    const r = decodeRecord(record);
    for (const f of r.frames) {
      from.sent.push(f);
      if (f.type === FrameType.DATA) {
        const key = `${from.name}:${f.stream}`;
        const sent = (this.dataSent.get(key) ?? 0) + f.data.length;
        this.dataSent.set(key, sent);
        const granted = this.credit.get(key) ?? 0;
        if (sent > granted) this.creditViolations.push(`${key} sent ${sent} bytes with ${granted} credit`);
      }
    }
    this.wire.push({ to: () => this.peerOf(from), record });
  }

  /** Bookkeeping at delivery time: credit counts only once the sender could have seen it. */
  private onDeliver(to: Side, record: Uint8Array): void {
    const r = decodeRecord(record);
    for (const f of r.frames) {
      // `to` receives a window/increment: that is credit for `to` to send on this stream.
      const key = `${to.name}:${f.stream}`;
      if (f.type === FrameType.CONNECT || f.type === FrameType.CONNECT_RESULT) this.credit.set(key, f.window);
      if (f.type === FrameType.WINDOW_UPDATE) this.credit.set(key, (this.credit.get(key) ?? 0) + f.increment);
    }
  }

  /** Puts hand-made bytes on the wire towards `to`, as if its peer had sent them. */
  inject(to: SideName, record: Uint8Array): void {
    const side = this[to];
    this.wire.push({ to: () => side, record });
  }

  /** Runs flushes and deliveries until nothing moves. */
  pump(maxSteps = 100_000): void {
    for (let step = 0; step < maxSteps; step++) {
      const task = this.tasks.shift();
      if (task) {
        task();
        continue;
      }
      const next = this.wire.shift();
      if (!next) return;
      const to = next.to();
      this.onDeliver(to, next.record);
      to.mux.receiveRecord(next.record);
    }
    throw new Error('pump did not settle');
  }

  /** DATA payload bytes `from` put on the wire for `stream`. */
  dataBytes(from: SideName, stream: number): number {
    return this.dataSent.get(`${from}:${stream}`) ?? 0;
  }

  /** Frames `from` sent of one type (optionally on one stream). */
  sentOf<T extends number>(from: SideName, type: T, stream?: number): Array<FrameOf<T>> {
    return this[from].sent.filter((f) => f.type === type && (stream === undefined || f.stream === stream)) as never;
  }

  /** Opens a client stream to TARGET, pumps, returns both ends observed. */
  open(target: Target = TARGET): { c: StreamLog; s: StreamLog } {
    const c = observe(this.client.mux.openStream(target));
    this.pump();
    const s = this.server.incoming.find((l) => l.stream.id === c.stream.id);
    if (!s) throw new Error(`server saw no stream ${c.stream.id}`);
    return { c, s };
  }
}

// ---- RawPeer: the test is the peer ----

export class RawPeer {
  now = 1_000;
  readonly mux: Mux;
  readonly incoming: StreamLog[] = [];
  transportClose: { code: number; reason: string } | null = null;
  sessionClose: { err: ZksError | null } | null = null;
  private readonly tasks: Array<() => void> = [];
  private readonly records: Uint8Array[] = [];

  constructor(
    role: 'client' | 'server',
    opts: {
      window?: number; maxSendCredit?: number; maxUnackedBytes?: number; sharedBudget?: SharedSendBudget;
      paceByDelay?: boolean;
      onStream?: (s: MuxStream, t: Target) => void;
      onSignal?: MuxOptions['onSignal'];
    } = {},
  ) {
    this.mux = new Mux({
      role,
      window: opts.window,
      maxSendCredit: opts.maxSendCredit,
      maxUnackedBytes: opts.maxUnackedBytes,
      sharedBudget: opts.sharedBudget,
      paceByDelay: opts.paceByDelay,
      onSignal: opts.onSignal,
      transport: {
        sendRecord: (record) => void this.records.push(record),
        close: (code, reason) => void (this.transportClose = { code, reason }),
      },
      onStream: (stream, target) => {
        this.incoming.push(observe(stream));
        if (opts.onStream) opts.onStream(stream, target);
        else stream.accept();
      },
      onClose: (err) => void (this.sessionClose = { err }),
      scheduleFlush: (fn) => void this.tasks.push(fn),
      now: () => this.now,
    });
  }

  /** Feeds frames to the mux as one record. */
  send(...frames: Frame[]): void {
    this.mux.receiveRecord(encodeFrames(frames));
  }

  sendRaw(record: Uint8Array): void {
    this.mux.receiveRecord(record);
  }

  /** Runs pending flushes and returns (and forgets) every frame the mux sent since the last call. */
  takeSent(): DecodedFrame[] {
    while (this.tasks.length > 0) this.tasks.shift()!();
    const frames = this.records.flatMap((r) => framesOf(r));
    this.records.length = 0;
    return frames;
  }

  expectSent(expected: Array<Partial<Frame> | Record<string, unknown>>): DecodedFrame[] {
    const frames = this.takeSent();
    expect(frames).toHaveLength(expected.length);
    frames.forEach((f, i) => expect(f).toMatchObject(expected[i]));
    return frames;
  }

  expectNothing(): void {
    expect(this.takeSent()).toEqual([]);
  }
}
