// ExitSession on its own, with the test as its room connection (SessionHost): handshake edge cases that the
// stand-in room cannot provoke quickly.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitSession, HELLO_TIMEOUT_MS, type SessionHost } from '../../src/exit/session';
import { createClientHello, encodeBase64Url, finishClientHandshake } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { ZksError } from '../../src/errors/zks-error';

const PSK = new Uint8Array(32).fill(7);

function host() {
  const sent: Array<{ sid: number; payload: Uint8Array }> = [];
  const closes: Array<{ sid: number; reason: string }> = [];
  const forgotten: number[] = [];
  const h: SessionHost = {
    psk: PSK,
    send: (sid, payload) => sent.push({ sid, payload: payload.slice() }),
    sendClose: (sid, reason) => closes.push({ sid, reason }),
    forget: (s) => forgotten.push(s.sid),
    onStream: (stream) => stream.reject(1, 'test host accepts no streams'),
    log: () => {},
  };
  return { h, sent, closes, forgotten };
}

const flush = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('ExitSession', () => {
  it('answers a HELLO with a REPLY the client accepts, using the room entropy', async () => {
    const { h, sent, closes } = host();
    const entropy = new Uint8Array(32).fill(0xab);
    const s = new ExitSession(5, entropy, h);
    const { hello, state } = await createClientHello(nodeCrypto, PSK);
    s.receive(hello);
    await flush();
    expect(sent).toHaveLength(1);
    expect(sent[0].sid).toBe(5);
    expect(sent[0].payload.subarray(34, 66)).toEqual(entropy); // REPLY.relayEntropy
    const keys = await finishClientHandshake(nodeCrypto, state, sent[0].payload);
    expect(keys).not.toBeInstanceOf(ZksError);
    expect(s.isOpen).toBe(true);
    expect(closes).toEqual([]);
    s.remoteClosed('test over');
    expect(s.isOpen).toBe(false);
  });

  it('closes a session whose client never sends its HELLO', () => {
    vi.useFakeTimers();
    const { h, closes, forgotten } = host();
    new ExitSession(9, new Uint8Array(32), h);
    vi.advanceTimersByTime(HELLO_TIMEOUT_MS + 1);
    expect(closes).toEqual([{ sid: 9, reason: `no handshake within ${HELLO_TIMEOUT_MS} ms` }]);
    expect(forgotten).toEqual([9]);
  });

  it('closes a session flooding payloads before its handshake finished', async () => {
    const { h, closes, sent } = host();
    const s = new ExitSession(3, new Uint8Array(32), h);
    const { hello } = await createClientHello(nodeCrypto, PSK);
    s.receive(hello);
    for (let i = 0; i < 9; i++) s.receive(new Uint8Array(40));
    await flush();
    expect(closes).toEqual([{ sid: 3, reason: 'client sent records before the handshake finished' }]);
    expect(sent).toEqual([]); // no REPLY after the close
  });

  it('rejects bad entropy text', () => {
    expect(ExitSession.decodeEntropy('AAAA')).toBeNull();
    expect(ExitSession.decodeEntropy(encodeBase64Url(new Uint8Array(31)))).toBeNull();
    expect(ExitSession.decodeEntropy(encodeBase64Url(new Uint8Array(32)) + '=')).toBeNull();
    expect(ExitSession.decodeEntropy(encodeBase64Url(new Uint8Array(32).fill(1)))).toEqual(new Uint8Array(32).fill(1));
  });

  it('a truncated HELLO is closed with the handshake error and nothing is sent', async () => {
    const { h, closes, sent } = host();
    const s = new ExitSession(4, new Uint8Array(32), h);
    s.receive(new Uint8Array(90));
    await flush();
    expect(closes).toEqual([{ sid: 4, reason: 'HELLO must be 91 bytes' }]);
    expect(sent).toEqual([]);
    s.receive(new Uint8Array(91)); // ignored after the close
    expect(closes).toHaveLength(1);
  });
});
