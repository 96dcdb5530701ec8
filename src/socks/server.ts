// The local proxy front: SOCKS5 (RFC 1928 + RFC 1929) and HTTP CONNECT (RFC 9110 §9.3.6) on one port, told
// apart by the first byte. One ClientSession per TCP connection; it owns the socket until connect() settles and,
// on success, hands it to the caller (paused, with any early data as `head`). A SOCKS5 UDP ASSOCIATE becomes a
// UdpAssociation (udp-association.ts) tied to its connection. Invariants: every socket has an 'error' listener
// from accept to close; bad input closes only that socket, after the reply its protocol expects.

import { ZksError } from '../errors/zks-error';
import { createServer, type Server, type Socket } from 'node:net';
import { CONNECT_RESULT_NAMES, ConnectResult, type ConnectResultCode } from '../protocol/constants';
import { formatTarget, type Target } from '../protocol/address';
import type { DatagramFlow } from '../protocol/datagram-types';
import { credentialsMatch } from './credentials';
import { HttpConnectParser, parseBasicCredentials } from './http-connect-parser';
import {
  Socks5Command, Socks5Method, Socks5Parser, Socks5Reply, encodeAuthStatus, encodeErrorReply,
  encodeMethodSelection, encodeReply, type Socks5Event,
} from './socks5-parser';
import { newSocksUdpStats, UdpAssociation, type SocksUdpStats, type UdpAssociationHost } from './udp-association';

export { checkListenPolicy } from './listen-policy';

export type ConnectOutcome =
  /** head = bytes the client sent after its request (may be empty); after attach the socket belongs to the caller. */
  | { ok: true; attach(socket: Socket, head: Uint8Array): void }
  | { ok: false; code: ConnectResultCode; message: string };

export type UdpAssociateOutcome =
  /** The association relays through `flow` and owns it from here on (closes it when the association ends). */
  | { ok: true; flow: DatagramFlow }
  | { ok: false; code: ConnectResultCode; message: string };

export interface ProxyRequestInfo {
  protocol: 'socks5' | 'http-connect';
  remoteAddress: string;
  remotePort: number;
  username?: string;
  /** Aborted when the client hangs up before connect() settled; connect() may use it to give up early. */
  signal?: AbortSignal;
}

export interface ProxyServerOptions {
  /**
   * Called once per accepted request; the reply goes to the client only after it settles. A rejected promise counts
   * as GENERAL_FAILURE. attach() receives the socket paused (call resume() or pipe()); it is called even when the
   * client left meanwhile (socket.destroyed is then true) so the caller can release what it opened.
   */
  connect(target: Target, info: ProxyRequestInfo): Promise<ConnectOutcome>;
  /** When set, SOCKS5 requires RFC 1929 and HTTP CONNECT requires Proxy-Authorization: Basic. */
  auth?: { username: string; password: string };
  /**
   * SOCKS5 UDP ASSOCIATE (RFC 1928 §7): the datagram flow one association relays through. Without it the
   * command is answered 0x07 (not supported). Authentication applies as for CONNECT.
   */
  udpAssociate?(info: ProxyRequestInfo): Promise<UdpAssociateOutcome>;
  /** Counters of all UDP associations (`zks status`); one is created when not given. */
  udpStats?: SocksUdpStats;
  /** Default 10 000: a client that does not finish its request in time is closed. */
  handshakeTimeoutMs?: number;
  /** One line per notable event (bad client input, auth failure). Never receives passwords. */
  log?(line: string): void;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** After an error reply we half-close and wait this long for the client to close before destroying the socket. */
const LINGER_MS = 2_000;
const SOCKS4_VERSION = 0x04;
/** SOCKS4 "request rejected or failed" reply, so SOCKS4 clients report an error instead of hanging. */
const SOCKS4_REJECT = Uint8Array.of(0x00, 0x5b, 0, 0, 0, 0, 0, 0);
const CONNECTION_ESTABLISHED = new TextEncoder().encode('HTTP/1.1 200 Connection Established\r\n\r\n');

const REASONS: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 405: 'Method Not Allowed', 407: 'Proxy Authentication Required',
  408: 'Request Timeout', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export function createProxyServer(options: ProxyServerOptions): Server {
  const udpHost = associationHost(options, options.udpStats ?? newSocksUdpStats());
  return createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    new ClientSession(socket, options, udpHost).start();
  });
}

/** A complete HTTP/1.1 error response with a short text body; the connection closes after it. */
export function httpErrorResponse(status: number, body: string, extraHeaders: string[] = []): Uint8Array {
  const bodyBytes = new TextEncoder().encode(body.endsWith('\n') ? body : `${body}\n`);
  const head = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`,
    ...extraHeaders,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${bodyBytes.length}`,
    'Connection: close',
    '', '',
  ].join('\r\n');
  const headBytes = new TextEncoder().encode(head);
  const out = new Uint8Array(headBytes.length + bodyBytes.length);
  out.set(headBytes);
  out.set(bodyBytes, headBytes.length);
  return out;
}

/** ConnectResult → HTTP status for a failed CONNECT (RFC 9110 §15.6.3 / §15.6.5). */
export function httpStatusFor(code: ConnectResultCode): number {
  if (code === ConnectResult.FORBIDDEN) return 403;
  if (code === ConnectResult.TIMEOUT) return 504;
  return 502;
}

function ignoreError(): void {}
function discard(): void {}

/** One log line about a client; client-controlled text (host names, usernames) must not smuggle terminal escapes or fake lines into the log. */
function logFor(out: ((line: string) => void) | undefined, remoteAddress: string, remotePort: number, line: string): void {
  if (!out) return;
  const who = remoteAddress.includes(':') ? `[${remoteAddress}]` : remoteAddress;
  const safe = line.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  out(`proxy client ${who}:${remotePort}: ${safe}`);
}

/**
 * What every association of one server shares (udp-association.ts): a reopen gets a fresh request info whose
 * signal never aborts, since the association, not a pending request, follows the connection from then on.
 */
function associationHost(opts: ProxyServerOptions, stats: SocksUdpStats): UdpAssociationHost {
  const { udpAssociate, log: out } = opts;
  return {
    stats,
    reopen: udpAssociate
      ? async (client) => {
        const { remoteAddress, remotePort, username } = client;
        const again: ProxyRequestInfo = { protocol: 'socks5', remoteAddress, remotePort, signal: new AbortController().signal };
        if (username !== undefined) again.username = username;
        const next = await udpAssociate(again);
        return next.ok ? next.flow : new ZksError('ZKS_ERR_UDP', next.message);
      }
      : null,
    log: (client, line) => logFor(out, client.remoteAddress, client.remotePort, line),
  };
}

class ClientSession {
  private readonly remoteAddress: string;
  private readonly remotePort: number;
  private readonly timer: NodeJS.Timeout;
  private socks: Socks5Parser | null = null;
  private http: HttpConnectParser | null = null;
  private username: string | undefined;
  private reading = true;
  private closing = false;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ProxyServerOptions,
    private readonly udpHost: UdpAssociationHost,
  ) {
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.remotePort = socket.remotePort ?? 0;
    this.timer = setTimeout(this.onTimeout, opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
  }

  start(): void {
    this.socket.on('error', this.onError);
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.once('close', this.onClose);
  }

  private log(line: string): void {
    logFor(this.opts.log, this.remoteAddress, this.remotePort, line);
  }

  private readonly onClose = (): void => clearTimeout(this.timer);

  private readonly onError = (err: Error): void => {
    // Resets and broken pipes concern this client only; the 'close' that follows cleans up.
    if (this.reading) this.log(`socket error during handshake: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
  };

  // The server is allowHalfOpen (tunnels honour half-close); a client that half-closes before finishing its
  // request will never finish it.
  private readonly onEnd = (): void => {
    if (!this.reading) return;
    this.stopReading();
    this.socket.destroy();
  };

  private readonly onTimeout = (): void => {
    this.log('handshake not completed in time, closing');
    this.stopReading();
    this.socket.destroy();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (!this.reading || chunk.length === 0) return;
    if (this.socks) return this.onSocks(this.socks.feed(chunk));
    if (this.http) return this.onHttp(this.http.feed(chunk));
    const first = chunk[0];
    if (first === 0x05) {
      this.socks = new Socks5Parser({ authRequired: this.opts.auth !== undefined });
      return this.onSocks(this.socks.feed(chunk));
    }
    if ((first >= 0x41 && first <= 0x5a) || (first >= 0x61 && first <= 0x7a)) {
      this.http = new HttpConnectParser();
      return this.onHttp(this.http.feed(chunk));
    }
    if (first === SOCKS4_VERSION) {
      this.log('SOCKS4 is not supported, use SOCKS5 (e.g. curl --socks5-hostname)');
      return this.closeWith(SOCKS4_REJECT);
    }
    this.log(`unrecognised protocol (first byte 0x${first.toString(16).padStart(2, '0')}); expected SOCKS5 or HTTP CONNECT`);
    this.stopReading();
    this.socket.destroy();
  };

  private stopReading(): void {
    this.reading = false;
    clearTimeout(this.timer);
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose); // the timer is cleared: nothing holds the session for it any more
  }

  /** Sends `reply` (if any), half-closes, and destroys the socket if the client has not closed within LINGER_MS. */
  private closeWith(reply?: Uint8Array): void {
    if (this.closing) return;
    this.closing = true;
    this.stopReading();
    if (this.socket.destroyed) return;
    // Keep reading (and discarding) so unread input does not make the kernel answer with RST and lose our reply.
    this.socket.on('data', discard);
    this.socket.resume();
    if (reply) this.socket.end(reply);
    else this.socket.end();
    const linger = setTimeout(() => this.socket.destroy(), LINGER_MS);
    this.socket.once('close', () => clearTimeout(linger));
  }

  // ---- SOCKS5 (RFC 1928 §3-6, RFC 1929 §2) ----

  private onSocks(event: Socks5Event): void {
    const parser = this.socks!;
    for (;;) {
      switch (event.type) {
        case 'need-more':
          return;
        case 'greeting': // RFC 1928 §3
          if (event.method === Socks5Method.NO_ACCEPTABLE) {
            const why = this.opts.auth ? 'username/password authentication is required' : 'no supported method';
            this.log(`SOCKS5 greeting offered methods [${event.methods.join(', ')}]; ${why}`);
            return this.closeWith(encodeMethodSelection(Socks5Method.NO_ACCEPTABLE));
          }
          this.socket.write(encodeMethodSelection(event.method));
          break;
        case 'auth': { // RFC 1929 §2: a failed status is followed by closing the connection
          const name = new TextDecoder().decode(event.username);
          const ok = !this.opts.auth || credentialsMatch(this.opts.auth, event.username, event.password);
          event.password.fill(0);
          if (!ok) {
            this.log(`SOCKS5 authentication failed for user ${JSON.stringify(name)}`);
            return this.closeWith(encodeAuthStatus(false));
          }
          if (this.opts.auth) this.username = name;
          this.socket.write(encodeAuthStatus(true));
          break;
        }
        case 'request': // RFC 1928 §4
          if (event.command === Socks5Command.UDP_ASSOCIATE && this.opts.udpAssociate) {
            this.stopReading();
            void this.associate(event.target);
            return;
          }
          if (event.command !== Socks5Command.CONNECT) {
            const what = event.command === Socks5Command.BIND ? 'BIND' : 'UDP ASSOCIATE';
            this.log(`SOCKS5 ${what} is not supported`);
            return this.closeWith(encodeReply(Socks5Reply.COMMAND_NOT_SUPPORTED));
          }
          this.stopReading();
          void this.connect(event.target, 'socks5', parser.takeRest());
          return;
        case 'error':
          this.log(`bad SOCKS5 ${event.error.phase}: ${event.error.message}`);
          return this.closeWith(encodeErrorReply(event.error));
      }
      event = parser.next();
    }
  }

  // ---- SOCKS5 UDP ASSOCIATE (RFC 1928 §7) ----

  private async associate(hint: Target): Promise<void> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    this.socket.once('close', onClose);
    const info: ProxyRequestInfo = {
      protocol: 'socks5', remoteAddress: this.remoteAddress, remotePort: this.remotePort, signal: abort.signal,
    };
    if (this.username !== undefined) info.username = this.username;
    let outcome: UdpAssociateOutcome;
    try {
      outcome = await this.opts.udpAssociate!(info);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log(`UDP ASSOCIATE threw: ${message}`);
      outcome = { ok: false, code: ConnectResult.GENERAL_FAILURE, message };
    }
    this.socket.off('close', onClose);
    if (!outcome.ok) {
      this.log(`UDP ASSOCIATE refused: ${outcome.message}`);
      return this.closeWith(encodeReply(outcome.code));
    }
    const flow = outcome.flow;
    if (this.socket.destroyed) return flow.close();
    const association = await UdpAssociation.open({
      control: this.socket, flow, hintPort: hint.port, username: this.username, host: this.udpHost,
    });
    if (!(association instanceof UdpAssociation)) {
      flow.close();
      this.log(`UDP ASSOCIATE failed: ${association.message}`);
      return this.closeWith(encodeReply(Socks5Reply.GENERAL_FAILURE));
    }
    // Once the reply is with the kernel, the connection can leave its net.Socket (a lighter native watch holds it).
    if (!this.socket.destroyed) this.socket.write(encodeReply(Socks5Reply.SUCCEEDED, association.bound), () => association.holdControlNatively());
    // The association owns the connection now: its close ends the association (and the other way round).
    this.socket.off('error', this.onError);
    this.socket.on('error', ignoreError);
    association.start();
  }

  // ---- HTTP CONNECT (RFC 9110 §9.3.6, RFC 7617 / RFC 9110 §11.7 proxy authentication) ----

  private onHttp(event: ReturnType<HttpConnectParser['feed']>): void {
    if (event.type === 'need-more') return;
    if (event.type === 'error') {
      const { status, message } = event.error;
      this.log(`bad HTTP proxy request (${status}): ${message}`);
      return this.closeWith(httpErrorResponse(status, message, status === 405 ? ['Allow: CONNECT'] : []));
    }
    if (this.opts.auth) {
      const creds = parseBasicCredentials(event.proxyAuthorization);
      const ok = creds !== null && credentialsMatch(this.opts.auth, creds.username, creds.password);
      if (creds) creds.password.fill(0);
      if (!ok) {
        const name = creds ? JSON.stringify(new TextDecoder().decode(creds.username)) : null;
        this.log(name ? `HTTP proxy authentication failed for user ${name}` : 'HTTP proxy request without credentials');
        return this.closeWith(httpErrorResponse(407, 'proxy authentication required', ['Proxy-Authenticate: Basic realm="zks"']));
      }
      this.username = this.opts.auth.username;
    }
    this.stopReading();
    void this.connect(event.target, 'http-connect', this.http!.takeRest());
  }

  // ---- both protocols: ask the caller, answer, hand over ----

  private async connect(target: Target, protocol: ProxyRequestInfo['protocol'], head: Uint8Array): Promise<void> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    this.socket.once('close', onClose);
    const info: ProxyRequestInfo = {
      protocol, remoteAddress: this.remoteAddress, remotePort: this.remotePort, signal: abort.signal,
    };
    if (this.username !== undefined) info.username = this.username;
    let outcome: ConnectOutcome;
    try {
      outcome = await this.opts.connect(target, info);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log(`connect to ${formatTarget(target)} threw: ${message}`);
      outcome = { ok: false, code: ConnectResult.GENERAL_FAILURE, message };
    }
    this.socket.off('close', onClose);
    if (!outcome.ok) {
      if (this.socket.destroyed) return;
      const reason = CONNECT_RESULT_NAMES[outcome.code] ?? 'general failure';
      if (protocol === 'socks5') return this.closeWith(encodeReply(outcome.code));
      const body = `CONNECT ${formatTarget(target)} failed: ${reason}${outcome.message ? ` (${outcome.message})` : ''}`;
      return this.closeWith(httpErrorResponse(httpStatusFor(outcome.code), body));
    }
    if (!this.socket.destroyed) {
      this.socket.write(protocol === 'socks5' ? encodeReply(Socks5Reply.SUCCEEDED) : CONNECTION_ESTABLISHED);
    }
    // Hand over: our listeners go, a silent 'error' listener stays so a caller that forgets one cannot crash us.
    this.socket.off('error', this.onError);
    this.socket.on('error', ignoreError);
    outcome.attach(this.socket, head);
  }
}
