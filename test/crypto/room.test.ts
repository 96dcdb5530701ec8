// Room secrets and the exit proof (src/crypto/room.ts): a room secret must be keygen-strength (issue 14: the room
// id is a fast hash of it, so a weak secret could be cracked offline from the id alone), and only the holder of
// the secret can answer a room challenge.
import { describe, expect, it } from 'vitest';
import { generateKey, parseRoomSecret } from '../../src/cli/args';
import { encodeBase64Url } from '../../src/crypto/bytes';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import { deriveRoomKeys, proveExit, roomIdOf, tunnelClaimVerifier, tunnelRoomSecret, verifyExitProof } from '../../src/crypto/room';
import { ZksError } from '../../src/errors/zks-error';
import vector from '../vectors/room.json';
import { BACKENDS, h, hex } from './helpers';

const WEAK = [
  'correct horse battery staple', // a passphrase
  'exit-peer-test-room-secret-0001', // 16+ characters, accepted before
  'some-other-room-secret-000',
  'A'.repeat(43), // the right format, no randomness
  encodeBase64Url(new Uint8Array(32).map((_, i) => i % 8)), // a repeating pattern
  encodeBase64Url(new Uint8Array(16).fill(7)), // 128 bits of zeros-and-sevens, and too short
  generateKey().slice(0, 42), // one character short
  '',
];

describe('weak room secrets are refused', () => {
  it.each(WEAK.map((s) => [s] as const))('deriveRoomKeys(%j) → ZKS_ERR_CONFIG naming `zks keygen`', async (secret) => {
    const err = await deriveRoomKeys(nodeCrypto, secret).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_CONFIG');
    expect((err as ZksError).message).toMatch(/32 random bytes .*`zks keygen`/);
  });

  it('the CLI refuses them the same way, and takes what `zks keygen` prints (trimmed)', () => {
    for (const secret of WEAK.filter(Boolean)) expect(() => parseRoomSecret(secret)).toThrow(/`zks keygen`/);
    expect(() => parseRoomSecret(undefined)).toThrow(/no room/);
    const good = generateKey();
    expect(parseRoomSecret(` ${good}\n`)).toBe(good);
  });

  it('a keygen secret gives the same room on both backends; another secret another room', async () => {
    const secret = generateKey();
    const [a, b, other] = await Promise.all([deriveRoomKeys(nodeCrypto, secret), deriveRoomKeys(webCrypto, secret), deriveRoomKeys(nodeCrypto, generateKey())]);
    expect(a.roomId).toEqual(b.roomId);
    expect(a.psk).toEqual(b.psk);
    expect(a.exitKey).toEqual(b.exitKey);
    expect(a.roomId.length).toBe(16);
    expect(a.roomId).not.toEqual(other.roomId);
    expect(await roomIdOf(nodeCrypto, a.exitKey.publicKey)).toEqual(a.roomId);
  });
});

describe('exit proof', () => {
  it('verifies for the secret holder on a fresh challenge, and for nothing else', async () => {
    const keys = await deriveRoomKeys(nodeCrypto, generateKey());
    const other = await deriveRoomKeys(nodeCrypto, generateKey());
    const challenge = await webCrypto.x25519Keypair();
    const instance = nodeCrypto.randomBytes(16);
    const mac = await proveExit(nodeCrypto, keys, challenge.publicKey, instance);
    const proof = { exitPublic: keys.exitKey.publicKey, instance, mac };
    expect(await verifyExitProof(webCrypto, keys.roomId, challenge, proof)).toBe(true);

    const refused = async (roomId: Uint8Array, c: typeof challenge, p: typeof proof) => {
      const r = await verifyExitProof(webCrypto, roomId, c, p);
      expect(r).toBeInstanceOf(ZksError);
      return (r as ZksError).message;
    };
    // Replayed on another challenge, or with another instance, or for another room.
    expect(await refused(keys.roomId, await webCrypto.x25519Keypair(), proof)).toMatch(/MAC does not verify/);
    expect(await refused(keys.roomId, challenge, { ...proof, instance: nodeCrypto.randomBytes(16) })).toMatch(/MAC/);
    expect(await refused(other.roomId, challenge, proof)).toMatch(/not the one this room id commits to/);
    // Another secret's key and a valid proof with it: the room id does not commit to that key.
    const otherMac = await proveExit(nodeCrypto, other, challenge.publicKey, instance);
    expect(await refused(keys.roomId, challenge, { exitPublic: other.exitKey.publicKey, instance, mac: otherMac })).toMatch(/commits to/);
    expect(await refused(keys.roomId, challenge, { ...proof, mac: mac.subarray(1) })).toMatch(/length/);
  });
});

describe.each(BACKENDS)('room.json vector (independent @noble implementation of §11), %s backend', (_name, b) => {
  const { inputs, expected } = vector;
  it('derives psk, the exit key and the room id', async () => {
    const keys = await deriveRoomKeys(b, inputs.secret);
    expect(hex(keys.psk)).toBe(expected.psk);
    expect(hex(keys.exitKey.privateKey)).toBe(expected.exitPrivate);
    expect(hex(keys.exitKey.publicKey)).toBe(expected.exitPublic);
    expect(hex(keys.roomId)).toBe(expected.roomId);
  });

  it('proves and verifies the exit for the fixed challenge', async () => {
    const keys = await deriveRoomKeys(b, inputs.secret);
    const mac = await proveExit(b, keys, h(expected.challengePublic), h(inputs.instance));
    expect(hex(mac)).toBe(expected.proofMac);
    const challenge = { privateKey: h(inputs.challengePrivate), publicKey: h(expected.challengePublic) };
    const proof = { exitPublic: h(expected.exitPublic), instance: h(inputs.instance), mac: h(expected.proofMac) };
    expect(await verifyExitProof(b, h(expected.roomId), challenge, proof)).toBe(true);
  });

  it('derives a named TCP tunnel\'s room secret (§11.6); refuses ids that are not a DNS label', async () => {
    expect(await tunnelRoomSecret(b, inputs.secret, expected.tunnelId)).toBe(expected.tunnelRoomSecret);
    expect(await tunnelRoomSecret(b, inputs.secret, 'web')).not.toBe(expected.tunnelRoomSecret);
    for (const bad of ['', 'SSH', '-ssh', 'ssh-', 'a_b', 'a.b', 'x'.repeat(64)]) {
      await expect(tunnelRoomSecret(b, inputs.secret, bad), bad).rejects.toThrow(/tunnel id/);
    }
  });

  it('derives an HTTP tunnel\'s claim verifier (§12.2), distinct from the TCP tunnel\'s room secret', async () => {
    const v = await tunnelClaimVerifier(b, inputs.secret, expected.claimId);
    expect(hex(v)).toBe(expected.claimVerifier);
    expect(hex(await tunnelClaimVerifier(b, inputs.secret, 'other'))).not.toBe(expected.claimVerifier);
    expect(hex(await b.sha256(new TextEncoder().encode(expected.basicCredentials)))).toBe(expected.basicHash);
    await expect(tunnelClaimVerifier(b, inputs.secret, 'My_App')).rejects.toThrow(/tunnel id/);
  });
});
