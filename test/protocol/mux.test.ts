// Mux + MuxStream, smoltcp style: two real Mux instances back to back (Pair) or one Mux with the test as its
// peer (RawPeer). No timers: the test runs every flush (pump/takeSent) and owns the clock (`now`).
// Every Pair test ends by checking that no sender ever put more DATA on the wire than the credit it had seen.
import { afterEach, describe, expect, it } from 'vitest';
import {
  SignalKind, ConnectResult, DEFAULT_STREAM_WINDOW, FrameType, MAX_STREAM_WINDOW, MIN_STREAM_WINDOW, Mux, ResetCode, ZksError,
  encodeFrames, type ConnectResultCode,
} from '../../src/protocol/index';
import {
  CONNECT, DATA, FIN, GOAWAY, PING, RawPeer, RESULT_OK, RST, TARGET, WINDOW_UPDATE, Pair,
  concat, expectSameBytes, expectZksError, framesOf, h, observe, pattern, type StreamLog,
} from './helpers';

const W = MIN_STREAM_WINDOW * 4; // 64 KiB: small enough that transfers take several credit rounds

let pairs: Pair[] = [];
function pair(opts: ConstructorParameters<typeof Pair>[0] = {}): Pair {
  const p = new Pair({ clientWindow: W, serverWindow: W, ...opts });
  pairs.push(p);
  return p;
}
afterEach(() => {
  for (const p of pairs) expect(p.creditViolations).toEqual([]);
  pairs = [];
});

/** The receiving side delivers everything it holds: consume() every byte received so far. */
function consumeAll(log: StreamLog, already: { n: number }): void {
  const total = log.received.reduce((n, c) => n + c.length, 0);
  if (total > already.n) log.stream.consume(total - already.n);
  already.n = total;
}

describe('open, accept, data both ways', () => {
  it('CONNECT → CONNECT_RESULT OK → DATA each way', () => {
    const p = pair();
    const { c, s } = p.open({ host: 'example.com', port: 8443 });
    expect(s.stream.target).toEqual({ host: 'example.com', port: 8443 });
    expect(c.results).toEqual([{ code: ConnectResult.OK, message: '' }]);
    expect(c.stream.state).toBe('open');
    expect(s.stream.state).toBe('open');
    expect(p.client.sent[0]).toMatchObject({ type: FrameType.CONNECT, stream: 1, window: W, target: { host: 'example.com', port: 8443 } });
    expect(p.server.sent[0]).toMatchObject({ type: FrameType.CONNECT_RESULT, stream: 1, code: 0, window: W });

    expect(c.stream.write(pattern(1000, 1))).toBe(true);
    expect(s.stream.write(pattern(2000, 2))).toBe(true);
    p.pump();
    expectSameBytes(s.bytes(), pattern(1000, 1));
    expectSameBytes(c.bytes(), pattern(2000, 2));
    expect(c.stream.bytesSent).toBe(1000);
    expect(c.stream.bytesReceived).toBe(2000);
  });

  it('small writes to one stream within a turn reach the peer as one DATA frame (one socket write there)', () => {
    const p = pair({ clientWindow: DEFAULT_STREAM_WINDOW, serverWindow: DEFAULT_STREAM_WINDOW });
    const { c, s } = p.open();
    const reads = Array.from({ length: 16 }, (_, i) => pattern(4096, i)); // the Worker's 4 KiB socket reads
    for (const r of reads) expect(s.stream.write(r)).toBe(true);
    p.pump();
    expect(p.sentOf('server', FrameType.DATA, 1).map((f) => f.data.length)).toEqual([16 * 4096]);
    expect(c.received).toHaveLength(1);
    expectSameBytes(c.bytes(), concat(reads));
  });

  it('writes before CONNECT_RESULT wait and leave once the stream is accepted', () => {
    const p = pair({ onServerStream: () => {} });
    const c = observe(p.client.mux.openStream(TARGET));
    expect(c.stream.write(pattern(100))).toBe(false); // not open yet: queued
    p.pump();
    expect(p.dataBytes('client', 1)).toBe(0);
    const s = p.server.incoming[0];
    s.stream.accept();
    p.pump();
    expectSameBytes(s.bytes(), pattern(100));
  });

  it('stream ids: the client opens odd ids, the server even ids, both increasing', () => {
    const p = pair();
    const ids = [p.client.mux.openStream(TARGET).id, p.client.mux.openStream(TARGET).id];
    const sid = [p.server.mux.openStream(TARGET).id, p.server.mux.openStream(TARGET).id];
    p.pump();
    expect(ids).toEqual([1, 3]);
    expect(sid).toEqual([2, 4]);
    expect(p.client.incoming.map((l) => l.stream.id)).toEqual([2, 4]);
    expect(p.server.incoming.map((l) => l.stream.id)).toEqual([1, 3]);
  });

  it('openStream on a closed session throws ZKS_ERR_CONNECTION_LOST', () => {
    const p = pair();
    p.client.mux.close();
    expect(() => p.client.mux.openStream(TARGET)).toThrow(expect.objectContaining({ code: 'ZKS_ERR_CONNECTION_LOST' }));
  });
});

describe('reject', () => {
  const codes = Object.entries(ConnectResult).filter(([, v]) => v !== ConnectResult.OK) as Array<[string, ConnectResultCode]>;
  it.each(codes)('%s reaches the opener as onResult(code, message), then onClose(err)', (_name, code) => {
    const p = pair({ onServerStream: (s) => s.reject(code, `no: ${code}`) });
    const { c, s } = p.open();
    expect(c.results).toEqual([{ code, message: `no: ${code}` }]);
    expect(c.stream.state).toBe('closed');
    expectZksError(c.closed?.err, 'ZKS_ERR_STREAM_RESET', new RegExp(`no: ${code}`));
    expectZksError(s.closed?.err, 'ZKS_ERR_STREAM_RESET');
    expect(p.server.sent).toEqual([{ type: FrameType.CONNECT_RESULT, stream: 1, code, window: 0, message: `no: ${code}` }]);
    expect(p.client.mux.streams.size).toBe(0);
    expect(p.server.mux.streams.size).toBe(0);
    expect(p.client.mux.isClosed).toBe(false);
  });

  it('a side without onStream refuses every CONNECT with GENERAL_FAILURE', () => {
    const records: Uint8Array[] = [];
    const mux = new Mux({ role: 'client', transport: { sendRecord: (r) => void records.push(r), close: () => {} }, scheduleFlush: (fn) => fn() });
    mux.receiveRecord(encodeFrames([{ ...CONNECT, stream: 2 }]));
    expect(records.flatMap(framesOf)).toMatchObject([{ type: FrameType.CONNECT_RESULT, stream: 2, code: ConnectResult.GENERAL_FAILURE, message: 'this side accepts no streams' }]);
    expect(mux.streams.size).toBe(0);
  });

  it('a CONNECT with a bad host is answered HOST_UNREACHABLE on that stream only', () => {
    const peer = new RawPeer('server');
    peer.sendRaw(h('01 00000001 0000000c 00100000 0050 03 04 612e2e62')); // "a..b"
    peer.expectSent([{ type: FrameType.CONNECT_RESULT, stream: 1, code: ConnectResult.HOST_UNREACHABLE, window: 0 }]);
    peer.send({ ...CONNECT, stream: 3 });
    peer.expectSent([{ type: FrameType.CONNECT_RESULT, stream: 3, code: 0 }]);
    expect(peer.mux.isClosed).toBe(false);
  });

  it.each([MIN_STREAM_WINDOW - 1, MAX_STREAM_WINDOW + 1])('a CONNECT announcing window %i is refused with GENERAL_FAILURE', (window) => {
    const peer = new RawPeer('server');
    peer.send({ ...CONNECT, window });
    peer.expectSent([{ type: FrameType.CONNECT_RESULT, stream: 1, code: ConnectResult.GENERAL_FAILURE, message: expect.stringMatching(/outside/) }]);
    expect(peer.incoming).toHaveLength(0);
  });
});

describe('flow control', () => {
  it('the sender never exceeds the window: exactly W bytes leave, then write() returns false', () => {
    const p = pair();
    const { c, s } = p.open();
    expect(c.stream.write(pattern(3 * W))).toBe(false);
    p.pump();
    expect(p.dataBytes('client', 1)).toBe(W);
    expect(s.bytes().length).toBe(W);
    expect(c.stream.writable).toBe(false);
    expect(c.stream.write(pattern(10))).toBe(false); // still blocked behind the queue
  });

  it('credit comes back only after consume(), in quarter-window batches; then onDrain', () => {
    const p = pair();
    const { c, s } = p.open();
    const data = pattern(3 * W, 5);
    expect(c.stream.write(data)).toBe(false);
    p.pump();
    s.stream.consume(W / 4 - 1);
    p.pump();
    expect(p.sentOf('server', FrameType.WINDOW_UPDATE)).toHaveLength(0); // below a quarter window: held back
    s.stream.consume(1);
    p.pump();
    expect(p.sentOf('server', FrameType.WINDOW_UPDATE)).toEqual([{ type: FrameType.WINDOW_UPDATE, stream: 1, increment: W / 4 }]);
    expect(p.dataBytes('client', 1)).toBe(W + W / 4);

    const done = { n: W / 4 };
    for (let round = 0; round < 100 && c.drains === 0; round++) {
      consumeAll(s, done);
      p.pump();
    }
    expect(c.drains).toBe(1);
    expect(c.stream.writable).toBe(true);
    expectSameBytes(s.bytes(), data);
  });

  // Regression "stall when a writer spends credit exactly" (fixed in 206b037): write() returned true having spent
  // the last byte of credit, so no data was pending; the WINDOW_UPDATE then found nothing "blocked" and never
  // called onDrain, while the writer waited on `writable` forever.
  it('regression: a writer that spent the credit exactly still gets onDrain', () => {
    const p = pair();
    const { c, s } = p.open();
    expect(c.stream.write(pattern(W))).toBe(true); // fits exactly
    expect(c.stream.writable).toBe(false);
    p.pump();
    expect(c.drains).toBe(0);
    s.stream.consume(W);
    p.pump();
    expect(c.drains).toBe(1);
    expect(c.stream.writable).toBe(true);
    expect(c.stream.write(pattern(10))).toBe(true);
  });

  it('regression: a write made before CONNECT_RESULT that returned false gets onDrain once the stream opens', () => {
    const p = pair();
    const c = observe(p.client.mux.openStream(TARGET));
    expect(c.stream.write(pattern(100))).toBe(false); // still connecting: queued
    p.pump();
    expect(c.drains).toBe(1);
    expect(c.stream.writable).toBe(true);
  });

  it('regression: bytes and FIN that arrive before a consumer attaches are held and delivered in order', () => {
    // Found by the benchmark: server-speaks-first protocols (SSH banners) lost their greeting under load.
    const p = pair();
    const stream = p.client.mux.openStream(TARGET);
    p.pump();
    const s = p.server.incoming.find((l) => l.stream.id === stream.id)!;
    s.stream.write(pattern(1000, 3));
    s.stream.end();
    p.pump();
    const got: Uint8Array[] = [];
    let ended = false;
    stream.onData = (c) => {
      expect(ended).toBe(false);
      got.push(c.slice());
    };
    stream.onEnd = () => (ended = true);
    expectSameBytes(concat(got), pattern(1000, 3));
    expect(ended).toBe(true);
  });

  it('no onDrain while credit never ran out', () => {
    const p = pair();
    const { c, s } = p.open();
    c.stream.write(pattern(W / 2));
    p.pump();
    s.stream.consume(W / 2);
    p.pump();
    expect(p.sentOf('server', FrameType.WINDOW_UPDATE)).toHaveLength(1);
    expect(c.drains).toBe(0);
  });

  it('a 1 MiB transfer each way with 64 KiB windows arrives intact', () => {
    const p = pair();
    const { c, s } = p.open();
    const up = pattern(1 << 20, 1);
    const down = pattern(1 << 20, 2);
    c.stream.write(up);
    s.stream.write(down);
    const cd = { n: 0 };
    const sd = { n: 0 };
    for (let round = 0; round < 1000 && (s.bytes().length < up.length || c.bytes().length < down.length); round++) {
      consumeAll(s, sd);
      consumeAll(c, cd);
      p.pump();
    }
    expectSameBytes(s.bytes(), up);
    expectSameBytes(c.bytes(), down);
  });

  it('the caller may reuse its buffer after write(), also for the part that waits for credit', () => {
    const p = pair();
    const { c, s } = p.open();
    const buf = pattern(W + 100, 9);
    const want = buf.slice();
    c.stream.write(buf);
    buf.fill(0);
    const done = { n: 0 };
    for (let round = 0; round < 10; round++) {
      consumeAll(s, done);
      p.pump();
    }
    expectSameBytes(s.bytes(), want);
  });

  it('a peer that exceeds the window gets RST FLOW_CONTROL on that stream only; other streams go on', () => {
    const peer = new RawPeer('server', { window: MIN_STREAM_WINDOW });
    peer.send({ ...CONNECT, stream: 1 }, { ...CONNECT, stream: 3 });
    peer.takeSent(); // two CONNECT_RESULT OK
    const [one, three] = peer.incoming;
    peer.send({ ...DATA, stream: 1, data: new Uint8Array(MIN_STREAM_WINDOW) }); // exactly the window: fine
    peer.send({ ...DATA, stream: 1, data: new Uint8Array(1) }); // one byte over
    peer.expectSent([{ type: FrameType.RST, stream: 1, code: ResetCode.FLOW_CONTROL, message: expect.stringMatching(/1 bytes with only 0 credit/) }]);
    expectZksError(one.closed?.err, 'ZKS_ERR_STREAM_RESET');
    expect(one.bytes().length).toBe(MIN_STREAM_WINDOW);

    peer.send({ ...DATA, stream: 3, data: h('6869') });
    expect(three.bytes()).toEqual(h('6869'));
    expect(three.closed).toBeNull();
    expect(peer.mux.isClosed).toBe(false);
    peer.send({ ...DATA, stream: 1, data: h('00') }); // late frames for the reset stream are ignored
    peer.expectNothing();
  });

  it('a WINDOW_UPDATE that would push credit past MAX_STREAM_WINDOW resets the stream', () => {
    const peer = new RawPeer('client');
    const c = observe(peer.mux.openStream(TARGET));
    peer.send({ ...RESULT_OK, window: MAX_STREAM_WINDOW });
    peer.takeSent();
    peer.send({ ...WINDOW_UPDATE, increment: 1 });
    peer.expectSent([{ type: FrameType.RST, stream: 1, code: ResetCode.FLOW_CONTROL, message: expect.stringMatching(/overflows the maximum window/) }]);
    expectZksError(c.closed?.err, 'ZKS_ERR_STREAM_RESET');
  });

  it('one slow consumer (never calls consume) does not block another stream on the same mux', () => {
    const p = pair();
    const slow = p.open();
    const fast = p.open();
    slow.c.stream.write(pattern(4 * W, 1));
    const data = pattern(8 * W, 2);
    fast.c.stream.write(data);
    fast.c.stream.end();
    const done = { n: 0 };
    for (let round = 0; round < 200 && !fast.s.ended; round++) {
      consumeAll(fast.s, done); // only the fast stream's consumer delivers
      p.pump();
    }
    expectSameBytes(fast.s.bytes(), data);
    expect(fast.s.ended).toBe(true);
    expect(p.dataBytes('client', slow.c.stream.id)).toBe(W);
    expect(slow.c.stream.writable).toBe(false);
  });
});

describe('half-close and reset', () => {
  it('FIN one way, data keeps flowing the other way, clean close after both FINs', () => {
    const p = pair();
    const { c, s } = p.open();
    c.stream.write(utf8Of('request'));
    c.stream.end();
    p.pump();
    expect(s.ended).toBe(true);
    expect(c.closed).toBeNull();
    expect(c.stream.write(utf8Of('more'))).toBe(false); // our direction is closed
    s.stream.write(pattern(5000));
    p.pump();
    expectSameBytes(c.bytes(), pattern(5000));
    expect(c.closed).toBeNull();
    s.stream.end();
    p.pump();
    expect(c.ended).toBe(true);
    expect(c.closed).toEqual({ err: null });
    expect(s.closed).toEqual({ err: null });
    expect(p.client.mux.streams.size).toBe(0);
    expect(p.server.mux.streams.size).toBe(0);
    expect(p.sentOf('client', FrameType.FIN)).toHaveLength(1);
    expect(p.sentOf('server', FrameType.FIN)).toHaveLength(1);
    expect(p.sentOf('client', FrameType.RST)).toHaveLength(0);
  });

  it('FIN waits behind data that is still waiting for credit', () => {
    const p = pair();
    const { c, s } = p.open();
    c.stream.write(pattern(2 * W));
    c.stream.end();
    p.pump();
    expect(s.ended).toBe(false);
    const done = { n: 0 };
    for (let round = 0; round < 20 && !s.ended; round++) {
      consumeAll(s, done);
      p.pump();
    }
    expect(s.ended).toBe(true);
    expect(s.bytes().length).toBe(2 * W);
  });

  it('end() before CONNECT_RESULT sends FIN only after the stream is accepted', () => {
    const p = pair({ onServerStream: () => {} });
    const c = observe(p.client.mux.openStream(TARGET));
    c.stream.end();
    p.pump();
    expect(p.sentOf('client', FrameType.FIN)).toHaveLength(0);
    p.server.incoming[0].stream.accept();
    p.pump();
    expect(p.sentOf('client', FrameType.FIN)).toHaveLength(1);
    expect(p.server.incoming[0].ended).toBe(true);
  });

  it('RST → onClose(err) on the other side; both sides release the stream', () => {
    const p = pair();
    const { c, s } = p.open();
    c.stream.write(pattern(10));
    c.stream.reset(ResetCode.CANCEL, 'user pressed ^C');
    expectZksError(c.closed?.err, 'ZKS_ERR_STREAM_RESET', /user pressed \^C/);
    p.pump();
    expect(p.sentOf('client', FrameType.RST)).toEqual([{ type: FrameType.RST, stream: 1, code: ResetCode.CANCEL, message: 'user pressed ^C' }]);
    expectZksError(s.closed?.err, 'ZKS_ERR_STREAM_RESET', /stream reset by peer: user pressed \^C/);
    expect(p.client.mux.streams.size).toBe(0);
    expect(p.server.mux.streams.size).toBe(0);
    s.stream.write(pattern(10)); // writes after close go nowhere
    p.pump();
    expect(p.dataBytes('server', 1)).toBe(0);
  });

  it('DATA after FIN is a protocol error for that stream: RST PROTOCOL', () => {
    const peer = new RawPeer('server');
    peer.send(CONNECT);
    peer.takeSent();
    peer.send(FIN, DATA);
    peer.expectSent([{ type: FrameType.RST, stream: 1, code: ResetCode.PROTOCOL }]);
    expect(peer.mux.isClosed).toBe(false);
  });

  it('DATA before CONNECT_RESULT is a protocol error for that stream', () => {
    const peer = new RawPeer('client');
    const c = observe(peer.mux.openStream(TARGET));
    peer.takeSent();
    peer.send(DATA);
    peer.expectSent([{ type: FrameType.RST, stream: 1, code: ResetCode.PROTOCOL, message: expect.stringMatching(/before CONNECT_RESULT/) }]);
    expectZksError(c.closed?.err, 'ZKS_ERR_STREAM_RESET');
  });

  it('frames for unknown streams are ignored', () => {
    const peer = new RawPeer('server');
    peer.send({ ...DATA, stream: 99 }, { ...WINDOW_UPDATE, stream: 99 }, { ...FIN, stream: 99 }, { ...RST, stream: 99 }, { ...RESULT_OK, stream: 98 }, { ...WINDOW_UPDATE, stream: 0 });
    peer.expectNothing();
    expect(peer.mux.isClosed).toBe(false);
  });
});

describe('session: stream id rules, GOAWAY, malformed records', () => {
  it.each([
    ['an even id from the client', [{ ...CONNECT, stream: 2 }]],
    ['a reused id', [CONNECT, CONNECT]],
    ['a lower id than the last one', [{ ...CONNECT, stream: 5 }, { ...CONNECT, stream: 3 }]],
  ])('%s → GOAWAY PROTOCOL and the session closes', (_name, connects) => {
    const peer = new RawPeer('server');
    for (const f of connects) peer.send(f);
    const sent = peer.takeSent();
    expect(sent.at(-1)).toMatchObject({ type: FrameType.GOAWAY, stream: 0, code: ResetCode.PROTOCOL, message: expect.stringMatching(/reuses or misnumbers stream/) });
    expect(peer.mux.isClosed).toBe(true);
    expectZksError(peer.sessionClose?.err, 'ZKS_ERR_BAD_STREAM');
    expect(peer.transportClose).toEqual({ code: 4001, reason: 'ZKS_ERR_BAD_STREAM' });
    for (const l of peer.incoming) expectZksError(l.closed?.err, 'ZKS_ERR_BAD_STREAM');
  });

  it('the client refuses an odd id from the server the same way', () => {
    const peer = new RawPeer('client');
    peer.send({ ...CONNECT, stream: 1 });
    expect(peer.takeSent()).toMatchObject([{ type: FrameType.GOAWAY, code: ResetCode.PROTOCOL }]);
    expect(peer.mux.isClosed).toBe(true);
  });

  it('a malformed record → GOAWAY to the peer, every stream on both sides gets onClose(err)', () => {
    const p = pair();
    const a = p.open();
    const b = p.open();
    a.c.stream.write(pattern(100));
    p.inject('server', h('0d 00000001 00000000'));
    p.pump();
    expect(p.sentOf('server', FrameType.GOAWAY)).toEqual([{ type: FrameType.GOAWAY, stream: 0, code: ResetCode.PROTOCOL, message: 'frame type 0xd is unknown' }]);
    expect(p.server.mux.isClosed).toBe(true);
    expect(p.client.mux.isClosed).toBe(true);
    for (const l of [a.s, b.s]) expectZksError(l.closed?.err, 'ZKS_ERR_UNKNOWN_FRAME');
    for (const l of [a.c, b.c]) expectZksError(l.closed?.err, 'ZKS_ERR_CONNECTION_LOST', /peer closed the session: frame type 0xd is unknown/);
    expectZksError(p.server.sessionClose?.err, 'ZKS_ERR_UNKNOWN_FRAME');
    expectZksError(p.client.sessionClose?.err, 'ZKS_ERR_CONNECTION_LOST');
    expect(p.server.transportClose).toEqual({ code: 4001, reason: 'ZKS_ERR_UNKNOWN_FRAME' });
    expect(p.client.transportClose).toEqual({ code: 1000, reason: 'goaway' });
  });

  it.each([
    ['reserved REVERSE_OPEN', '11 00000002 00000000', 'ZKS_ERR_UNSUPPORTED_FRAME'],
    ['SIGNAL to a side without a direct path', '0c 00000000 00000002 04 78', 'ZKS_ERR_UNSUPPORTED_FRAME'],
    ['oversized frame', '03 00000001 00040001', 'ZKS_ERR_FRAME_TOO_LARGE'],
    ['truncated header', '03 0000', 'ZKS_ERR_MALFORMED_FRAME'],
  ])('%s ends the session with GOAWAY PROTOCOL', (_name, bytes, code) => {
    const peer = new RawPeer('server');
    peer.sendRaw(h(bytes));
    peer.expectSent([{ type: FrameType.GOAWAY, code: ResetCode.PROTOCOL }]);
    expectZksError(peer.sessionClose?.err, code as never);
  });

  it('SIGNAL frames reach onSignal in order, and sendSignal sends them', () => {
    const got: Array<[number, string]> = [];
    const peer = new RawPeer('server', { onSignal: (kind, text) => void got.push([kind, text]) });
    peer.send({ type: FrameType.SIGNAL, stream: 0, kind: SignalKind.OFFER, text: 'v=0' }, { type: FrameType.SIGNAL, stream: 0, kind: SignalKind.CANDIDATE, text: '0\ncandidate:x' });
    expect(got).toEqual([[SignalKind.OFFER, 'v=0'], [SignalKind.CANDIDATE, '0\ncandidate:x']]);
    peer.mux.sendSignal(SignalKind.ANSWER, 'v=0 answer');
    peer.expectSent([{ type: FrameType.SIGNAL, stream: 0, kind: SignalKind.ANSWER, text: 'v=0 answer' }]);
    expect(peer.mux.isClosed).toBe(false);
  });

  it('holdSending: writers resume only once every reason let go', () => {
    const p = pair();
    const { c } = p.open();
    p.client.mux.holdSending(true, 1);
    p.client.mux.holdSending(true, 2);
    expect(c.stream.writable).toBe(false);
    p.client.mux.holdSending(false, 1);
    expect(c.stream.writable).toBe(false);
    p.client.mux.holdSending(false, 2);
    expect(c.stream.writable).toBe(true);
  });

  it('frames before the malformed one in the same record still take effect', () => {
    const peer = new RawPeer('server');
    peer.sendRaw(concat([h('01 00000001 00000013 00010000 0050 03 0b 6578616d706c652e636f6d'), h('13 00000000 00000000')]));
    expect(peer.incoming).toHaveLength(1);
    peer.expectSent([{ type: FrameType.CONNECT_RESULT, stream: 1 }, { type: FrameType.GOAWAY }]);
    expectZksError(peer.incoming[0].closed?.err, 'ZKS_ERR_UNSUPPORTED_FRAME');
  });

  it('close() sends GOAWAY SHUTDOWN; the peer ends cleanly (onClose(null)) and its streams get CONNECTION_LOST', () => {
    const p = pair();
    const { c, s } = p.open();
    p.server.mux.close();
    p.pump();
    expect(p.sentOf('server', FrameType.GOAWAY)).toEqual([{ ...GOAWAY }]);
    expect(p.client.sessionClose).toEqual({ err: null });
    expect(p.server.sessionClose).toEqual({ err: null });
    expect(p.server.transportClose).toEqual({ code: 1000, reason: 'shutdown' });
    expectZksError(c.closed?.err, 'ZKS_ERR_CONNECTION_LOST');
    expectZksError(s.closed?.err, 'ZKS_ERR_CONNECTION_LOST');
  });

  it('GOAWAY with another code reaches onClose as ZKS_ERR_CONNECTION_LOST', () => {
    const peer = new RawPeer('client');
    peer.send({ ...GOAWAY, code: ResetCode.INTERNAL, message: 'relay restarting' });
    expectZksError(peer.sessionClose?.err, 'ZKS_ERR_CONNECTION_LOST', /relay restarting/);
    expect(peer.transportClose).toEqual({ code: 1000, reason: 'goaway' });
    peer.send(PING); // ignored once closed
    peer.expectNothing();
  });

  it('transportClosed → every stream aborted with that error, no GOAWAY (nothing can be sent)', () => {
    const p = pair();
    const a = p.open();
    const b = p.open();
    const err = new ZksError('ZKS_ERR_CONNECTION_LOST', 'relay closed the WebSocket (1006)');
    p.client.mux.transportClosed(err);
    expect(a.c.closed).toEqual({ err });
    expect(b.c.closed).toEqual({ err });
    expect(p.client.sessionClose).toEqual({ err });
    expect(p.client.transportClose).toBeNull();
    a.c.stream.write(pattern(10));
    p.pump();
    expect(p.sentOf('client', FrameType.GOAWAY)).toHaveLength(0);
    expect(p.dataBytes('client', a.c.stream.id)).toBe(0);
  });
});

describe('PING / PONG', () => {
  it('PING is answered with PONG carrying the same 8 bytes', () => {
    const peer = new RawPeer('server');
    peer.send(PING);
    peer.expectSent([{ type: FrameType.PONG, stream: 0, opaque: PING.opaque }]);
  });

  it('ping() measures the round trip with the injected clock', () => {
    const p = pair();
    expect(p.client.mux.rttMs).toBe(-1);
    p.now = 5_000;
    p.client.mux.ping();
    p.client.mux.ping(); // one outstanding PING at a time
    expect(p.sentOf('client', FrameType.PING)).toHaveLength(1); // ping() flushes at once
    p.now = 5_042;
    p.pump();
    expect(p.sentOf('server', FrameType.PONG)).toHaveLength(1);
    expect(p.client.mux.rttMs).toBe(42);
    expect(p.client.mux.lastReceiveAt).toBe(5_042);
    p.client.mux.ping();
    p.now = 5_050;
    p.pump();
    expect(p.client.mux.rttMs).toBe(8);
  });

  it('regression: a PING flood was answered with one PONG per PING; now one PONG per record, echoing the newest', () => {
    const peer = new RawPeer('server');
    const pings = Array.from({ length: 5000 }, (_, i) => ({ ...PING, opaque: new Uint8Array(8).fill(i % 251) }));
    peer.send(...pings);
    peer.send(...pings.slice(0, 7), { ...PING, opaque: h('0102030405060708') });
    peer.expectSent([{ type: FrameType.PONG, stream: 0, opaque: h('0102030405060708') }]);
    peer.send(PING); // the next record gets its own answer
    peer.expectSent([{ type: FrameType.PONG, stream: 0, opaque: PING.opaque }]);
  });

  it('a PONG waiting among DATA is updated in place; other frames keep their order', () => {
    const peer = new RawPeer('server');
    peer.send({ type: FrameType.CONNECT, stream: 1, window: 65536, target: TARGET });
    peer.takeSent();
    const s = peer.incoming[0].stream;
    s.write(new Uint8Array([1, 2, 3]));
    peer.send(PING);
    s.write(new Uint8Array([4]));
    peer.send({ ...PING, opaque: h('ffffffffffffffff') });
    peer.expectSent([
      { type: FrameType.DATA, stream: 1, data: new Uint8Array([1, 2, 3]) },
      { type: FrameType.PONG, stream: 0, opaque: h('ffffffffffffffff') },
      { type: FrameType.DATA, stream: 1, data: new Uint8Array([4]) },
    ]);
  });

  it('an unsolicited PONG changes nothing', () => {
    const peer = new RawPeer('client');
    peer.send({ ...PING, type: FrameType.PONG });
    expect(peer.mux.rttMs).toBe(-1);
    peer.expectNothing();
  });
});

describe('windows', () => {
  it('a Mux clamps its window into MIN..MAX_STREAM_WINDOW', () => {
    const small = new RawPeer('client', { window: 1 });
    small.mux.openStream(TARGET);
    expect(small.takeSent()).toMatchObject([{ type: FrameType.CONNECT, window: MIN_STREAM_WINDOW }]);
    const big = new RawPeer('client', { window: 1 << 30 });
    big.mux.openStream(TARGET);
    expect(big.takeSent()).toMatchObject([{ type: FrameType.CONNECT, window: MAX_STREAM_WINDOW }]);
    const dflt = new RawPeer('client');
    dflt.mux.openStream(TARGET);
    expect(dflt.takeSent()).toMatchObject([{ type: FrameType.CONNECT, window: DEFAULT_STREAM_WINDOW }]);
  });

  it('the acceptor sends no more than the window announced in CONNECT', () => {
    const peer = new RawPeer('server');
    peer.send({ ...CONNECT, window: MIN_STREAM_WINDOW });
    peer.takeSent();
    peer.incoming[0].stream.write(pattern(MIN_STREAM_WINDOW + 1000));
    const sent = peer.takeSent();
    expect(sent.reduce((n, f) => n + (f.type === FrameType.DATA ? f.data.length : 0), 0)).toBe(MIN_STREAM_WINDOW);
    peer.send({ ...WINDOW_UPDATE, increment: 600 });
    expect(peer.takeSent()).toMatchObject([{ type: FrameType.DATA, data: expect.objectContaining({ length: 600 }) }]);
  });
});

function utf8Of(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
