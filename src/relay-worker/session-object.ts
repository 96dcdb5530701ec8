// ZksSession: one Durable Object per direct-mode session that asked to be kept (`/session/<name>`, PROTOCOL.md
// §11.8; only while ZKS_DIRECT_RESUME is on). Every request of one object runs in the same I/O context, so the
// target connections a session opened while serving one WebSocket are still usable from the request that resumes
// it; open connect() sockets keep the object in memory meanwhile (docs/design/resume.md §6). It never hibernates
// while it holds a session and is billed for that time; a deploy or a runtime update still ends it (the client then
// hears REFUSED and resets its streams). The Worker checked the key proof before routing here; it is checked again,
// as nothing reaches an object but through the Worker, but a second look costs one HMAC.

import { DurableObject } from 'cloudflare:workers';
import { verifyClientHello } from '../crypto/handshake';
import { webCrypto } from '../crypto/webcrypto';
import { ZksError } from '../errors/zks-error';
import { CloseCode } from '../protocol/constants';
import { DirectSession } from './direct-session';
import { loadConfig, type Env } from './env';
import { answerResumeHello } from './resume-answer';
import { SocketInbox } from './socket-inbox';
import { HELLO_PREFIX, refuse, SUBPROTOCOL, tokenFromHeader } from './upgrade';

/** What an object that keeps no session (any more) answers a resume. */
const NO_SUCH_SESSION = 'no such session here (it ended, or the relay restarted)';

export class ZksSession extends DurableObject<Env> {
  /** The session this object keeps (at most one: its name is bound to the HELLO that opened it). */
  private session: DirectSession | null = null;
  /** A first HELLO is being answered: the name is taken from then on. */
  private starting = false;

  override async fetch(request: Request): Promise<Response> {
    const config = loadConfig(this.env);
    if (!config || !config.directResume) return refuse();
    const hello = tokenFromHeader(request.headers.get('Sec-WebSocket-Protocol'), HELLO_PREFIX);
    const verified = hello ? await verifyClientHello(webCrypto, config.key, hello) : null;
    if (!verified || verified instanceof ZksError) return refuse();

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    server.accept();
    (server as unknown as { binaryType: string }).binaryType = 'arraybuffer';
    const inbox = new SocketInbox(server);
    const live = this.session !== null && !this.session.ended ? this.session : null;
    if (verified.resumesSession) {
      // Nothing kept: REFUSED at once (a replayed resuming HELLO sent to fresh names costs each object one turn).
      void answerResumeHello(inbox, config.key, verified, config.firstRecordTimeoutMs, live ? undefined : NO_SUCH_SESSION).then(async (pending) => {
        if (!pending) return;
        if (!live) return pending.refuse(NO_SUCH_SESSION);
        await live.resume(inbox, pending);
      }).catch((err: unknown) => {
        console.error('zks relay: resume failed:', (err as Error).message);
        server.close(CloseCode.PROTOCOL_ERROR, 'resume failed');
      });
    } else if (live || this.starting) {
      // A replay of the HELLO that opened it (the name is bound to it): one session per object.
      server.close(CloseCode.HANDSHAKE_FAILED, 'ZKS_ERR_HANDSHAKE: this session name is taken');
    } else {
      this.starting = true;
      try {
        const session = await DirectSession.start(inbox, verified, config, () => {
          if (this.session === session) this.session = null;
        });
        this.session = session;
      } finally {
        this.starting = false;
      }
    }
    return new Response(null, { status: 101, webSocket: client, headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } });
  }
}
