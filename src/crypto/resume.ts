// Session resumption keys (docs/PROTOCOL.md §11.7): what lets a client and its exit peer find a session again on a
// new WebSocket after the old one was lost, and prove to each other that they held it. Derived once, at the
// session's handshake, from its first client→exit record key (the record keys rotate and are wiped; this is not):
//   secret = HKDF-Expand(c2s key, "zks1 resume", 32)
//   ticket = HKDF-Expand(secret, "zks1 resume ticket", 16)        names the session; reveals nothing of the secret
//   proofs = HMAC(secret, label || sessionId of the NEW handshake) bind a resume to that handshake: replayed on
//            another one, or made without the secret, they fail.
// Runtime-agnostic (any CryptoBackend).

import { hkdfExpand } from './hkdf';
import type { CryptoBackend } from './types';
import { equalBytes } from './bytes';
import { SESSION_NAME_BYTES } from '../protocol/resume-wire';

export const RESUME_TICKET_SIZE = 16;
export const RESUME_PROOF_SIZE = 32;

const utf8 = new TextEncoder();
const INFO_SECRET = utf8.encode('zks1 resume');
const INFO_TICKET = utf8.encode('zks1 resume ticket');
const LABEL_CLIENT = utf8.encode('zks1 resume client');
const LABEL_EXIT = utf8.encode('zks1 resume exit');
const LABEL_SESSION_NAME = utf8.encode('zks1 session name');

export interface ResumeKeys {
  /** 32 bytes; kept for the session's lifetime (plus the grace period), wiped with it. */
  readonly secret: Uint8Array;
  /** 16 bytes naming the session at the exit peer. */
  readonly ticket: Uint8Array;
}

/** From the session's first client→exit record key (SessionKeys.sendKey at the client, recvKey at the exit). */
export async function deriveResumeKeys(b: CryptoBackend, clientToExitKey: Uint8Array): Promise<ResumeKeys> {
  const secret = await hkdfExpand(b, clientToExitKey, INFO_SECRET, 32);
  return { secret, ticket: await hkdfExpand(b, secret, INFO_TICKET, RESUME_TICKET_SIZE) };
}

/** The proof `who` sends in the resume exchange of the new handshake whose SessionKeys.sessionId is `sessionId`. */
export function resumeProof(b: CryptoBackend, secret: Uint8Array, who: 'client' | 'exit', sessionId: Uint8Array): Promise<Uint8Array> {
  const label = who === 'client' ? LABEL_CLIENT : LABEL_EXIT;
  const data = new Uint8Array(label.length + sessionId.length);
  data.set(label, 0);
  data.set(sessionId, label.length);
  return b.hmacSha256(secret, data);
}

/** Constant-time check of a proof received from `who`. */
export async function checkResumeProof(b: CryptoBackend, secret: Uint8Array, who: 'client' | 'exit', sessionId: Uint8Array, proof: Uint8Array): Promise<boolean> {
  return proof.length === RESUME_PROOF_SIZE && equalBytes(await resumeProof(b, secret, who, sessionId), proof);
}

/**
 * The name a direct-mode session is kept under (`/session/<name>`, PROTOCOL.md §11.8): bound to the HELLO that
 * opens it, so a replayed HELLO reaches that one object (whose name is taken) and cannot open one under any name.
 *   name = HMAC(key, "zks1 session name" || HELLO)[0..16]
 */
export async function sessionName(b: CryptoBackend, key: Uint8Array, hello: Uint8Array): Promise<Uint8Array> {
  const data = new Uint8Array(LABEL_SESSION_NAME.length + hello.length);
  data.set(LABEL_SESSION_NAME, 0);
  data.set(hello, LABEL_SESSION_NAME.length);
  return (await b.hmacSha256(key, data)).slice(0, SESSION_NAME_BYTES);
}
