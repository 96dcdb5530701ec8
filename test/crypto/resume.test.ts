// Session resume (PROTOCOL.md §11.7): the keys and proofs against an independent @noble vector (resume.json, both
// crypto backends), the resume records' codec against the same vector, and any bytes given to the decoder: a value
// or a ZKS_ERR_HANDSHAKE, never an exception (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkResumeProof, deriveResumeKeys, resumeProof } from '../../src/crypto/resume';
import { decodeResumeMessage, encodeResumeMessage, ResumeKind, type ResumeMessage } from '../../src/protocol/resume-wire';
import { ZksError } from '../../src/errors/zks-error';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import vector from '../vectors/resume.json';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const BACKENDS = [['node', nodeCrypto], ['webcrypto', webCrypto]] as const;

describe.each(BACKENDS)('resume.json vector (independent @noble implementation of §11.7), %s backend', (_name, b) => {
  const { inputs, expected } = vector;
  it('derives the secret and ticket, makes and checks both proofs', async () => {
    const keys = await deriveResumeKeys(b, h(inputs.c2sKey));
    expect(hex(keys.secret)).toBe(expected.secret);
    expect(hex(keys.ticket)).toBe(expected.ticket);
    const sid = h(inputs.newSessionId);
    expect(hex(await resumeProof(b, keys.secret, 'client', sid))).toBe(expected.clientProof);
    expect(hex(await resumeProof(b, keys.secret, 'exit', sid))).toBe(expected.exitProof);
    expect(await checkResumeProof(b, keys.secret, 'client', sid, h(expected.clientProof))).toBe(true);
    // Bound to the side and to the new handshake: the exit's proof is no client proof, another session id fails.
    expect(await checkResumeProof(b, keys.secret, 'client', sid, h(expected.exitProof))).toBe(false);
    expect(await checkResumeProof(b, keys.secret, 'client', new Uint8Array(32), h(expected.clientProof))).toBe(false);
    expect(await checkResumeProof(b, keys.secret, 'client', sid, h(expected.clientProof).subarray(1))).toBe(false);
  });
});

describe('resume records', () => {
  const { inputs, expected } = vector;
  const resume: ResumeMessage = { kind: ResumeKind.RESUME, ticket: h(expected.ticket), proof: h(expected.clientProof), next: inputs.clientNext };
  const resumed: ResumeMessage = { kind: ResumeKind.RESUMED, proof: h(expected.exitProof), next: inputs.exitNext };
  const refused: ResumeMessage = { kind: ResumeKind.REFUSED, reason: inputs.reason };

  it('encode to the vector and decode back', () => {
    for (const [m, bytes] of [[resume, expected.resume], [resumed, expected.resumed], [refused, expected.refused]] as const) {
      expect(hex(encodeResumeMessage(m))).toBe(bytes);
      expect(decodeResumeMessage(h(bytes))).toEqual(m);
    }
  });

  it('refuses wrong sizes, unknown kinds, numbers beyond 2^53 - 1 and reasons that are not UTF-8', () => {
    const bad = (bytes: Uint8Array, why: RegExp) => {
      const r = decodeResumeMessage(bytes);
      expect(r).toBeInstanceOf(ZksError);
      expect((r as ZksError).code).toBe('ZKS_ERR_HANDSHAKE');
      expect((r as ZksError).message).toMatch(why);
    };
    bad(new Uint8Array(0), /empty/);
    bad(h(expected.resume).subarray(0, 56), /RESUME of 56 bytes/);
    bad(h(`${expected.resumed}00`), /RESUMED of 42 bytes/);
    bad(h('09'), /kind 9/);
    const huge = h(expected.resumed);
    huge.fill(0xff, 33);
    bad(huge, /2\^53/);
    bad(h('03ff'), /not UTF-8/);
    bad(new Uint8Array(202).fill(0x61).fill(3, 0, 1), /over 200 bytes/);
    expect(() => encodeResumeMessage({ ...resume, ticket: new Uint8Array(15) })).toThrow(/16-byte ticket/);
    expect(() => encodeResumeMessage({ ...resumed, next: -1 })).toThrow(/safe integer/);
  });

  it('any bytes: a message or ZKS_ERR_HANDSHAKE; every message round-trips', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const m = decodeResumeMessage(bytes);
      if (m instanceof ZksError) expect(m.code).toBe('ZKS_ERR_HANDSHAKE');
      else expect(decodeResumeMessage(encodeResumeMessage(m))).toEqual(m);
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.maxSafeNat(), (ticket, proof, next) => {
      const m: ResumeMessage = { kind: ResumeKind.RESUME, ticket, proof, next };
      expect(decodeResumeMessage(encodeResumeMessage(m))).toEqual(m);
    }));
  });
});
