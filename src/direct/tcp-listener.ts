// The exit peer's listening side of direct TCP paths (PROTOCOL.md §3.7): one server per bind address and port in
// this process, shared by every session's attempt and open only while at least one attempt waits — no open port for
// strangers between attempts. An incoming connection must send a PATH_HELLO made with the key and nonce of a
// waiting attempt within HELLO_TIMEOUT_MS; it is then answered PATH_WELCOME and handed to that attempt (which stops
// waiting). Anything else is closed without a byte in reply, and touches no session. Strangers cannot crowd the
// real client out: a full table of unverified connections makes room by closing its oldest, and one source address
// holds at most a few. Without a configured port the listener reopens on the port it had before, when it can: the
// client (zksd) then lets one address . port through its kill switch, not one per attempt.

import { createServer, type Server, type Socket } from 'node:net';
import { helloClientNonce, helloValid, pathWelcome, PATH_HELLO_MAGIC, PATH_HELLO_SIZE } from './tcp-hello';

/** A connection has this long to send its PATH_HELLO (the client sends it as soon as it is connected). */
export const HELLO_TIMEOUT_MS = 3_000;
/** Connections still without a valid hello, per listener; one more closes the oldest. */
export const MAX_UNVERIFIED = 16;
/** Connections still without a valid hello from one source address; more from it are closed at once. */
export const MAX_UNVERIFIED_PER_SOURCE = 4;

export interface WaitingAttempt {
  key: Uint8Array;
  nonce: Uint8Array;
  /** The verified connection (PATH_WELCOME already written) and the bytes that came after the hello. */
  connected(socket: Socket, rest: Uint8Array): void;
}

export interface TcpListenerStats {
  /** Connections closed because their first bytes were no valid hello for a waiting attempt. */
  refused: number;
}

export const tcpListenerStats: TcpListenerStats = { refused: 0 };

class SharedListener {
  readonly waiting = new Set<WaitingAttempt>();
  private readonly unverified = new Set<Socket>();
  private readonly server: Server;
  readonly ready: Promise<number>;

  /** `port` 0: the port this host's listener had last time if it is free, else any. */
  constructor(private readonly host: string, port: number, private readonly onEmpty: () => void) {
    this.server = createServer((socket) => this.accept(socket));
    const previous = port === 0 ? lastPort.get(host) : undefined;
    this.ready = this.listen(previous ?? port).catch((err: unknown) => (previous !== undefined ? this.listen(0) : Promise.reject(err)));
    this.ready.then((p) => port === 0 && lastPort.set(host, p), () => this.onEmpty());
  }

  private listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.host, port, exclusive: true }, () => {
        this.server.off('error', reject);
        this.server.on('error', () => undefined); // after listen: accept errors (EMFILE) are the peer's problem
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  remove(w: WaitingAttempt): void {
    if (!this.waiting.delete(w) || this.waiting.size > 0) return;
    this.server.close();
    for (const s of this.unverified) s.destroy();
    this.onEmpty();
  }

  private accept(socket: Socket): void {
    const source = socket.remoteAddress;
    if (this.waiting.size === 0 || [...this.unverified].filter((s) => s.remoteAddress === source).length >= MAX_UNVERIFIED_PER_SOURCE) {
      tcpListenerStats.refused++;
      return void socket.destroy();
    }
    if (this.unverified.size >= MAX_UNVERIFIED) {
      const oldest = this.unverified.values().next().value!;
      this.unverified.delete(oldest);
      tcpListenerStats.refused++;
      oldest.destroy();
    }
    this.unverified.add(socket);
    const chunks: Buffer[] = [];
    let have = 0;
    const done = () => {
      clearTimeout(timer);
      this.unverified.delete(socket);
      socket.off('data', onData);
    };
    const refuse = () => {
      done();
      tcpListenerStats.refused++;
      socket.destroy();
    };
    const timer = setTimeout(refuse, HELLO_TIMEOUT_MS);
    timer.unref();
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < PATH_HELLO_SIZE) {
        // A stranger's protocol is refused as soon as its first bytes differ from the magic.
        const head = Buffer.concat(chunks).subarray(0, PATH_HELLO_MAGIC.length);
        if (!head.equals(Buffer.from(PATH_HELLO_MAGIC.subarray(0, head.length)))) refuse();
        return;
      }
      const all = Buffer.concat(chunks);
      const hello = all.subarray(0, PATH_HELLO_SIZE);
      const clientNonce = helloClientNonce(hello);
      const w = clientNonce && [...this.waiting].find((x) => helloValid(x.key, x.nonce, hello));
      if (!clientNonce || !w) return refuse();
      done();
      socket.pause(); // the attempt starts reading (nothing may be lost in between)
      this.remove(w); // one connection per attempt
      socket.write(pathWelcome(w.key, w.nonce, clientNonce));
      w.connected(socket, all.subarray(PATH_HELLO_SIZE));
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
    socket.on('close', done);
  }
}

const listeners = new Map<string, SharedListener>();
/** The port each host's listener last had when any port would do. */
const lastPort = new Map<string, number>();

/**
 * Waits for `w`'s connection on `host`:`port` (0: any free port, shared with other attempts of this process on the
 * same host); resolves to the port listened on. Call the returned `stop` when the attempt ends without one.
 */
export async function waitForTcpPath(host: string, port: number, w: WaitingAttempt): Promise<{ port: number; stop: () => void }> {
  const id = `${host}|${port}`;
  let l = listeners.get(id);
  if (!l) {
    const created: SharedListener = new SharedListener(host, port, () => {
      if (listeners.get(id) === created) listeners.delete(id);
    });
    l = created;
    listeners.set(id, l);
  }
  l.waiting.add(w);
  const owner = l;
  try {
    return { port: await owner.ready, stop: () => owner.remove(w) };
  } catch (err) {
    owner.waiting.delete(w);
    throw err;
  }
}
