// The exit's half of a resume (PROTOCOL.md §11.7): a handshake flagged RESUMES_SESSION carries, as its first record
// under its fresh keys, RESUME{ticket, proof, next}. The ticket finds the session, the proof (HMAC of the new
// handshake's session id under the session's resume secret) shows the client holds it and cannot be replayed on
// another handshake. Answered RESUMED{proof, next} — then the sid carries the old session's records — or REFUSED.

import { nodeCrypto } from '../crypto/node';
import type { RecordOpener, RecordSealer } from '../crypto/record';
import { checkResumeProof, resumeProof } from '../crypto/resume';
import { ZksError } from '../errors/zks-error';
import { decodeResumeMessage, encodeResumeMessage, ResumeKind } from '../protocol/resume-wire';

/** The fresh keys of a resuming handshake, used for the exchange only. */
export interface ResumeHandshake {
  sealer: RecordSealer;
  opener: RecordOpener;
  sessionId: Uint8Array;
}

/** The handshake's own session (session.ts), waiting for its RESUME. */
export interface ResumingSession {
  readonly sid: number;
  readonly isClosed: boolean;
  failResume(reason: string): void;
  handOver(): void;
}

/** A session that may be resumed (session.ts). */
export interface ResumableExitSession<H> {
  readonly resumable: boolean;
  readonly resumeSecret: Uint8Array | null;
  readonly receivedNext: number;
  resumeOn(sid: number, host: H, peerNext: number): void;
}

/** The room connection both sessions talk through (session.ts's SessionHost). */
export interface ResumeHost<S> {
  send(sid: number, payload: Uint8Array): void;
  readonly resumes?: { find(ticket: Uint8Array): S | null } | null;
}

/** Answers the RESUME record `record` that arrived on `temp`'s sid; `temp` hands its sid over or fails. */
export async function answerResume<H extends ResumeHost<S>, S extends ResumableExitSession<H>>(
  temp: ResumingSession,
  host: H,
  h: ResumeHandshake,
  record: Uint8Array,
): Promise<void> {
  let plain: Uint8Array;
  try {
    plain = await h.opener.open(record);
  } catch {
    return temp.failResume('the resume record did not open under the new keys');
  }
  const m = decodeResumeMessage(plain);
  if (m instanceof ZksError) return temp.failResume(m.message);
  if (m.kind !== ResumeKind.RESUME) return temp.failResume(`expected RESUME, got kind ${m.kind}`);
  const refuse = async (why: string) => {
    // Said to the client under the new keys (it learns why), then the new session ends.
    host.send(temp.sid, await h.sealer.seal(encodeResumeMessage({ kind: ResumeKind.REFUSED, reason: why })));
    temp.failResume(`resume refused: ${why}`);
  };
  const old = host.resumes?.find(m.ticket) ?? null;
  if (!old || !old.resumable || !old.resumeSecret) return refuse('no such session here (it ended, or this exit peer restarted)');
  const secret = old.resumeSecret;
  if (!(await checkResumeProof(nodeCrypto, secret, 'client', h.sessionId, m.proof))) return refuse('the resume proof is wrong');
  const proof = await resumeProof(nodeCrypto, secret, 'exit', h.sessionId);
  const sealed = await h.sealer.seal(encodeResumeMessage({ kind: ResumeKind.RESUMED, proof, next: old.receivedNext }));
  if (!old.resumable) return refuse('the session ended meanwhile');
  if (temp.isClosed) return; // the room or the client gave up while we computed
  // RESUMED first, then (same turn, same sid) the old session's records: nothing can come between them.
  host.send(temp.sid, sealed);
  temp.handOver();
  old.resumeOn(temp.sid, host, m.next);
}
