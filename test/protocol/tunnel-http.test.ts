// HTTP tunnel heads and claims (docs/PROTOCOL.md §12): the byte layout, every check on a head, the hop-by-hop rule,
// and properties — a head survives any split of its bytes; random bytes or JSON never throw, only return errors.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ProtocolError } from '../../src/protocol/errors';
import {
  checkRequestHead,
  checkResponseHead,
  encodeClaim,
  encodeHead,
  endToEndHeaders,
  HeadReader,
  MAX_HEAD_BYTES,
  parseClaim,
  type RequestHead,
  type ResponseHead,
} from '../../src/protocol/tunnel-http';
import { decodeWsClose, encodeWsClose, encodeWsMessage, MAX_WS_MESSAGE, WsMessageReader, WsMessageType } from '../../src/protocol/tunnel-ws';

const request: RequestHead = { method: 'POST', target: '/a/b?x=1', headers: [['host', 'example.com'], ['content-length', '5']] };

function readAll<T>(reader: HeadReader<T>, parts: Uint8Array[]) {
  for (const p of parts) {
    const got = reader.push(p);
    if (got !== null) return got;
  }
  return null;
}

const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const framed = (json: string) => {
  const body = new TextEncoder().encode(json);
  return new Uint8Array([...u32(body.length), ...body]);
};

describe('heads on a request stream', () => {
  it('is u32 length || UTF-8 JSON (the §12.3 vector)', () => {
    const bytes = encodeHead({ method: 'GET', target: '/', headers: [['host', 'x']] });
    const json = '{"method":"GET","target":"/","headers":[["host","x"]]}';
    expect(json.length).toBe(0x36);
    expect(Buffer.from(bytes).toString('hex')).toBe('00000036' + Buffer.from(json).toString('hex'));
  });

  it('reads a head and hands over the body bytes that came with it', () => {
    const body = new TextEncoder().encode('hello');
    const got = readAll(new HeadReader(checkRequestHead), [new Uint8Array([...encodeHead(request), ...body])]);
    expect(got).not.toBeInstanceOf(ProtocolError);
    const ok = got as { head: RequestHead; rest: Uint8Array };
    expect(ok.head).toEqual(request);
    expect(Buffer.from(ok.rest).toString()).toBe('hello');
  });

  it('refuses what must never reach a server: CR/LF in values, non-token names or methods, absolute targets', () => {
    const bad: unknown[] = [
      { ...request, headers: [['x-a', 'a\r\nInjected: 1']] },
      { ...request, headers: [['x a', '1']] },
      { ...request, headers: [['x-a', 'nul\0']] },
      { ...request, headers: [['x-a']] },
      { ...request, method: 'GET /x HTTP/1.1' },
      { ...request, method: '' },
      { ...request, target: 'http://evil.example/' },
      { ...request, target: '/a b' },
      { ...request, target: '' },
      { ...request, headers: Array.from({ length: 257 }, () => ['x', 'y']) },
      { ...request, headers: 'host: x' },
      { ...request, chunked: 'yes' },
      { ...request, chunked: true, upgrade: 'websocket' },
      { ...request, upgrade: 'h2c' },
      null,
      [],
    ];
    for (const v of bad) expect(checkRequestHead(v), JSON.stringify(v)?.slice(0, 80)).toBeInstanceOf(ProtocolError);
    for (const v of bad) if (v && typeof v === 'object' && !Array.isArray(v)) expect(() => encodeHead(v as RequestHead)).toThrow(ProtocolError);
  });

  it('response heads: status 200-599 only, a reason phrase without CR/LF', () => {
    const ok: ResponseHead = { status: 404, statusText: 'Not Found', headers: [] };
    expect(checkResponseHead(ok)).toEqual(ok);
    for (const status of [100, 199, 600, 200.5, '200']) expect(checkResponseHead({ ...ok, status })).toBeInstanceOf(ProtocolError);
    expect(checkResponseHead({ ...ok, statusText: 'x\r\ny' })).toBeInstanceOf(ProtocolError);
  });

  it('a length over the limit, bytes that are not UTF-8 JSON: an error for that stream, at once', () => {
    expect(new HeadReader(checkRequestHead).push(u32(MAX_HEAD_BYTES + 1))).toBeInstanceOf(ProtocolError);
    expect(new HeadReader(checkRequestHead).push(framed('{"method":'))).toBeInstanceOf(ProtocolError);
    expect(new HeadReader(checkRequestHead).push(new Uint8Array([0, 0, 0, 2, 0xc3, 0x28]))).toBeInstanceOf(ProtocolError);
    const err = new HeadReader(checkRequestHead).push(framed('[1,2]')) as ProtocolError;
    expect(err.code).toBe('ZKS_ERR_HTTP_HEAD');
    expect(err.fatal).toBe(false); // one stream, never the session
  });

  it('property: any head survives any split of its bytes', () => {
    const token = fc.stringMatching(/^[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,20}$/);
    const value = fc.stringMatching(/^[\x20-\x7e\t]{0,40}$/);
    fc.assert(fc.property(
      token, fc.stringMatching(/^\/[\x21-\x7e]{0,60}$/), fc.array(fc.tuple(token, value), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 8 }),
      (method, target, headers, cuts) => {
        const head: RequestHead = { method, target, headers };
        const bytes = encodeHead(head);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const parts: Uint8Array[] = [];
        let at = 0;
        for (const p of [...points, bytes.length]) (parts.push(bytes.subarray(at, p)), (at = p));
        const got = readAll(new HeadReader(checkRequestHead), parts) as { head: RequestHead; rest: Uint8Array };
        expect(got.head).toEqual(head);
        expect(got.rest.length).toBe(0);
      },
    ));
  });

  it('property: random bytes and random JSON give a head or an error, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const got = new HeadReader(checkResponseHead).push(bytes);
      expect(got === null || got instanceof ProtocolError || typeof got.head.status === 'number').toBe(true);
    }));
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const got = new HeadReader(checkRequestHead).push(framed(JSON.stringify(v) ?? 'null'));
      expect(got === null || got instanceof ProtocolError || typeof got.head.method === 'string').toBe(true);
    }));
  });
});

describe('hop-by-hop fields (RFC 9110 §7.6.1)', () => {
  it('drops the fixed set and whatever Connection names, keeping order and repeats of the rest', () => {
    expect(endToEndHeaders([
      ['Host', 'a'], ['Connection', 'keep-alive, X-Hop'], ['X-Hop', '1'], ['Keep-Alive', 't=5'], ['TE', 'trailers'],
      ['Transfer-Encoding', 'chunked'], ['Upgrade', 'h2c'], ['Proxy-Authorization', 'x'], ['Set-Cookie', 'a=1'], ['set-cookie', 'b=2'],
    ])).toEqual([['Host', 'a'], ['Set-Cookie', 'a=1'], ['set-cookie', 'b=2']]);
  });
});

describe('TUNNEL_CLAIM', () => {
  const claim = {
    verifier: new Uint8Array(32).fill(7), access: new Uint8Array(32).fill(9) as Uint8Array | 'public',
    maxConcurrent: 64, ratePerSecond: 100, maxBodyBytes: null as number | null, keepPrefix: false,
  };

  it('round-trips, public or with a Basic hash', () => {
    expect(parseClaim(encodeClaim(claim))).toEqual(claim);
    const pub = { ...claim, access: 'public' as const, maxBodyBytes: 1024, keepPrefix: true };
    expect(parseClaim(encodeClaim(pub))).toEqual(pub);
  });

  it('refuses anything else with a clear error', () => {
    const good = JSON.parse(encodeClaim(claim)) as Record<string, unknown>;
    const bad = [
      'not json', '[]', 'null', JSON.stringify({ ...good, v: 2 }), JSON.stringify({ ...good, verifier: 'short' }),
      JSON.stringify({ ...good, access: 'everyone' }), JSON.stringify({ ...good, access: { basic: 'AAAA' } }),
      JSON.stringify({ ...good, maxConcurrent: 0 }), JSON.stringify({ ...good, ratePerSecond: 1e9 }),
      JSON.stringify({ ...good, maxBodyBytes: -1 }), JSON.stringify({ ...good, keepPrefix: 'yes' }),
    ];
    for (const text of bad) expect(parseClaim(text), text.slice(0, 60)).toBeInstanceOf(ProtocolError);
    fc.assert(fc.property(fc.string(), (s) => void parseClaim(s)));
  });
});

describe('WebSocket messages after a 101 (§12.5)', () => {
  it('type u8 || length u32 || payload; close carries code and reason', () => {
    expect(Buffer.from(encodeWsMessage(WsMessageType.TEXT, new TextEncoder().encode('hi'))).toString('hex')).toBe('01000000026869');
    expect(Buffer.from(encodeWsClose(1000, 'ok')).toString('hex')).toBe('080000000403e86f6b');
    expect(decodeWsClose(Uint8Array.of(0x0f, 0xa0, 0x78))).toEqual({ code: 4000, reason: 'x' });
    expect(decodeWsClose(new Uint8Array(0))).toEqual({ code: 1005, reason: '' });
  });

  it('property: messages survive any split of their bytes', () => {
    const msg = fc.record({ type: fc.constantFrom(WsMessageType.TEXT, WsMessageType.BINARY, WsMessageType.CLOSE), payload: fc.uint8Array({ maxLength: 200 }) });
    fc.assert(fc.property(fc.array(msg, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 10 }), (msgs, cuts) => {
      const bytes = Buffer.concat(msgs.map((m) => encodeWsMessage(m.type, m.payload)));
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const reader = new WsMessageReader();
      const got: Array<{ type: number; payload: Uint8Array }> = [];
      let at = 0;
      for (const p of [...points, bytes.length]) {
        const out = reader.push(new Uint8Array(bytes.subarray(at, p)));
        if (out instanceof ProtocolError) throw out;
        got.push(...out);
        at = p;
      }
      expect(got.map((m) => [m.type, Buffer.from(m.payload).toString('hex')])).toEqual(msgs.map((m) => [m.type, Buffer.from(m.payload).toString('hex')]));
    }));
  });

  it('an unknown type or a length over 32 MiB ends that stream at once', () => {
    expect(new WsMessageReader().push(Uint8Array.of(9, 0, 0, 0, 0))).toBeInstanceOf(ProtocolError);
    expect(new WsMessageReader().push(Uint8Array.of(2, 2, 0, 0, 1))).toBeInstanceOf(ProtocolError);
    expect(() => encodeWsMessage(WsMessageType.BINARY, new Uint8Array(MAX_WS_MESSAGE + 1))).toThrow(ProtocolError);
  });
});
