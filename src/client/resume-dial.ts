// The client's half of a resume (PROTOCOL.md §11.7): a new WebSocket to the same room (or, in direct mode, to the
// same `/session/<name>` of the Worker, §11.8), a fresh handshake flagged RESUMES_SESSION, then one record each way
// under its keys — RESUME{ticket, proof, next} out, RESUMED{proof, next} back (the far end proves it holds the
// session too) or REFUSED. Resolves with the WebSocket, which from then on carries the old session's records:
// attach() hands them, and anything that already came, to the session.

import { createClientHello, encodeBase64Url, finishClientHandshake } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import { nodeCrypto } from '../crypto/node';
import { checkResumeProof, resumeProof, type ResumeKeys } from '../crypto/resume';
import { createRoomToken, RoomRole } from '../crypto/room';
import type { CipherSuite } from '../crypto/types';
import { ZksError } from '../errors/zks-error';
import { MAX_RECORD_SIZE } from '../protocol/constants';
import { decodeResumeMessage, encodeResumeMessage, ResumeKind } from '../protocol/resume-wire';
import { parseRoomControl, ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX, SID_HEADER_SIZE } from '../protocol/room-wire';
import { RelaySocket, type RelaySocketOptions } from '../link/relay-socket';

export interface ResumeDialOptions {
  /** The room URL (`{relay}/room/{id}`) or the direct-mode session's (`{relay}/session/{name}`); never logged. */
  url: string;
  relayName: string;
  /** The Worker key (room token) and the room: a fresh token per attempt. Without a room: direct mode. */
  key: Uint8Array;
  roomId?: Uint8Array;
  /** The handshake's key: the room PSK, or in direct mode the Worker key. */
  psk: Uint8Array;
  suites?: CipherSuite[];
  exitId?: Uint8Array;
  timeoutMs: number;
  lookup?: RelaySocketOptions['lookup'];
  openTcp?: RelaySocketOptions['openTcp'];
  resume: ResumeKeys;
  /** The next record number this client expects from the exit (read when RESUME is sent). */
  receivedNext(): number;
}

export interface ResumedSocket {
  readonly socket: RelaySocket;
  /** The exit has every record below this one. */
  readonly peerNext: number;
  /** From now on the session gets the socket's messages and its close (what came meanwhile first, in order). */
  attach(onMessage: (data: Buffer) => void, onClose: (why: string) => void): void;
}

/**
 * Rejects with ZKS_ERR_RESUME_REFUSED (the exit does not have the session: give up), or with another ZksError (the
 * relay or the exit could not be reached now: try again while the grace period lasts).
 */
export async function dialResume(opts: ResumeDialOptions): Promise<ResumedSocket> {
  const { hello, state } = await createClientHello(nodeCrypto, opts.psk, {
    suites: opts.suites, responderStatic: opts.exitId, capabilities: true, sequencedRecords: true, resumes: true,
  });
  // Relay mode: a room token in the upgrade, HELLO in-band to the exit; direct mode: HELLO in the upgrade.
  const protocols = opts.roomId
    ? [ROOM_SUBPROTOCOL, ROOM_TOKEN_PREFIX + encodeBase64Url(await createRoomToken(nodeCrypto, opts.key, opts.roomId, RoomRole.CLIENT))]
    : ['zks1', `zks1.${encodeBase64Url(hello)}`];
  const inbox: Buffer[] = [];
  let closedWhy: string | null = null;
  /** The socket's own close event came (closedWhy may be set earlier, by a room notice we then terminate on). */
  let closeEvent: string | null = null;
  let wake: (() => void) | null = null;
  let handlers: { onMessage(data: Buffer): void; onClose(why: string): void } | null = null;
  const socket = new RelaySocket({
    url: opts.url,
    protocols,
    relayName: opts.relayName,
    openTimeoutMs: opts.timeoutMs,
    maxPayload: MAX_RECORD_SIZE + 4096 + SID_HEADER_SIZE,
    lookup: opts.lookup,
    openTcp: opts.openTcp,
    refused: (status) => new ZksError(status === 401 ? 'ZKS_ERR_AUTH' : 'ZKS_ERR_RELAY_UNREACHABLE', `the relay answered HTTP ${status} to the resume`),
    onMessage: (data, isBinary) => {
      if (!isBinary) {
        const c = parseRoomControl(data.toString());
        closedWhy ??= c instanceof ZksError ? c.message : `relay room: ${c.t === 'error' ? c.message : c.t}`;
        socket.terminate(closedWhy);
      } else if (handlers) handlers.onMessage(data);
      else inbox.push(data);
      wake?.();
    },
    onClose: (why) => {
      if (handlers) return handlers.onClose(why);
      closedWhy ??= why;
      closeEvent = closedWhy;
      wake?.();
    },
  });
  const timer = setTimeout(() => socket.terminate(`no resume within ${opts.timeoutMs} ms`), opts.timeoutMs);
  timer.unref();
  const next = async (): Promise<Buffer> => {
    while (inbox.length === 0) {
      if (closedWhy !== null) throw new ZksError('ZKS_ERR_CONNECTION_LOST', `resume: ${closedWhy}`);
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
    return inbox.shift()!;
  };
  try {
    await socket.opened;
    if (opts.roomId) socket.send(hello);
    const keys = await finishClientHandshake(nodeCrypto, state, await next());
    if (keys instanceof ZksError) throw keys;
    const { sealer, opener } = await createChannel(nodeCrypto, keys);
    keys.sendKey.fill(0);
    keys.recvKey.fill(0);
    const proof = await resumeProof(nodeCrypto, opts.resume.secret, 'client', keys.sessionId);
    socket.send(await sealer.seal(encodeResumeMessage({ kind: ResumeKind.RESUME, ticket: opts.resume.ticket, proof, next: opts.receivedNext() })));
    let plain: Uint8Array;
    try {
      plain = await opener.open(await next());
    } catch (err) {
      if (err instanceof ZksError && err.code === 'ZKS_ERR_CONNECTION_LOST') throw err;
      throw new ZksError('ZKS_ERR_DECRYPT', 'the answer to our resume did not open');
    }
    const m = decodeResumeMessage(plain);
    if (m instanceof ZksError) throw m;
    const far = opts.roomId ? 'the exit peer' : 'the relay';
    if (m.kind === ResumeKind.REFUSED) throw new ZksError('ZKS_ERR_RESUME_REFUSED', `${far} refused to resume the session: ${m.reason}`);
    if (m.kind !== ResumeKind.RESUMED) throw new ZksError('ZKS_ERR_HANDSHAKE', `expected RESUMED, got kind ${m.kind}`);
    if (!(await checkResumeProof(nodeCrypto, opts.resume.secret, 'exit', keys.sessionId, m.proof))) {
      throw new ZksError('ZKS_ERR_RESUME_REFUSED', `${far} could not prove it holds the session`);
    }
    return {
      socket,
      peerNext: m.next,
      attach(onMessage, onClose) {
        handlers = { onMessage, onClose };
        for (const data of inbox.splice(0)) onMessage(data);
        if (closeEvent !== null) onClose(closeEvent); // else it reaches the handler when it comes, once
      },
    };
  } catch (err) {
    socket.terminate('resume failed');
    throw err instanceof ZksError ? err : new ZksError('ZKS_ERR_CONNECTION_LOST', `resume: ${(err as Error)?.message ?? String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}
