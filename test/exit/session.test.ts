// ExitSession on its own, with the test as its room connection (SessionHost): handshake edge cases that the
// stand-in room cannot provoke quickly.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitSession, HELLO_TIMEOUT_MS, type SessionHost } from '../../src/exit/session';
import { createClientHello, encodeBase64Url, finishClientHandshake } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { ZksError } from '../../src/errors/zks-error';
import type { X25519Keypair } from '../../src/crypto/types';

const PSK = new Uint8Array(32).fill(7);

function host(staticKey: X25519Keypair | null = null) {
  const sent: Array<{ sid: number; payload: Uint8Array }> = [];
  const closes: Array<{ sid: number; reason: string }> = [];
  const forgotten: number[] = [];
  const h: SessionHost = {
    psk: PSK,
    staticKey,
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

  describe('a client that pins the exit key (--exit-id, issue 14: a room secret alone must not be a man-in-the-middle)', () => {
    async function run(exitKey: X25519Keypair | null, pinned: Uint8Array) {
      const { h, sent, closes } = host(exitKey);
      const s = new ExitSession(6, new Uint8Array(32), h);
      const { hello, state } = await createClientHello(nodeCrypto, PSK, { responderStatic: pinned });
      s.receive(hello);
      await flush();
      await flush();
      const keys = sent.length ? await finishClientHandshake(nodeCrypto, state, sent[0].payload) : null;
      s.remoteClosed('test over');
      return { keys, closes };
    }

    it('is served by the exit holding that key', async () => {
      const exitKey = await nodeCrypto.x25519Keypair();
      const { keys, closes } = await run(exitKey, exitKey.publicKey);
      expect(keys).not.toBeInstanceOf(ZksError);
      expect(keys).not.toBeNull();
      expect(closes).toEqual([]);
    });

    it('refuses an exit with the room secret but another static key (an impostor)', async () => {
      const [real, impostor] = [await nodeCrypto.x25519Keypair(), await nodeCrypto.x25519Keypair()];
      const { keys } = await run(impostor, real.publicKey);
      expect(keys).toBeInstanceOf(ZksError);
      expect((keys as ZksError).code).toBe('ZKS_ERR_AUTH');
      expect((keys as ZksError).message).toMatch(/pinned exit key/);
    });

    it('an exit without a static key closes the session saying so', async () => {
      const { keys, closes } = await run(null, (await nodeCrypto.x25519Keypair()).publicKey);
      expect(keys).toBeNull();
      expect(closes).toEqual([{ sid: 6, reason: expect.stringMatching(/pins an exit key.*--exit-key/) }]);
    });

    it('a client that pins nothing is still served by an exit with a static key', async () => {
      const { keys } = await run(await nodeCrypto.x25519Keypair(), undefined as unknown as Uint8Array);
      expect(keys).not.toBeInstanceOf(ZksError);
      expect(keys).not.toBeNull();
    });
  });
});
