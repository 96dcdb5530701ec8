// Real UDP peers for the NAT tests: an echo server on loopback that records who wrote to it (the NAT's mapped
// address) and can answer a second time from another socket (another port, and another address on 127.0.0.2),
// and an Inbox that collects what the NAT hands back and lets a test wait for it (events, never time).
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import type { Target } from '../../src/protocol/address';
import type { DatagramCloseCode } from '../../src/protocol/datagram-types';

/** Resolves when `check()` holds, re-testing it each time `onChange` is poked. */
class Waiters {
  private list: Array<{ check: () => boolean; done: () => void }> = [];
  wait(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((done) => this.list.push({ check, done }));
  }
  poke(): void {
    this.list = this.list.filter((w) => (w.check() ? (w.done(), false) : true));
  }
}

const bound = (sock: Socket, host: string): Promise<void> =>
  new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () => {
      sock.off('error', reject);
      resolve();
    });
  });

export interface Received {
  from: Target;
  payload: Buffer;
}

export class UdpEcho {
  readonly received: Received[] = [];
  private readonly waiters = new Waiters();

  private constructor(
    readonly host: string,
    private readonly sock: Socket,
    /** A second socket that also answers every datagram (from another port, and address when asked). */
    private readonly other: Socket | null,
    private readonly echo: boolean,
  ) {
    sock.on('message', (payload, rinfo) => {
      this.received.push({ from: { host: rinfo.address, port: rinfo.port }, payload });
      if (this.echo) sock.send(payload, rinfo.port, rinfo.address);
      this.other?.send(Buffer.concat([Buffer.from('other:'), payload]), rinfo.port, rinfo.address);
      this.waiters.poke();
    });
  }

  /** `alsoFrom`: an address for a second socket that answers too ('127.0.0.2' = another address, same family). */
  static async start(host: string, opts: { alsoFrom?: string; echo?: boolean } = {}): Promise<UdpEcho> {
    const family = host.includes(':') ? 'udp6' : 'udp4';
    const sock = createSocket(family);
    await bound(sock, host);
    let other: Socket | null = null;
    if (opts.alsoFrom) {
      other = createSocket(family);
      await bound(other, opts.alsoFrom);
    }
    return new UdpEcho(host, sock, other, opts.echo ?? true);
  }

  get port(): number {
    return this.sock.address().port;
  }

  get target(): Target {
    return { host: this.host, port: this.port };
  }

  get otherSource(): Target | null {
    if (!this.other) return null;
    const a = this.other.address();
    return { host: a.address, port: a.port };
  }

  untilReceived(n: number): Promise<void> {
    return this.waiters.wait(() => this.received.length >= n);
  }

  close(): void {
    this.sock.close();
    this.other?.close();
  }
}

export interface Delivered {
  flow: number;
  source: Target;
  payload: Buffer;
}
export interface Closed {
  flow: number;
  code: DatagramCloseCode;
  message: string;
}

/** The NAT's deliver/closed callbacks, recorded. */
export class Inbox {
  readonly delivered: Delivered[] = [];
  readonly closed: Closed[] = [];
  private readonly waiters = new Waiters();

  readonly deliver = (flow: number, source: Target, payload: Uint8Array): void => {
    this.delivered.push({ flow, source, payload: Buffer.from(payload) });
    this.waiters.poke();
  };
  readonly close = (flow: number, code: DatagramCloseCode, message: string): void => {
    this.closed.push({ flow, code, message });
    this.waiters.poke();
  };

  until(check: () => boolean): Promise<void> {
    return this.waiters.wait(check);
  }
  untilDelivered(n: number): Promise<void> {
    return this.waiters.wait(() => this.delivered.length >= n);
  }
  untilClosed(n: number): Promise<void> {
    return this.waiters.wait(() => this.closed.length >= n);
  }
  texts(flow?: number): string[] {
    return this.delivered.filter((d) => flow === undefined || d.flow === flow).map((d) => d.payload.toString());
  }
}

/** Open file descriptors of this process (sockets included). */
export const openFds = (): number => readdirSync('/proc/self/fd').length;

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
