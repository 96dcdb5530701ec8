// The resume exchange (docs/PROTOCOL.md §11.7): the first record each way of a handshake whose HELLO carries the
// RESUMES_SESSION flag, sealed under that handshake's fresh keys (record number 0, no sequence header). After a
// RESUMED the WebSocket carries the old session's records; after a REFUSED the exit ends the new session.
//   RESUME   kind 1 | ticket[16] | proof[32] | next u64    client → exit
//   RESUMED  kind 2 | proof[32] | next u64                 exit → client
//   REFUSED  kind 3 | reason (UTF-8, ≤ 200 bytes)          exit → client
// `next`: the number of the next sequenced record the sender expects from the other side (all below it arrived).
// Runtime-agnostic: no node:* imports.

import { ZksError } from '../errors/zks-error';
import { truncateUtf8 } from './utf8';

/**
 * Direct mode that can be resumed (§11.8): the client upgrades `/session/<name>`, `name` being 16 random bytes in
 * unpadded base64url, and resumes there; the Worker keeps the session in the object of that name.
 */
export const SESSION_PATH_PREFIX = '/session/';
export const SESSION_NAME_BYTES = 16;
const SESSION_NAME = /^[A-Za-z0-9_-]{22}$/;

/** A well-formed session name (what follows SESSION_PATH_PREFIX). */
export function isSessionName(text: string): boolean {
  return SESSION_NAME.test(text) && 'AQgw'.includes(text[21]); // 16 bytes: the last character carries 2 bits
}

export const RESUME_TICKET_BYTES = 16;
export const RESUME_PROOF_BYTES = 32;
export const MAX_RESUME_REASON_BYTES = 200;

export const ResumeKind = { RESUME: 1, RESUMED: 2, REFUSED: 3 } as const;

export type ResumeMessage =
  | { kind: typeof ResumeKind.RESUME; ticket: Uint8Array; proof: Uint8Array; next: number }
  | { kind: typeof ResumeKind.RESUMED; proof: Uint8Array; next: number }
  | { kind: typeof ResumeKind.REFUSED; reason: string };

const RESUME_SIZE = 1 + RESUME_TICKET_BYTES + RESUME_PROOF_BYTES + 8;
const RESUMED_SIZE = 1 + RESUME_PROOF_BYTES + 8;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function writeNext(out: Uint8Array, off: number, next: number): void {
  if (!Number.isSafeInteger(next) || next < 0) throw new ZksError('ZKS_ERR_HANDSHAKE', `resume record number ${next} is not a safe integer`);
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  v.setUint32(off, Math.floor(next / 2 ** 32));
  v.setUint32(off + 4, next >>> 0);
}

function readNext(m: Uint8Array, off: number): number {
  const v = new DataView(m.buffer, m.byteOffset, m.length);
  const hi = v.getUint32(off);
  return hi >= 2 ** 21 ? -1 : hi * 2 ** 32 + v.getUint32(off + 4); // above 2^53 - 1: no sender got there
}

export function encodeResumeMessage(m: ResumeMessage): Uint8Array {
  switch (m.kind) {
    case ResumeKind.RESUME: {
      if (m.ticket.length !== RESUME_TICKET_BYTES || m.proof.length !== RESUME_PROOF_BYTES) throw new ZksError('ZKS_ERR_HANDSHAKE', 'RESUME needs a 16-byte ticket and a 32-byte proof');
      const out = new Uint8Array(RESUME_SIZE);
      out[0] = m.kind;
      out.set(m.ticket, 1);
      out.set(m.proof, 1 + RESUME_TICKET_BYTES);
      writeNext(out, 1 + RESUME_TICKET_BYTES + RESUME_PROOF_BYTES, m.next);
      return out;
    }
    case ResumeKind.RESUMED: {
      if (m.proof.length !== RESUME_PROOF_BYTES) throw new ZksError('ZKS_ERR_HANDSHAKE', 'RESUMED needs a 32-byte proof');
      const out = new Uint8Array(RESUMED_SIZE);
      out[0] = m.kind;
      out.set(m.proof, 1);
      writeNext(out, 1 + RESUME_PROOF_BYTES, m.next);
      return out;
    }
    case ResumeKind.REFUSED: {
      const reason = utf8.encode(truncateUtf8(m.reason, MAX_RESUME_REASON_BYTES));
      const out = new Uint8Array(1 + reason.length);
      out[0] = m.kind;
      out.set(reason, 1);
      return out;
    }
  }
}

/** A resume record's plaintext, or ZKS_ERR_HANDSHAKE saying what is wrong with it (never throws). */
export function decodeResumeMessage(m: Uint8Array): ResumeMessage | ZksError {
  const bad = (why: string) => new ZksError('ZKS_ERR_HANDSHAKE', `bad resume message: ${why}`);
  if (m.length === 0) return bad('empty');
  switch (m[0]) {
    case ResumeKind.RESUME: {
      if (m.length !== RESUME_SIZE) return bad(`RESUME of ${m.length} bytes (expected ${RESUME_SIZE})`);
      const next = readNext(m, 1 + RESUME_TICKET_BYTES + RESUME_PROOF_BYTES);
      if (next < 0) return bad('record number beyond 2^53 - 1');
      return { kind: ResumeKind.RESUME, ticket: m.slice(1, 1 + RESUME_TICKET_BYTES), proof: m.slice(1 + RESUME_TICKET_BYTES, 1 + RESUME_TICKET_BYTES + RESUME_PROOF_BYTES), next };
    }
    case ResumeKind.RESUMED: {
      if (m.length !== RESUMED_SIZE) return bad(`RESUMED of ${m.length} bytes (expected ${RESUMED_SIZE})`);
      const next = readNext(m, 1 + RESUME_PROOF_BYTES);
      if (next < 0) return bad('record number beyond 2^53 - 1');
      return { kind: ResumeKind.RESUMED, proof: m.slice(1, 1 + RESUME_PROOF_BYTES), next };
    }
    case ResumeKind.REFUSED: {
      if (m.length - 1 > MAX_RESUME_REASON_BYTES) return bad(`REFUSED reason over ${MAX_RESUME_REASON_BYTES} bytes`);
      try {
        return { kind: ResumeKind.REFUSED, reason: utf8Strict.decode(m.subarray(1)) };
      } catch {
        return bad('REFUSED reason is not UTF-8');
      }
    }
    default:
      return bad(`kind ${m[0]} is unknown`);
  }
}
