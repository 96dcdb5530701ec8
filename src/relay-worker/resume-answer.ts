// The Worker's half of resuming a direct-mode session (PROTOCOL.md §11.7, §11.8): a HELLO flagged RESUMES_SESSION is
// answered like any other, then its first record, RESUME{ticket, proof, next}, is read under the fresh keys. Whoever
// holds the session checks the proof and answers RESUMED{proof, next}, or REFUSED with why (a Worker that keeps no
// session, or not this one, refuses at once): the client then gives up at once instead of retrying for its grace period.

import { respondToHello, type VerifiedHello } from '../crypto/handshake';
import { createChannel, type RecordSealer } from '../crypto/record';
import { checkResumeProof, resumeProof } from '../crypto/resume';
import { webCrypto } from '../crypto/webcrypto';
import { CloseCode } from '../protocol/constants';
import { decodeResumeMessage, encodeResumeMessage, ResumeKind } from '../protocol/resume-wire';
import { ZksError } from '../errors/zks-error';
import { WORKER_SUITES } from './accept-link';
import type { SocketInbox } from './socket-inbox';

/** A resuming handshake whose RESUME arrived: the session it names decides. */
export interface PendingResume {
  readonly ticket: Uint8Array;
  /** The client has every record below this one. */
  readonly next: number;
  /** The client's proof holds under the session's resume secret (and binds this very handshake). */
  proves(secret: Uint8Array): Promise<boolean>;
  /** RESUMED{our proof, receivedNext}, sealed: send it, and from then on the socket carries the session's records. */
  resumed(secret: Uint8Array, receivedNext: number): Promise<Uint8Array>;
  /** REFUSED{reason} to the client, then the socket is closed. */
  refuse(reason: string): Promise<void>;
}

/**
 * Answers the resuming `verified` on `inbox.ws` and reads its RESUME; null when it failed on the way (no shared
 * suite, no record within `timeoutMs`, a record that does not open): the socket is closed then, with why.
 */
export async function answerResumeHello(
  inbox: SocketInbox, psk: Uint8Array, verified: VerifiedHello, timeoutMs: number,
  /** Nothing here can be resumed: REFUSED with this reason right after the REPLY, without waiting for the RESUME. */
  refuseAtOnce?: string,
): Promise<PendingResume | null> {
  const ws = inbox.ws;
  if (!verified.offeredSuites.some((s) => WORKER_SUITES.includes(s))) {
    ws.close(CloseCode.HANDSHAKE_FAILED, `ZKS_ERR_HANDSHAKE: this relay offers only ${WORKER_SUITES.join(', ')}`);
    return null;
  }
  const { reply, keys } = await respondToHello(webCrypto, psk, verified, { supportedSuites: WORKER_SUITES, capabilities: true, sequencedRecords: true });
  const { sealer, opener } = await createChannel(webCrypto, keys);
  keys.sendKey.fill(0);
  keys.recvKey.fill(0);
  const sessionId = keys.sessionId;
  ws.send(reply);
  if (refuseAtOnce !== undefined) {
    await sendRefused(ws, sealer, refuseAtOnce); // the client reads it after sending its RESUME: no record waited for
    return null;
  }
  const record = await inbox.next(timeoutMs);
  if (!record) {
    ws.close(CloseCode.HANDSHAKE_FAILED, 'ZKS_ERR_TIMEOUT');
    return null;
  }
  let plain: Uint8Array;
  try {
    plain = await opener.open(record);
  } catch {
    ws.close(CloseCode.DECRYPT_FAILED, 'ZKS_ERR_DECRYPT');
    return null;
  }
  const refuse = (reason: string) => sendRefused(ws, sealer, reason);
  const m = decodeResumeMessage(plain);
  if (m instanceof ZksError || m.kind !== ResumeKind.RESUME) {
    await refuse(m instanceof ZksError ? m.message : `expected RESUME, got kind ${m.kind}`);
    return null;
  }
  return {
    ticket: m.ticket,
    next: m.next,
    proves: (secret) => checkResumeProof(webCrypto, secret, 'client', sessionId, m.proof),
    resumed: async (secret, receivedNext) =>
      sealer.seal(encodeResumeMessage({ kind: ResumeKind.RESUMED, proof: await resumeProof(webCrypto, secret, 'exit', sessionId), next: receivedNext })),
    refuse,
  };
}

async function sendRefused(ws: WebSocket, sealer: RecordSealer, reason: string): Promise<void> {
  try {
    ws.send(await sealer.seal(encodeResumeMessage({ kind: ResumeKind.REFUSED, reason })));
    ws.close(1000, 'resume refused');
  } catch {
    // the client is already gone
  }
}
