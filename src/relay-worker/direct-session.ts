// A direct-mode session kept by its ZksSession Durable Object (session-object.ts, PROTOCOL.md §11.8). It has the
// stateless Worker's link and direct streams (accept-link.ts, direct.ts), but its records are sequenced and its
// WebSocket sits behind a ResumableSocket. When the client's WebSocket is lost, the target connections stay open
// and what the session sends waits in the replay queue (its budget, then the streams' credit, stop reading the
// targets). A client that proves the session (resume-answer.ts) goes on over a new WebSocket. Not resumed within
// the grace period, or not resumable (the client did not announce Capability.RESUME): streams reset as before.

import { respondToHello, type VerifiedHello } from '../crypto/handshake';
import { createChannel } from '../crypto/record';
import { deriveResumeKeys, type ResumeKeys } from '../crypto/resume';
import { webCrypto } from '../crypto/webcrypto';
import { ResumableSocket } from '../link/resumable-socket';
import { HoldReason } from '../link/paths';
import { SecureLink } from '../link/secure-link';
import { CloseCode } from '../protocol/constants';
import { Capability } from '../protocol/datagram-types';
import { ProtocolError } from '../protocol/errors';
import { equalBytes } from '../crypto/bytes';
import { WORKER_SUITES, workerLinkOptions } from './accept-link';
import { serveDirectStreams } from './direct';
import type { RelayConfig } from './env';
import { watchIdle } from './idle';
import type { PendingResume } from './resume-answer';
import type { SocketInbox } from './socket-inbox';

export class DirectSession {
  /** The WebSocket the session uses now; null while detached (lost, waiting for its client). */
  private ws: WebSocket | null;
  private graceTimer: ReturnType<typeof setTimeout> | null = null;
  private firstRecordTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly stopIdle: () => void;
  /** Sessions resumed on a new WebSocket so far. */
  resumes = 0;

  private constructor(
    inbox: SocketInbox,
    readonly link: SecureLink,
    private readonly socket: ResumableSocket,
    private readonly keys: ResumeKeys | null,
    private readonly config: RelayConfig,
  ) {
    this.ws = inbox.ws;
    // A WebSocket gone silent (a network that dropped without a close) is a lost one too: kept for the resume.
    this.stopIdle = watchIdle(link, config, (code, reason) => this.ws?.close(code, reason), () => this.ws === null, (why) => this.lost(why));
    // As in accept-link.ts: a replayed HELLO opens a WebSocket, but only the real client seals the first record.
    this.firstRecordTimer = setTimeout(() => {
      link.socketClosed(`no record within ${config.firstRecordTimeoutMs} ms of the handshake`);
      inbox.ws.close(CloseCode.HANDSHAKE_FAILED, 'ZKS_ERR_TIMEOUT');
    }, config.firstRecordTimeoutMs);
    this.carry(inbox);
  }

  /**
   * Answers a new session's `verified` on `inbox.ws` (accepted, binary). Null when no cipher suite is shared (the
   * socket is closed then, with a reason the client may read: it proved the key).
   */
  static async start(inbox: SocketInbox, verified: VerifiedHello, config: RelayConfig, onEnd: () => void): Promise<DirectSession | null> {
    const server = inbox.ws;
    if (!verified.offeredSuites.some((s) => WORKER_SUITES.includes(s))) {
      server.close(CloseCode.HANDSHAKE_FAILED, `ZKS_ERR_HANDSHAKE: this relay offers only ${WORKER_SUITES.join(', ')}`);
      return null;
    }
    const { reply, keys } = await respondToHello(webCrypto, config.key, verified, { supportedSuites: WORKER_SUITES, capabilities: true, sequencedRecords: true });
    const { sealer, opener } = await createChannel(webCrypto, keys);
    const resumeKeys = keys.sequencedRecords && keys.capabilities ? await deriveResumeKeys(webCrypto, keys.recvKey) : null;
    keys.sendKey.fill(0);
    keys.recvKey.fill(0);
    server.send(reply);
    let session: DirectSession | null = null;
    const socket = new ResumableSocket({
      // A send on a WebSocket that is closing throws in workerd: the record stays in the replay queue either way.
      send: (d) => {
        try {
          session?.ws?.send(d);
        } catch {
          // resent after a resume, or lost with the session
        }
      },
      close: (code, reason) => {
        session?.ws?.close(code, reason);
      },
    });
    const link: SecureLink = new SecureLink(socket, sealer, opener, {
      ...workerLinkOptions(config, { onStream: serveDirectStreams(config, () => link.mux.streams.size) }, () => {
        session?.end();
        onEnd();
      }),
      sequencedRecords: keys.sequencedRecords ?? false,
      // The same bound as the link's unacknowledged data (env.ts): a kept session costs no more memory than a live one.
      replayBudget: config.linkUnackedBytes,
      peerAnnouncesCapabilities: keys.capabilities ?? false,
      capabilities: resumeKeys ? Capability.RESUME : 0,
    });
    session = new DirectSession(inbox, link, socket, resumeKeys, config);
    return session;
  }

  /** Over for good: its streams are closed (or closing). */
  get ended(): boolean {
    return this.link.isDead || this.link.mux.isClosed;
  }

  /** The client has announced that it resumes (Capability.RESUME), and the session is not over. */
  get resumable(): boolean {
    return this.keys !== null && !this.ended && ((this.link.mux.datagrams.knownPeerCapabilities ?? 0) & Capability.RESUME) !== 0;
  }

  /** A resuming handshake named a session here: it goes on over that handshake's WebSocket, or is refused with why. */
  async resume(inbox: SocketInbox, pending: PendingResume): Promise<void> {
    const keys = this.keys;
    if (!keys || !this.resumable || !equalBytes(pending.ticket, keys.ticket)) {
      return pending.refuse('no such session here (it ended, or the relay restarted)');
    }
    if (!(await pending.proves(keys.secret))) return pending.refuse('the resume proof is wrong');
    const resumed = await pending.resumed(keys.secret, this.link.receivedNext);
    if (!this.resumable) return pending.refuse('the session ended meanwhile');
    // RESUMED first, then (same turn) the session's records resent: nothing can come between them. A send that
    // fails (the new WebSocket is already gone) changes nothing: the session stays as it was.
    try {
      inbox.ws.send(resumed);
    } catch {
      return;
    }
    const old = this.ws;
    // Resumed while the old WebSocket still looked open (its loss had not reached us): it is done, and its close,
    // should it come now, is no longer news.
    if (old) {
      this.ws = null;
      this.link.mux.transportLost();
      old.close(1000, 'the session was resumed on another WebSocket');
    }
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.ws = inbox.ws;
    this.resumes++;
    if (!this.socket.attach(this.socket.first) || !this.link.resumed(pending.next)) {
      inbox.ws.close(CloseCode.PROTOCOL_ERROR, 'the session ended while it was resumed');
      return;
    }
    this.link.mux.holdSending(false, HoldReason.DETACHED);
    this.carry(inbox);
  }

  /** `inbox`'s messages are the session's records from now on; its close is the session's loss. */
  private carry(inbox: SocketInbox): void {
    const ws = inbox.ws;
    inbox.handOver({
      onMessage: (data) => {
        if (this.ws !== ws) return;
        this.stopFirstRecordTimer(); // a record that fails to open closes the link at once (4003)
        this.link.receive(data);
      },
      onText: () => {
        if (this.ws === ws) this.link.mux.close(new ProtocolError('ZKS_ERR_MALFORMED_FRAME', 'text message on a binary-only WebSocket'));
      },
      onClose: (why) => {
        if (this.ws === ws) this.lost(why);
      },
    });
  }

  /** The WebSocket is gone: a resumable session waits for its client, any other ends now. */
  private lost(why: string): void {
    this.stopFirstRecordTimer();
    if (!this.resumable) return this.link.socketClosed(why);
    if (this.ws === null) return; // detached already
    this.ws = null;
    this.socket.detach();
    // Nothing more is read from the targets until the client is back: their own TCP flow control holds them, and
    // what the lost WebSocket had queued no longer counts against the isolate's send budget.
    this.link.mux.holdSending(true, HoldReason.DETACHED);
    this.link.mux.transportLost();
    const graceMs = this.config.resumeGraceMs;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      this.link.socketClosed(`the WebSocket was lost (${why}) and the client did not resume the session within ${Math.round(graceMs / 1000)} s`);
    }, graceMs);
  }

  private stopFirstRecordTimer(): void {
    if (this.firstRecordTimer !== null) clearTimeout(this.firstRecordTimer);
    this.firstRecordTimer = null;
  }

  /** The link ended: no timer outlives it, the resume secret is wiped. */
  private end(): void {
    this.stopFirstRecordTimer();
    this.stopIdle();
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.keys?.secret.fill(0);
  }
}
