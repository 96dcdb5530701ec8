// fast-check: random bytes, random frames and bit-flipped records into decodeRecord (and into a Mux). The only
// acceptable failure is a ProtocolError value: decoders never throw across the record boundary.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ConnectResult, FRAME_HEADER_SIZE, FrameType, INVALID_FRAME, MAX_FRAME_PAYLOAD, Mux, ProtocolError, ResetCode,
  decodeRecord, encodeFrames, encodedFrameSize, formatIPv4, formatIPv6, isValidDomain,
  type DecodeResult, type Frame,
} from '../../src/protocol/index';
import { utf8 } from './helpers';

function expectOnlyProtocolErrors(r: DecodeResult): void {
  if (!r.ok) expect(r.error).toBeInstanceOf(ProtocolError);
  for (const f of r.frames) {
    if (f.type === INVALID_FRAME) {
      expect(f.error).toBeInstanceOf(ProtocolError);
      expect(f.error.fatal).toBe(false);
    }
  }
}

const stream = fc.integer({ min: 1, max: 0xffffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const host = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIPv4),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map(formatIPv6),
  fc.domain().filter(isValidDomain),
);
// Messages up to ~800 UTF-8 bytes of any characters: longer than the 512-byte cap, with multi-byte code points.
const message = fc.string({ unit: 'grapheme', maxLength: 200 });
const resetCode = fc.constantFrom(...Object.values(ResetCode));

const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant(FrameType.CONNECT), stream, window: u32, target: fc.record({ host, port: fc.integer({ min: 1, max: 65535 }) }) }),
  fc.record({ type: fc.constant(FrameType.CONNECT_RESULT), stream, code: fc.constantFrom(...Object.values(ConnectResult)), window: u32, message }),
  fc.record({ type: fc.constant(FrameType.DATA), stream, data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant(FrameType.WINDOW_UPDATE), stream: u32, increment: fc.integer({ min: 1, max: 0xffffffff }) }),
  fc.record({ type: fc.constant(FrameType.FIN), stream }),
  fc.record({ type: fc.constant(FrameType.RST), stream, code: resetCode, message }),
  fc.record({ type: fc.constantFrom(FrameType.PING, FrameType.PONG), stream: fc.constant(0 as const), opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ type: fc.constant(FrameType.GOAWAY), stream: fc.constant(0 as const), code: resetCode, message }),
  fc.record({ type: fc.constant(FrameType.PATH_ACK), stream: fc.constant(0 as const), next: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) }),
  fc.record({ type: fc.constant(FrameType.SIGNAL), stream: fc.constant(0 as const), kind: fc.integer({ min: 1, max: 7 }), text: fc.string({ unit: 'grapheme', maxLength: 300 }) }),
) as fc.Arbitrary<Frame>;

/** The frame as the peer must see it: canonical host text, messages cut (at a character) to 512 bytes. */
function expectSameFrame(got: Frame, sent: Frame): void {
  if ('message' in sent && 'message' in got) {
    const { message: m, ...rest } = sent;
    const { message: g, ...gotRest } = got;
    expect(gotRest).toEqual(rest);
    expect(m.startsWith(g)).toBe(true);
    if (utf8(m).length <= 512) expect(g).toBe(m);
    else expect(utf8(g).length).toBeGreaterThan(508);
    return;
  }
  expect(got).toEqual(sent);
}

describe('decodeRecord properties', () => {
  it('random bytes never throw and only yield ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => expectOnlyProtocolErrors(decodeRecord(bytes))),
      { numRuns: 3000 },
    );
  });

  it('random headers over random payloads never throw (reaches every payload decoder)', () => {
    const rawFrame = fc
      .record({ type: fc.integer({ min: 0, max: 0x14 }), stream: fc.oneof(fc.constant(0), fc.constant(1), u32), payload: fc.uint8Array({ maxLength: 64 }), lie: fc.integer({ min: -3, max: 3 }) })
      .map(({ type, stream, payload, lie }) => {
        const b = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
        const v = new DataView(b.buffer);
        v.setUint8(0, type);
        v.setUint32(1, stream);
        v.setUint32(5, Math.max(0, payload.length + (lie === 0 || Math.abs(lie) > 1 ? 0 : lie))); // mostly honest lengths
        b.set(payload, FRAME_HEADER_SIZE);
        return b;
      });
    fc.assert(
      fc.property(fc.array(rawFrame, { maxLength: 8 }), (parts) => {
        const record = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        parts.reduce((off, p) => (record.set(p, off), off + p.length), 0);
        expectOnlyProtocolErrors(decodeRecord(record));
      }),
      { numRuns: 3000 },
    );
  });

  it('random valid frames round-trip through encodeFrames → decodeRecord', () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 12 }), (frames) => {
        const record = encodeFrames(frames);
        expect(record.length).toBe(frames.reduce((n, f) => n + encodedFrameSize(f), 0));
        const r = decodeRecord(record);
        expect(r.ok).toBe(true);
        expect(r.frames).toHaveLength(frames.length);
        r.frames.forEach((f, i) => expectSameFrame(f as Frame, frames[i]));
      }),
      { numRuns: 2000 },
    );
  });

  it('bit flips in valid records never throw', () => {
    fc.assert(
      fc.property(
        fc.array(frame, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 4, maxLength: 4 }),
        (frames, positions, bits) => {
          const record = encodeFrames(frames);
          positions.forEach((p, i) => (record[p % record.length] ^= 1 << bits[i]));
          expectOnlyProtocolErrors(decodeRecord(record));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('bit flips in a DATA length field give a clean error', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 31 }), (bit) => {
        const record = encodeFrames([{ type: FrameType.DATA, stream: 1, data: new Uint8Array(16) }]);
        const len = (16 ^ (1 << bit)) >>> 0;
        new DataView(record.buffer).setUint32(5, len);
        const r = decodeRecord(record);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        // Too large is caught from the header; shorter lengths leave bytes that are read as the next header.
        if (len > MAX_FRAME_PAYLOAD) expect(r.error.code).toBe('ZKS_ERR_FRAME_TOO_LARGE');
        else expect(['ZKS_ERR_MALFORMED_FRAME', 'ZKS_ERR_UNKNOWN_FRAME']).toContain(r.error.code);
      }),
    );
  });
});

describe('Mux.receiveRecord properties', () => {
  it('random records (random bytes, or valid frames, or mutated valid frames) never throw out of a Mux', () => {
    const record = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc.array(frame, { minLength: 1, maxLength: 6 }).map(encodeFrames),
      fc.tuple(fc.array(frame, { minLength: 1, maxLength: 6 }), fc.nat()).map(([fs, p]) => {
        const r = encodeFrames(fs);
        r[p % r.length] ^= 0x10;
        return r;
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom('client', 'server') as fc.Arbitrary<'client' | 'server'>, fc.array(record, { maxLength: 6 }), (role, records) => {
        const tasks: Array<() => void> = [];
        const mux = new Mux({
          role,
          transport: { sendRecord: () => {}, close: () => {} },
          onStream: (s) => (s.id % 3 === 0 ? s.reject(ConnectResult.REFUSED, 'no') : s.accept()),
          scheduleFlush: (fn) => void tasks.push(fn),
          now: () => 0,
        });
        for (const r of records) {
          mux.receiveRecord(r);
          while (tasks.length) tasks.shift()!();
        }
      }),
      { numRuns: 1500 },
    );
  });
});
