// Frame codec: hex vectors (test/vectors/frames.json) both ways, every malformed input with its exact `code`,
// every truncation of a valid record. Records arrive whole (one AEAD record each), so instead of splitting a
// stream at every byte boundary we cut a valid record at every byte and require a clean result each time.
import { describe, expect, it } from 'vitest';
import vectors from '../vectors/frames.json';
import {
  FRAME_HEADER_SIZE, FrameType, INVALID_FRAME, MAX_FRAME_PAYLOAD, MAX_RECORD_SIZE, ProtocolError, RESERVED_FRAME_TYPES,
  MAX_SIGNAL_TEXT, SignalKind, decodeRecord, encodeFrames, encodedFrameSize, writeFrame, type Frame, type ZksErrorCode,
} from '../../src/protocol/index';
import {
  CONNECT, DATA, FIN, GOAWAY, PING, RESULT_OK, RST, WINDOW_UPDATE,
  concat, expectDecodeError, expectZksError, frameFromJson, frameToJson, framesOf, h, hex, utf8, type JsonFrame,
} from './helpers';

const header = (type: number, stream: number, len: number) => {
  const b = new Uint8Array(FRAME_HEADER_SIZE);
  const v = new DataView(b.buffer);
  v.setUint8(0, type);
  v.setUint32(1, stream);
  v.setUint32(5, len);
  return hex(b);
};

describe('frames.json vectors', () => {
  describe.each(vectors.valid)('$name', (v) => {
    it('decodes to the listed frames', () => {
      expect(framesOf(h(v.hex)).map(frameToJson)).toEqual(v.frames);
    });
    it('encodes back to the same bytes', () => {
      const frames = (v.frames as JsonFrame[]).map(frameFromJson);
      expect(hex(encodeFrames(frames))).toBe(v.hex.replace(/\s+/g, ''));
      expect(frames.reduce((n, f) => n + encodedFrameSize(f), 0)).toBe(h(v.hex).length);
    });
  });

  describe.each(vectors.invalid)('must reject $name', (v) => {
    it(`with ${v.code}${v.fatal ? '' : ' (this stream only)'}`, () => {
      const r = decodeRecord(h(v.hex));
      if (v.fatal) {
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expectZksError(r.error, v.code as ZksErrorCode);
        expect(r.error.fatal).toBe(true);
      } else {
        expect(r.ok).toBe(true);
        expect(r.frames).toHaveLength(1);
        const f = r.frames[0];
        expect(f.type).toBe(INVALID_FRAME);
        if (f.type !== INVALID_FRAME) return;
        expect(f.stream).toBe(1);
        expect(f.frameType).toBe(h(v.hex)[0]);
        expectZksError(f.error, v.code as ZksErrorCode);
        expect(f.error.fatal).toBe(false);
      }
    });
  });

  it('covers every frame type and CONNECT address type', () => {
    const types = new Set(vectors.valid.flatMap((v) => v.frames.map((f) => f.type)));
    expect([...types].sort()).toEqual(['CAPABILITIES', 'CONNECT', 'CONNECT_RESULT', 'DATA', 'FIN', 'GOAWAY', 'ICMP_ECHO', 'PATH_ACK', 'PING', 'PONG', 'RST', 'SIGNAL', 'UDP_DATAGRAM', 'WINDOW_UPDATE']);
    const hosts = vectors.valid.flatMap((v) => (v.frames as JsonFrame[]).filter((f) => f.type === 'CONNECT').map((f) => f.host));
    expect(hosts).toEqual(['93.184.215.14', '2001:db8::1', 'example.com']);
  });
});

describe('round trip of every frame type', () => {
  const cases: Array<[string, Frame]> = [
    ['CONNECT ipv4', { ...CONNECT, target: { host: '192.0.2.1', port: 1 } }],
    ['CONNECT ipv6', { ...CONNECT, stream: 3, target: { host: '::1', port: 65535 } }],
    ['CONNECT ipv6 canonicalised', { ...CONNECT, target: { host: '[2001:DB8:0:0:0:0:0:1]', port: 22 } }],
    ['CONNECT domain', { ...CONNECT, stream: 0xffffffff, target: { host: 'a-b_c.example', port: 80 } }],
    ['CONNECT_RESULT', { ...RESULT_OK, code: 6, window: 0, message: 'timeout after 10 s' }],
    ['DATA', DATA],
    ['DATA empty', { ...DATA, data: new Uint8Array(0) }],
    ['WINDOW_UPDATE', { ...WINDOW_UPDATE, increment: 0xffffffff }],
    ['FIN', FIN],
    ['RST', { ...RST, code: 5, message: 'zurückgesetzt ✓' }],
    ['PING', PING],
    ['PONG', { ...PING, type: FrameType.PONG }],
    ['GOAWAY', GOAWAY],
    ['PATH_ACK 0', { type: FrameType.PATH_ACK, stream: 0, next: 0 }],
    ['PATH_ACK 2^53 - 1', { type: FrameType.PATH_ACK, stream: 0, next: Number.MAX_SAFE_INTEGER }],
    ['SIGNAL OFFER', { type: FrameType.SIGNAL, stream: 0, kind: SignalKind.OFFER, text: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n' }],
    ['SIGNAL CLOSE empty', { type: FrameType.SIGNAL, stream: 0, kind: SignalKind.CLOSE, text: '' }],
    ['SIGNAL 16 KiB of text', { type: FrameType.SIGNAL, stream: 0, kind: SignalKind.ANSWER, text: 'ü'.repeat(MAX_SIGNAL_TEXT / 2) }],
  ];
  it.each(cases)('%s', (_name, frame) => {
    const [decoded] = framesOf(encodeFrames([frame]));
    const expected = frame.type === FrameType.CONNECT
      ? { ...frame, target: { ...frame.target, host: frame.target.host.replace(/^\[|\]$/g, '').toLowerCase().replace('2001:db8:0:0:0:0:0:1', '2001:db8::1') } }
      : frame;
    expect(decoded).toEqual(expected);
  });

  it('SIGNAL text over 16 KiB is refused on encode and on decode', () => {
    const big = 'a'.repeat(MAX_SIGNAL_TEXT + 1);
    expect(() => encodeFrames([{ type: FrameType.SIGNAL, stream: 0, kind: SignalKind.OFFER, text: big }])).toThrow(/exceeds 16384/);
    const wire = concat([h(`0c 00000000 ${(MAX_SIGNAL_TEXT + 2).toString(16).padStart(8, '0')} 01`), utf8(big)]);
    expectDecodeError(wire, 'ZKS_ERR_MALFORMED_FRAME', /longer than 16384/);
  });

  it('writeFrame writes at an offset and returns the end', () => {
    const buf = new Uint8Array(3 + encodedFrameSize(FIN) + 2).fill(0xee);
    expect(writeFrame(buf, 3, FIN)).toBe(3 + FRAME_HEADER_SIZE);
    expect(hex(buf)).toBe('eeeeee' + '050000000100000000' + 'eeee');
  });

  it('decodes from a view that does not start at offset 0 of its buffer', () => {
    const outer = h('ffff' + '03 00000001 00000002 6869' + 'ffff');
    expect(framesOf(outer.subarray(2, outer.length - 2)).map(frameToJson)).toEqual([{ type: 'DATA', stream: 1, data: '6869' }]);
  });

  it('DATA and PING payloads are views into the record (no copy)', () => {
    const record = encodeFrames([DATA, PING]);
    const [d, p] = framesOf(record) as [Extract<Frame, { type: 3 }>, Extract<Frame, { type: 7 }>];
    expect(d.data.buffer).toBe(record.buffer);
    expect(p.opaque.buffer).toBe(record.buffer);
  });

  it('an empty record holds no frames', () => {
    expect(decodeRecord(new Uint8Array(0))).toEqual({ ok: true, frames: [] });
  });
});

describe('malformed input', () => {
  it('truncated frame header', () => {
    for (let n = 1; n < FRAME_HEADER_SIZE; n++) {
      expectDecodeError(h('03000000010000000000').subarray(0, n), 'ZKS_ERR_MALFORMED_FRAME', new RegExp(`truncated frame header \\(${n} bytes\\)`));
    }
  });

  it('length beyond the record', () => {
    expectDecodeError(h('03 00000001 00000005 6869'), 'ZKS_ERR_MALFORMED_FRAME', /claims 5 payload bytes, 2 present/);
  });

  it('payload larger than MAX_FRAME_PAYLOAD is refused from the header alone', () => {
    expectDecodeError(h(header(FrameType.DATA, 1, MAX_FRAME_PAYLOAD + 1)), 'ZKS_ERR_FRAME_TOO_LARGE', /exceeds 262144/);
    expectDecodeError(h(header(FrameType.DATA, 1, 0xffffffff)), 'ZKS_ERR_FRAME_TOO_LARGE');
  });

  it('a payload of exactly MAX_FRAME_PAYLOAD is fine', () => {
    const data = new Uint8Array(MAX_FRAME_PAYLOAD).fill(7);
    const [f] = framesOf(encodeFrames([{ ...DATA, data }]));
    expect(f).toMatchObject({ type: FrameType.DATA, stream: 1 });
  });

  it('a record larger than MAX_RECORD_SIZE', () => {
    expectDecodeError(new Uint8Array(MAX_RECORD_SIZE + 1), 'ZKS_ERR_FRAME_TOO_LARGE', /record of 1048577 bytes/);
  });

  const byHex = (types: number[]) => types.map((type) => ({ type, name: `0x${type.toString(16).padStart(2, '0')}` }));

  it.each(byHex([0x00, 0x0d, 0x0f, 0x14, 0x7f, 0xff]))('unknown type $name → ZKS_ERR_UNKNOWN_FRAME', ({ type }) => {
    expectDecodeError(h(header(type, 1, 0)), 'ZKS_ERR_UNKNOWN_FRAME', new RegExp(`0x${type.toString(16)} is unknown`));
  });

  it.each(byHex([...RESERVED_FRAME_TYPES]))('reserved type $name → ZKS_ERR_UNSUPPORTED_FRAME', ({ type }) => {
    expectDecodeError(h(header(type, 1, 0)), 'ZKS_ERR_UNSUPPORTED_FRAME', /reserved and not supported by protocol v1/);
    expectDecodeError(h(header(type, 0, 4) + '00000000'), 'ZKS_ERR_UNSUPPORTED_FRAME');
  });

  describe('stream 0 rules', () => {
    it.each([
      ['CONNECT', encodeFrames([{ ...CONNECT, stream: 0 }])],
      ['CONNECT_RESULT', encodeFrames([{ ...RESULT_OK, stream: 0 }])],
      ['DATA', encodeFrames([{ ...DATA, stream: 0 }])],
      ['FIN', encodeFrames([{ ...FIN, stream: 0 }])],
      ['RST', encodeFrames([{ ...RST, stream: 0 }])],
    ])('%s on stream 0 is malformed', (_name, record) => {
      expectDecodeError(record, 'ZKS_ERR_MALFORMED_FRAME', /on stream 0/);
    });

    it.each([
      ['PING', FrameType.PING, '0001020304050607', /PING must use stream 0/],
      ['PONG', FrameType.PONG, '0001020304050607', /PONG must use stream 0/],
      ['GOAWAY', FrameType.GOAWAY, '06', /GOAWAY must use stream 0/],
    ])('%s on a non-zero stream is malformed', (_name, type, payload, message) => {
      expectDecodeError(h(header(type, 7, payload.length / 2) + payload), 'ZKS_ERR_MALFORMED_FRAME', message);
    });

    it('WINDOW_UPDATE on stream 0 decodes (v1 has no session window; the mux ignores it)', () => {
      expect(framesOf(encodeFrames([{ ...WINDOW_UPDATE, stream: 0 }]))).toEqual([{ ...WINDOW_UPDATE, stream: 0 }]);
    });
  });

  it('WINDOW_UPDATE with increment 0', () => {
    expectDecodeError(h('04 00000001 00000004 00000000'), 'ZKS_ERR_MALFORMED_FRAME', /zero increment/);
  });

  it.each([
    ['WINDOW_UPDATE of 5 bytes', '04 00000001 00000005 0000000100', /has 5 payload bytes, expected 4/],
    ['FIN with a payload', '05 00000001 00000001 00', /has 1 payload bytes, expected 0/],
    ['PING of 9 bytes', '07 00000000 00000009 000102030405060708', /has 9 payload bytes, expected 8/],
    ['RST without a code', '06 00000001 00000000', /payload too short/],
    ['GOAWAY without a code', '09 00000000 00000000', /payload too short/],
    ['CONNECT_RESULT of 4 bytes', '02 00000001 00000004 00000000', /CONNECT_RESULT payload too short/],
    ['CONNECT_RESULT code 7', '02 00000001 00000005 07 00000000', /code 7 is unknown/],
    ['CONNECT of 7 bytes', '01 00000001 00000007 00100000 01bb 01', /CONNECT payload too short/],
    ['CONNECT IPv4 of 3 bytes', '01 00000001 0000000a 00100000 01bb 01 7f0000', /IPv4 address has 3 bytes/],
    ['CONNECT IPv6 of 15 bytes', `01 00000001 00000016 00100000 01bb 04 ${'00'.repeat(15)}`, /IPv6 address has 15 bytes/],
    ['CONNECT domain length 0', '01 00000001 00000008 00100000 01bb 03 00', /domain length mismatch/],
    ['CONNECT domain length too long', '01 00000001 0000000a 00100000 01bb 03 03 6162', /domain length mismatch/],
    ['CONNECT address type 2', '01 00000001 0000000b 00100000 01bb 02 7f000001', /address type 2 is unknown/],
  ])('%s', (_name, bytes, message) => {
    expectDecodeError(h(bytes), 'ZKS_ERR_MALFORMED_FRAME', message);
  });

  it.each([
    ['RST', '06 00000001 00000003 00 c328'],
    ['GOAWAY', '09 00000000 00000002 01 ff'],
    ['CONNECT_RESULT', '02 00000001 00000007 01 00000000 eda080'], // an encoded surrogate is not UTF-8 either
  ])('%s message that is not UTF-8 is malformed', (_name, bytes) => {
    expectDecodeError(h(bytes), 'ZKS_ERR_MALFORMED_FRAME', /not valid UTF-8/);
  });

  it('a message over 512 bytes is malformed; exactly 512 is fine', () => {
    const rst = (n: number) => h(header(FrameType.RST, 1, 1 + n) + '00' + '61'.repeat(n));
    expectDecodeError(rst(513), 'ZKS_ERR_MALFORMED_FRAME', /longer than 512 bytes/);
    expect(framesOf(rst(512))[0]).toMatchObject({ type: FrameType.RST, message: 'a'.repeat(512) });
  });

  it('unknown RST and GOAWAY codes are passed through (they only explain, never steer)', () => {
    expect(framesOf(h('06 00000001 00000001 ff'))[0]).toMatchObject({ type: FrameType.RST, code: 0xff });
    expect(framesOf(h('09 00000000 00000001 80'))[0]).toMatchObject({ type: FrameType.GOAWAY, code: 0x80 });
  });

  describe('problems that concern one stream only', () => {
    it.each([
      ['bad domain "a..b"', '01 00000003 0000000c 00100000 0050 03 04 612e2e62', /not a valid domain/],
      ['domain with a space', '01 00000003 0000000c 00100000 0050 03 04 6120622e', /not a valid domain/],
      ['domain with a non-ASCII byte', '01 00000003 0000000a 00100000 0050 03 02 c3a9', /not a valid domain/],
      ['port 0', '01 00000003 0000000b 00100000 0000 01 7f000001', /port 0/],
    ])('%s → INVALID_FRAME with ZKS_ERR_BAD_ADDRESS, and decoding goes on', (_name, bytes, message) => {
      const r = decodeRecord(concatHex(bytes, '05 00000005 00000000'));
      expect(r.ok).toBe(true);
      expect(r.frames).toHaveLength(2);
      const [bad, next] = r.frames;
      expect(bad).toMatchObject({ type: INVALID_FRAME, stream: 3, frameType: FrameType.CONNECT });
      if (bad.type !== INVALID_FRAME) return;
      expect(bad.error).toBeInstanceOf(ProtocolError);
      expectZksError(bad.error, 'ZKS_ERR_BAD_ADDRESS', message);
      expect(bad.error.fatal).toBe(false);
      expect(next).toEqual({ type: FrameType.FIN, stream: 5 });
    });

    it('upper-case domains are lower-cased, a trailing dot is kept', () => {
      expect(framesOf(h('01 00000001 0000000f 00100000 0050 03 07 4558414d504c45'))[0]).toMatchObject({ target: { host: 'example' } });
      expect(framesOf(h('01 00000001 0000000c 00100000 0050 03 04 6c6f632e'))[0]).toMatchObject({ target: { host: 'loc.' } });
    });
  });

  it('frames before the bad one are returned with the error', () => {
    const r = decodeRecord(concatHex('05 00000001 00000000', '04 00000003 00000004 00000010', '0d 00000001 00000000', '05 00000007 00000000'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expectZksError(r.error, 'ZKS_ERR_UNKNOWN_FRAME');
    expect(r.frames).toEqual([{ type: FrameType.FIN, stream: 1 }, { type: FrameType.WINDOW_UPDATE, stream: 3, increment: 16 }]);
  });
});

describe('every truncation of a valid multi-frame record', () => {
  const frames: Frame[] = [
    { ...CONNECT, target: { host: 'example.com', port: 443 } },
    { ...CONNECT, stream: 3, target: { host: '2001:db8::1', port: 443 } },
    RESULT_OK,
    { ...DATA, data: utf8('0123456789') },
    WINDOW_UPDATE,
    { ...RST, stream: 3, message: 'gone' },
    FIN,
    PING,
    { ...PING, type: FrameType.PONG },
    GOAWAY,
  ];
  const record = encodeFrames(frames);
  const boundaries = new Set<number>();
  frames.reduce((off, f) => (boundaries.add(off + encodedFrameSize(f)), off + encodedFrameSize(f)), 0);

  it('yields ok with whole frames at frame boundaries, else a ProtocolError, and never throws', () => {
    for (let n = 0; n <= record.length; n++) {
      const prefix = record.subarray(0, n);
      const r = decodeRecord(prefix);
      if (n === 0 || boundaries.has(n)) {
        expect(r.ok, `prefix ${n}`).toBe(true);
        expect(encodeFrames(r.frames as Frame[])).toEqual(prefix);
      } else {
        expect(r.ok, `prefix ${n}`).toBe(false);
        if (r.ok) continue;
        expect(r.error).toBeInstanceOf(ProtocolError);
        expect(r.error.fatal).toBe(true);
        expect(['ZKS_ERR_MALFORMED_FRAME']).toContain(r.error.code);
        expect(encodeFrames(r.frames as Frame[]).length).toBeLessThan(n);
      }
    }
  });
});

// Regression: messageBytes() cut at byte 512 even inside a multi-byte character; the receiver rejects invalid
// UTF-8 as fatal, so one long non-ASCII reset message (an OS error text, say) ended the whole session.
describe('regression: long non-ASCII message split a UTF-8 character and killed the session', () => {
  it.each([
    ['2-byte', 'a' + 'é'.repeat(300)],
    ['3-byte', 'ab' + '✓'.repeat(300)],
    ['4-byte', 'abc' + '😀'.repeat(200)],
  ])('%s characters: the message is cut before the character and decodes', (_name, message) => {
    for (const f of [{ ...RST, message }, { ...GOAWAY, message }, { ...RESULT_OK, code: 1 as const, message }] as Frame[]) {
      const record = encodeFrames([f]);
      const r = decodeRecord(record);
      expect(r.ok).toBe(true);
      const got = (r.frames[0] as { message: string }).message;
      expect(message.startsWith(got)).toBe(true);
      expect(utf8(got).length).toBeLessThanOrEqual(512);
      expect(utf8(got).length).toBeGreaterThan(508);
      expect(encodedFrameSize(f)).toBe(record.length);
    }
  });
});

function concatHex(...parts: string[]): Uint8Array {
  return h(parts.join(''));
}
