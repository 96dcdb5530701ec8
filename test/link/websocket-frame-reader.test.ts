// WsFrameReader: server frames split anywhere come out as the messages that went in, each in a buffer of its own
// (the chunk is overwritten after every push, as the client's reused read buffer is); every way a server can
// break RFC 6455 ends the reader with the close code §7.4.1 names; random bytes never throw anything else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WsCloseCode, WsFrameReader, WsProtocolError, type FrameSink } from '../../src/link/websocket/frame-reader';

/** An unmasked (server) frame, written here independently of the reader. */
function frame(opcode: number, payload: Uint8Array, fin = true, extraHeader?: (h: Buffer) => void): Buffer {
  const n = payload.length;
  const h = Buffer.alloc(n < 126 ? 2 : n < 65536 ? 4 : 10);
  h[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) h[1] = n;
  else if (n < 65536) {
    h[1] = 126;
    h.writeUInt16BE(n, 2);
  } else {
    h[1] = 127;
    h.writeBigUInt64BE(BigInt(n), 2);
  }
  extraHeader?.(h);
  return Buffer.concat([h, payload]);
}

type Event = ['message', string, boolean] | ['ping' | 'pong', string] | ['close', number, string];

function recorder(): { sink: FrameSink; events: Event[]; buffers: Buffer[] } {
  const events: Event[] = [];
  const buffers: Buffer[] = [];
  return {
    events,
    buffers,
    sink: {
      message: (data, binary) => {
        buffers.push(data);
        events.push(['message', data.toString('hex'), binary]);
      },
      ping: (p) => events.push(['ping', p.toString('hex')]),
      pong: (p) => events.push(['pong', p.toString('hex')]),
      close: (code, reason) => events.push(['close', code, reason]),
    },
  };
}

/** Feeds `bytes` in pieces cut at `cuts`, through one reused buffer that is scribbled over after each push. */
function feed(reader: WsFrameReader, bytes: Buffer, cuts: number[]): void {
  const scratch = Buffer.alloc(bytes.length);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, bytes.length]) {
    if (to <= from) continue;
    const piece = scratch.subarray(0, to - from);
    bytes.copy(piece, 0, from, to);
    reader.push(piece);
    piece.fill(0xee);
    from = to;
  }
}

function failure(bytes: Buffer, maxPayload = 1 << 20): WsProtocolError {
  const reader = new WsFrameReader(maxPayload, recorder().sink);
  try {
    reader.push(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(WsProtocolError);
    expect(() => reader.push(Buffer.from([0x82, 0]))).toThrow(err as Error); // no resynchronising
    return err as WsProtocolError;
  }
  throw new Error('the reader accepted it');
}

describe('WsFrameReader: what goes in comes out', () => {
  const message = fc.oneof(
    fc.record({ kind: fc.constant('binary' as const), data: fc.uint8Array({ maxLength: 70_000 }), pieces: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('text' as const), data: fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => new Uint8Array(Buffer.from(s))), pieces: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ kind: fc.constant('ping' as const), data: fc.uint8Array({ maxLength: 125 }), pieces: fc.constant(1) }),
  );

  it('messages, fragmented or not, with pings between fragments, split at any byte', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (messages, cuts) => {
        const parts: Buffer[] = [];
        const expected: Event[] = [];
        for (const m of messages) {
          const hex = Buffer.from(m.data).toString('hex');
          if (m.kind === 'ping') {
            parts.push(frame(0x9, m.data));
            expected.push(['ping', hex]);
            continue;
          }
          const size = Math.ceil(m.data.length / m.pieces);
          for (let i = 0; i < m.pieces; i++) {
            const piece = m.data.subarray(i * size, Math.min(m.data.length, (i + 1) * size));
            parts.push(frame(i === 0 ? (m.kind === 'binary' ? 0x2 : 0x1) : 0x0, piece, i === m.pieces - 1));
            if (i === 0 && m.pieces > 1) parts.push(frame(0xa, Buffer.from('between')));
          }
          if (m.pieces > 1) expected.push(['pong', Buffer.from('between').toString('hex')]);
          expected.push(['message', hex, m.kind === 'binary']);
        }
        const { sink, events, buffers } = recorder();
        feed(new WsFrameReader(1 << 20, sink), Buffer.concat(parts), cuts);
        expect(events).toEqual(expected);
        // Each message owns its buffer: after every chunk was scribbled over, they still hold what was sent.
        expect(buffers.map((b) => b.toString('hex'))).toEqual(expected.filter((e) => e[0] === 'message').map((e) => e[1]));
      }),
      { numRuns: 300 },
    );
  });

  it('close frames: code and reason; none at all is 1005', () => {
    const { sink, events } = recorder();
    const reader = new WsFrameReader(1024, sink);
    const payload = Buffer.alloc(2 + Buffer.byteLength('ZKS_ré'));
    payload.writeUInt16BE(4001, 0);
    payload.write('ZKS_ré', 2);
    reader.push(Buffer.concat([frame(0x8, payload), frame(0x2, Buffer.from('after'))]));
    reader.push(frame(0x8, Buffer.alloc(0)));
    expect(events).toEqual([['close', 4001, 'ZKS_ré']]); // nothing after the close frame counts

    const bare = recorder();
    new WsFrameReader(1024, bare.sink).push(frame(0x8, Buffer.alloc(0)));
    expect(bare.events).toEqual([['close', 1005, '']]);
  });

  it('16- and 64-bit lengths at their edges; an empty binary message', () => {
    for (const n of [0, 125, 126, 65535, 65536]) {
      const { sink, buffers } = recorder();
      const data = Buffer.alloc(n, 7);
      feed(new WsFrameReader(1 << 20, sink), frame(0x2, data), [1, 2, 3, 5, 9]);
      expect(buffers).toHaveLength(1);
      expect(buffers[0]!.equals(data)).toBe(true);
    }
  });
});

describe('WsFrameReader: a server that breaks the protocol', () => {
  it.each([
    ['a reserved bit', frame(0x2, Buffer.from('x'), true, (h) => (h[0]! |= 0x40)), WsCloseCode.PROTOCOL_ERROR, /reserved bit/],
    ['a masked frame', Buffer.from([0x82, 0x81, 0, 0, 0, 0, 0x78]), WsCloseCode.PROTOCOL_ERROR, /masked/],
    ['an unknown opcode', frame(0x3, Buffer.from('x')), WsCloseCode.PROTOCOL_ERROR, /unknown opcode 3/],
    ['a fragmented control frame', frame(0x9, Buffer.from('x'), false), WsCloseCode.PROTOCOL_ERROR, /fragmented a control frame/],
    ['a control frame over 125 bytes', frame(0xa, Buffer.alloc(126)), WsCloseCode.PROTOCOL_ERROR, /126 bytes/],
    ['a continuation outside a message', frame(0x0, Buffer.from('x')), WsCloseCode.PROTOCOL_ERROR, /continuation/],
    ['a message inside a fragmented one', Buffer.concat([frame(0x2, Buffer.from('a'), false), frame(0x2, Buffer.from('b'))]), WsCloseCode.PROTOCOL_ERROR, /inside a fragmented/],
    ['a 1-byte close payload', frame(0x8, Buffer.from([3])), WsCloseCode.PROTOCOL_ERROR, /1-byte/],
    ['a close code that must not be sent', frame(0x8, Buffer.from([0x03, 0xee])), WsCloseCode.PROTOCOL_ERROR, /invalid close code 1006/],
    ['a close reason that is not UTF-8', frame(0x8, Buffer.from([0x03, 0xe8, 0xc3])), WsCloseCode.INVALID_DATA, /not UTF-8/],
    ['a text message that is not UTF-8', frame(0x1, Buffer.from([0xff, 0xfe])), WsCloseCode.INVALID_DATA, /not UTF-8/],
    ['a 64-bit length beyond 2^53', Buffer.from([0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 1]), WsCloseCode.MESSAGE_TOO_BIG, /2\^53/],
  ])('%s', (_name, bytes, code, message) => {
    const err = failure(bytes);
    expect(err.closeCode).toBe(code);
    expect(err.message).toMatch(message);
  });

  it('a message over maxPayload fails on its header, before any payload is held; fragments count together', () => {
    expect(failure(Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), 1000).closeCode).toBe(WsCloseCode.MESSAGE_TOO_BIG);
    const two = Buffer.concat([frame(0x2, Buffer.alloc(600), false), frame(0x0, Buffer.alloc(600))]);
    expect(failure(two, 1000)).toMatchObject({ closeCode: WsCloseCode.MESSAGE_TOO_BIG, message: 'the server sent a message of more than 1000 bytes' });
  });

  it('random bytes: messages or a WsProtocolError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const reader = new WsFrameReader(4096, recorder().sink);
        try {
          feed(reader, Buffer.from(bytes), cuts);
        } catch (err) {
          expect(err).toBeInstanceOf(WsProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
