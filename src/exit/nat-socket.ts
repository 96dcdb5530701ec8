// The UDP sockets of the exit's NAT flows (udp-nat.ts), one interface over two implementations: the data path
// addon's batched sockets (src/native/udp-socket.ts: the datagrams of one turn in one sendmmsg, runs to one
// destination as UDP GSO, reads in batches) when it is built, else node:dgram. Each socket is bound to an
// ephemeral port on the wildcard address (IPv6: v6-only) and asks for NAT_RECEIVE_BUFFER. Sends take a literal
// address of the socket's family; failures come back as events, never as exceptions. One NatSockets per NAT holds
// the listeners every socket shares, so an idle flow's socket costs no closures of its own.

import { createSocket, Socket, type RemoteInfo } from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../protocol/address';
import {
  encodeDestination, errnoCode, openBatchedUdpSocket, type BatchedUdpHandler, type BatchedUdpSocket,
} from '../native/udp-socket';

/**
 * SO_RCVBUF asked for each flow's socket. The default (208 KiB, ~100 datagrams) overflowed at 500 Mbit/s whenever
 * the exit was off the CPU for ~4 ms (11 % of an iperf3 -R stream lost); with 2 MiB, one 3-s run of eight lost
 * 1.6 % and another 0.3 %, all of that one counted as the exit namespace's UDP RcvbufErrors; 4 MiB (the kernel
 * doubles it for its bookkeeping: ~70 ms of a 500 Mbit/s stream) lost nothing in the runs since. Only a limit:
 * an idle socket holds nothing. The kernel caps it at net.core.rmem_max (often 208 KiB: raise it on busy exits, see README).
 */
export const NAT_RECEIVE_BUFFER = 4 * 1024 * 1024;

export interface NatSocketEvents<C> {
  /** A datagram from anyone (the NAT filters nothing: endpoint-independent filtering). */
  received(ctx: C, payload: Uint8Array, host: string, port: number): void;
  /** `count` datagrams to `address`:`port` were lost (errno name: EHOSTUNREACH, EMSGSIZE, EAGAIN: dropped...). */
  sendFailed(ctx: C, address: string, port: number, code: string, count: number): void;
  /** The socket itself failed (an error event, a broken fd); `closed` says whether it is gone. */
  failed(ctx: C, code: string, closed: boolean): void;
}

export interface NatSocket {
  /** Queues or sends one datagram; the payload must stay unchanged until sent. */
  send(payload: Uint8Array, address: string, port: number): void;
  readonly closed: boolean;
  /** Idempotent. */
  close(): void;
}

/** dgram's bind/send resolve their address through this; we only ever pass literals, so it answers at once. */
const literalLookup = (
  address: string,
  _options: LookupOneOptions,
  done: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void => done(null, address, address.includes(':') ? 6 : 4);

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException | null)?.code ?? 'EUNKNOWN';

class BatchedNatSocket<C> implements NatSocket {
  /** The last destination, encoded once for the addon. */
  private destAddress = '';
  private destPort = -1;
  private dest: Uint8Array | null = null;

  constructor(
    private readonly sock: BatchedUdpSocket<C>,
    private readonly v6: boolean,
    private readonly events: NatSocketEvents<C>,
    private readonly ctx: C,
  ) {}

  get closed(): boolean {
    return this.sock.closed;
  }

  send(payload: Uint8Array, address: string, port: number): void {
    if (this.dest === null || this.destPort !== port || this.destAddress !== address) {
      const bytes = this.v6 ? parseIPv6(address) : parseIPv4(address);
      if (!bytes || port <= 0 || port > 0xffff) return this.events.sendFailed(this.ctx, address, port, 'EINVAL', 1); // as dgram refuses it
      this.dest = encodeDestination(bytes, port);
      this.destAddress = address;
      this.destPort = port;
    }
    this.sock.queue(payload, this.dest);
  }

  close(): void {
    this.sock.close();
  }
}

class DgramNatSocket<C> implements NatSocket {
  closed = false;

  constructor(
    private readonly sock: Socket,
    private readonly events: NatSocketEvents<C>,
    readonly ctx: C,
  ) {}

  send(payload: Uint8Array, address: string, port: number): void {
    try {
      this.sock.send(payload, port, address, (err) => {
        if (err) this.events.sendFailed(this.ctx, address, port, errnoOf(err), 1);
      });
    } catch (err) {
      // dgram validates synchronously (port 0, a closed socket): the datagram is lost like any other.
      this.events.sendFailed(this.ctx, address, port, errnoOf(err), 1);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sock.close();
    } catch {
      // already closed (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing left to free
    }
  }
}

export class NatSockets<C> {
  private readonly batched: BatchedUdpHandler<C>;
  /** Each dgram socket's wrapper, so every socket shares the two listeners below. */
  private readonly owner = new WeakMap<Socket, DgramNatSocket<C>>();
  /** Socket listeners: EventEmitter calls them with the socket as `this`. */
  private readonly onMessage: (this: Socket, msg: Buffer, rinfo: RemoteInfo) => void;
  private readonly onError: (this: Socket, err: Error) => void;

  /** `kind` 'dgram' always uses node:dgram (tests of the fallback); 'batched' uses the addon when it is built. */
  constructor(
    private readonly events: NatSocketEvents<C>,
    private readonly kind: 'batched' | 'dgram' = 'batched',
  ) {
    this.batched = {
      received: (ctx, payload, host, port) => events.received(ctx, payload, host, port),
      sendFailed: (ctx, f) => events.sendFailed(ctx, f.address.length === 4 ? formatIPv4(f.address) : formatIPv6(f.address), f.port, f.code, f.count),
      failed: (ctx, err) => events.failed(ctx, errnoCode(err), true),
    };
    const owner = this.owner;
    this.onMessage = function (msg, rinfo) {
      const s = owner.get(this);
      const zone = rinfo.address.indexOf('%'); // link-local sources carry a zone we do not forward
      if (s) events.received(s.ctx, msg, zone < 0 ? rinfo.address : rinfo.address.slice(0, zone), rinfo.port);
    };
    this.onError = function (err) {
      // Receive errors (rare: ENOMEM...): the socket keeps working or the flow idles out.
      const s = owner.get(this);
      if (s) events.failed(s.ctx, errnoOf(err), false);
    };
  }

  /** A bound socket; throws the system's error (with `code`: EMFILE, ENFILE, EAFNOSUPPORT...). */
  open(v6: boolean, ctx: C): NatSocket {
    const batched = this.kind === 'dgram' ? null : openBatchedUdpSocket(v6, this.batched, ctx, { receiveBuffer: NAT_RECEIVE_BUFFER });
    if (batched) return new BatchedNatSocket(batched, v6, this.events, ctx);
    let bindError: unknown = null;
    let sock: Socket | null = null;
    try {
      sock = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: literalLookup, recvBufferSize: NAT_RECEIVE_BUFFER });
      sock.once('error', (err) => (bindError = err));
      sock.bind(0); // synchronous with a literal lookup: an error (EMFILE, EAFNOSUPPORT) has been emitted by now
    } catch (err) {
      bindError = err;
    }
    if (bindError !== null || sock === null) {
      try {
        sock?.close();
      } catch {
        // never bound: nothing to free
      }
      throw bindError;
    }
    sock.removeAllListeners('error');
    const s = new DgramNatSocket(sock, this.events, ctx);
    this.owner.set(sock, s);
    sock.on('error', this.onError);
    sock.on('message', this.onMessage);
    sock.unref(); // the session keeps the process alive, not its flows
    return s;
  }
}
