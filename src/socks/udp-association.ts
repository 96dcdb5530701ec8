// One SOCKS5 UDP association (RFC 1928 §7). The relay socket is bound on the control connection's local address
// (so it is reachable wherever the client reached us), and lives exactly as long as that TCP connection: either
// closing ends both, and the DatagramFlow with them. Only datagrams from the control connection's peer IP are
// taken (and only from the port the request named, if it named one); every other datagram and every bad header is
// dropped and counted by reason, the first of each reason logged. Replies from the flow go to the client's latest
// UDP address with their source in the header. A non-zero DST.ADDR in the request does not widen the filter past
// the control connection's peer IP (it would let a client aim our relay at someone else); its port is honoured.
// The tunnel flow may end under a live association — the exit's NAT idles it out (120 s, 30 s for DNS) or refuses
// one destination: the association stays, and the client's next datagram opens a new flow (a new exit port, as a
// NAT mapping that expired would get).
// With the data path addon, the relay socket is its batched one (src/native/udp-socket.ts: replies of one turn in
// one sendmmsg, reads in batches, smaller per association) and, once the reply is sent, the control connection
// leaves its net.Socket for the addon's ConnectionWatch (src/native/connection-watch.ts); without it, node:dgram
// and the net.Socket do the same.

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { isIPv4 } from 'node:net';
import { formatTarget, parseIPv4, parseIPv6, type Target } from '../protocol/address';
import { encodeDestination, openBatchedUdpSocket, type BatchedUdpHandler, type BatchedUdpSocket } from '../native/udp-socket';
import { watchConnectionEnd, type ConnectionWatch } from '../native/connection-watch';
import type { DatagramFlow } from '../protocol/datagram-types';
import { ZksError } from '../errors/zks-error';
import { SocksUdpDrop, SocksUdpError, type SocksUdpDropReason } from './errors';
import { encodeUdpDatagram, MAX_UDP_PAYLOAD_IPV4, MAX_UDP_PAYLOAD_IPV6, parseUdpDatagram } from './udp-header';

/** Drops that are not about the header: a foreign sender, the tunnel refusing, a reply with nowhere to go. */
export const SocksUdpPolicyDrop = {
  /** Sent from another IP than the control connection's peer, or another port than the request named. */
  FOREIGN_SOURCE: 'foreign-source',
  /** The flow did not take it (queue full, flow closed, or a path that cannot carry it, e.g. direct mode). */
  TUNNEL: 'tunnel',
  /** A reply arrived before the client sent anything, so its UDP port is unknown. */
  NO_CLIENT: 'no-client',
} as const;
export type SocksUdpDropKey = SocksUdpDropReason | (typeof SocksUdpPolicyDrop)[keyof typeof SocksUdpPolicyDrop];

/** Counters of all associations of one proxy (`zks status --json`). Bytes are payload bytes, headers excluded. */
export interface SocksUdpStats {
  associations: number;
  active: number;
  datagramsUp: number;
  bytesUp: number;
  datagramsDown: number;
  bytesDown: number;
  dropped: Record<SocksUdpDropKey, number>;
}

export function newSocksUdpStats(): SocksUdpStats {
  const dropped = {} as Record<SocksUdpDropKey, number>;
  for (const k of [...Object.values(SocksUdpDrop), ...Object.values(SocksUdpPolicyDrop)]) dropped[k] = 0;
  return { associations: 0, active: 0, datagramsUp: 0, bytesUp: 0, datagramsDown: 0, bytesDown: 0, dropped };
}

/** Who asked for an association, as its proxy server's hooks need it (the association itself is one). */
export interface AssociationClient {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly username: string | undefined;
}

/**
 * What the associations of one proxy server share: the counters, the way to open the next tunnel flow and the log.
 * One object per server, so that an association keeps no closures of its own (thousands may be idle at once).
 */
export interface UdpAssociationHost {
  readonly stats: SocksUdpStats;
  /** Opens the next flow after the exit ended one; null: the association ends with its flow. */
  readonly reopen: ((client: AssociationClient) => Promise<DatagramFlow | ZksError>) | null;
  log(client: AssociationClient, line: string): void;
}

export interface UdpAssociationOptions {
  /** The TCP connection the UDP ASSOCIATE request came on. */
  control: Socket;
  flow: DatagramFlow;
  /** DST.PORT of the request: the port the client means to send from (0 when it does not know yet). */
  hintPort: number;
  /** The RFC 1929 user name, when the server asked for one. */
  username: string | undefined;
  host: UdpAssociationHost;
}

/** '::ffff:127.0.0.1' → '127.0.0.1', so a dual-stack listener compares and binds IPv4 as IPv4. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function ignoreSendError(): void {}

/** Events of every batched relay socket (the association comes as the context). */
const BATCHED: BatchedUdpHandler<UdpAssociation> = {
  received: (a, payload, host, port) => a.fromClient(payload, host, port),
  sendFailed: () => {}, // a lost reply (EMSGSIZE, ENOBUFS) is UDP's usual loss, not the association's end
  failed: (a, err) => a.close(`relay socket error: ${err.message}`),
};

/** Datagrams held while the next tunnel flow opens. */
const MAX_WAITING = 16;

// State is kept flat (no option bags, wrappers or per-instance closures but the callbacks the flow and the
// control connection need): thousands may sit idle, and the SOCKS5 UDP row of `npm run bench` counts what each
// one costs.
export class UdpAssociation implements AssociationClient {
  /** The control connection: its net.Socket, or once holdControlNatively() took it over, the addon's watch. */
  private control: Socket | null;
  private watch: ConnectionWatch | null = null;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private readonly host: UdpAssociationHost;
  readonly username: string | undefined;
  private readonly hintPort: number;
  private readonly clientIp: string;
  /** The largest reply payload the client's UDP can take (IPv4 or IPv6). */
  private readonly maxReply: number;
  /** Where replies go: the request's port if it named one, else the source of the latest accepted datagram. */
  private clientAddress: string | null = null;
  private clientPort = 0;
  /** The client's address encoded for the batched socket (made at the first reply after it changed). */
  private clientDest: Uint8Array | null = null;
  /** The relay socket: the addon's batched one, or node:dgram without the addon. */
  private batched: BatchedUdpSocket<UdpAssociation> | null = null;
  private dgram: UdpSocket | null = null;
  /** BND.ADDR / BND.PORT for the reply: the control connection's local address and the relay socket's port. */
  private readonly boundHost: string;
  private boundPort = 0;
  /** Drop reasons already logged (made at the first drop: most associations never drop anything). */
  private logged: Set<SocksUdpDropKey> | null = null;
  private started = false;
  private closed = false;
  /** The tunnel flow; null after the exit ended it, until the next datagram opens another. */
  private flow: DatagramFlow | null;
  /** Datagrams that arrived while the next flow is being opened (a few; more are dropped as TUNNEL). */
  private waiting: Array<{ target: Target; payload: Uint8Array }> | null = null;

  private constructor(opts: UdpAssociationOptions, boundHost: string) {
    this.control = opts.control;
    this.host = opts.host;
    this.username = opts.username;
    this.hintPort = opts.hintPort;
    this.flow = opts.flow;
    this.boundHost = boundHost;
    this.remoteAddress = opts.control.remoteAddress ?? 'unknown';
    this.remotePort = opts.control.remotePort ?? 0;
    this.clientIp = unmapped(opts.control.remoteAddress ?? '');
    this.maxReply = isIPv4(this.clientIp) ? MAX_UDP_PAYLOAD_IPV4 : MAX_UDP_PAYLOAD_IPV6;
    if (opts.hintPort !== 0) {
      this.clientAddress = this.clientIp;
      this.clientPort = opts.hintPort;
    }
  }

  /** Binds the relay socket next to the control connection; a ZksError (ZKS_ERR_UDP) when that fails. */
  static async open(opts: UdpAssociationOptions): Promise<UdpAssociation | ZksError> {
    const local = unmapped(opts.control.localAddress ?? '');
    if (local === '') return new ZksError('ZKS_ERR_UDP', 'the control connection has no local address');
    const a = new UdpAssociation(opts, local);
    const cannotBind = (err: Error) => new ZksError('ZKS_ERR_UDP', `cannot bind a UDP relay on ${local}: ${err.message}`);
    try {
      a.batched = openBatchedUdpSocket(!isIPv4(local), BATCHED, a, { address: local });
      if (a.batched) {
        a.boundPort = a.batched.port;
        return a;
      }
    } catch (err) {
      return cannotBind(err as Error);
    }
    const udp = createSocket({ type: isIPv4(local) ? 'udp4' : 'udp6' });
    const bound = await new Promise<number | ZksError>((resolve) => {
      udp.once('error', (err) => resolve(cannotBind(err)));
      udp.bind(0, local, () => resolve(udp.address().port));
    });
    if (bound instanceof ZksError) {
      udp.close();
      return bound;
    }
    a.dgram = udp;
    a.boundPort = bound;
    return a;
  }

  get bound(): Target {
    return { host: this.boundHost, port: this.boundPort };
  }

  /** Starts relaying; from here on the association ends with its control connection (or ends it). */
  start(): void {
    const { control, host } = this;
    if (!control) return;
    this.started = true;
    host.stats.associations++;
    host.stats.active++;
    const udp = this.dgram;
    if (udp) {
      udp.removeAllListeners('error');
      udp.on('error', (err) => this.close(`relay socket error: ${err.message}`));
      udp.on('message', (msg: Buffer, from: RemoteInfo) => this.fromClient(msg, from.address, from.port));
    }
    if (this.flow) {
      this.attach(this.flow);
      if (this.flow.closed) this.onFlowClosed(null); // ended while the relay socket was being bound
    }
    // RFC 1928 §7: the association terminates when its TCP connection does. Anything the client still sends
    // there means nothing: resume() without a 'data' listener reads and discards it, so the connection's end is
    // seen.
    control.on('end', this.onControlGone);
    control.on('close', this.onControlGone);
    control.resume();
    if (control.destroyed || control.readableEnded) this.close(null);
  }

  /**
   * Moves the control connection out of its net.Socket into the addon's ConnectionWatch (src/native/
   * connection-watch.ts), which costs a fraction of the memory: called once the SUCCEEDED reply has been handed to
   * the kernel. Without the addon the socket stays, with the same meaning.
   */
  holdControlNatively(): void {
    const control = this.control;
    if (this.closed || !control || control.destroyed) return;
    control.off('end', this.onControlGone);
    control.off('close', this.onControlGone);
    const watch = watchConnectionEnd(control, this.onControlGone);
    if (!watch) {
      control.on('end', this.onControlGone);
      control.on('close', this.onControlGone);
      return;
    }
    this.watch = watch;
    this.control = null;
  }

  private attach(flow: DatagramFlow): void {
    this.flow = flow;
    flow.onDatagram = this.onTunnelDatagram;
    flow.onClose = this.onFlowClosed;
  }

  /** The current flow ended (a replaced one has its callbacks cleared first, so it cannot call this). */
  private readonly onFlowClosed = (err: ZksError | null): void => {
    const flow = this.flow;
    if (flow === null) return;
    flow.onDatagram = null;
    flow.onClose = null;
    this.flow = null;
    if (!this.host.reopen) return this.close(err ? `tunnel flow closed: ${err.message}` : 'the tunnel flow ended');
    this.log(`UDP association ${this.describe()}: tunnel flow ended (${err ? err.message : 'idle'}); the next datagram opens a new one`);
  };

  /** Sends through the flow, opening the next one first when the exit ended the last. */
  private forward(target: Target, payload: Uint8Array): void {
    const { stats, reopen } = this.host;
    if (this.flow) {
      if (!this.flow.send(target, payload)) return this.drop(SocksUdpPolicyDrop.TUNNEL, `the tunnel did not take a datagram to ${formatTarget(target)}`);
      stats.datagramsUp++;
      stats.bytesUp += payload.length;
      return;
    }
    if (!reopen) return this.drop(SocksUdpPolicyDrop.TUNNEL, 'the tunnel flow has ended');
    if (this.waiting) {
      if (this.waiting.length >= MAX_WAITING) return this.drop(SocksUdpPolicyDrop.TUNNEL, 'datagrams while a new tunnel flow opens');
      this.waiting.push({ target, payload: payload.slice() });
      return;
    }
    this.waiting = [{ target, payload: payload.slice() }];
    void reopen(this).then((flow) => {
      const waiting = this.waiting ?? [];
      this.waiting = null;
      if (flow instanceof ZksError) return this.close(`cannot open a new tunnel flow: ${flow.message}`);
      if (this.closed) return flow.close();
      this.attach(flow);
      for (const d of waiting) this.forward(d.target, d.payload);
    });
  }

  /** 'end' or 'close' of the control connection, or its watch's end (close() is idempotent: one serves all). */
  private readonly onControlGone = (): void => this.close(null);

  /** A datagram to the relay socket, from anyone: only the client's are relayed. */
  fromClient(msg: Uint8Array, address: string, port: number): void {
    if (this.closed || !this.started) return; // before start() the client cannot know the port: as dgram, unheard
    const { hintPort } = this;
    if (unmapped(address) !== this.clientIp || (hintPort !== 0 && port !== hintPort)) {
      const expected = hintPort !== 0 ? formatTarget({ host: this.clientIp, port: hintPort }) : this.clientIp;
      const sender = formatTarget({ host: address, port });
      return this.drop(SocksUdpPolicyDrop.FOREIGN_SOURCE, `datagram from ${sender}, expected ${expected}`);
    }
    // A plain Uint8Array view: flows see the DatagramFlow contract's type, not a Buffer (whose slice() is a view).
    const d = parseUdpDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    if (d instanceof SocksUdpError) return this.drop(d.reason, d.message);
    if (this.clientAddress !== address || this.clientPort !== port) {
      this.clientAddress = address === this.clientIp ? this.clientIp : address; // one string kept, not two equal ones
      this.clientPort = port;
      this.clientDest = null;
    }
    this.forward(d.target, d.payload);
  }

  private readonly onTunnelDatagram = (source: Target, payload: Uint8Array): void => {
    if (this.closed) return;
    const address = this.clientAddress;
    if (address === null) return this.drop(SocksUdpPolicyDrop.NO_CLIENT, `reply from ${formatTarget(source)} before the client sent anything`);
    const wire = encodeUdpDatagram(source, payload, this.maxReply);
    if (wire instanceof SocksUdpError) return this.drop(wire.reason, `reply from ${formatTarget(source)}: ${wire.message}`);
    const { stats } = this.host;
    stats.datagramsDown++;
    stats.bytesDown += payload.length;
    if (this.batched) {
      if (!this.clientDest) {
        const bytes = parseIPv4(unmapped(address)) ?? parseIPv6(address);
        if (!bytes) return;
        this.clientDest = encodeDestination(bytes, this.clientPort);
      }
      this.batched.queue(wire, this.clientDest);
    } else if (this.dgram) {
      // A callback keeps a failed send (EMSGSIZE, ENOBUFS) from becoming an 'error' that would end the association.
      this.dgram.send(wire, this.clientPort, address, ignoreSendError);
    }
  };

  private describe(): string {
    return formatTarget(this.bound);
  }

  private log(line: string): void {
    this.host.log(this, line);
  }

  private drop(key: SocksUdpDropKey, detail: string): void {
    this.host.stats.dropped[key]++;
    this.logged ??= new Set();
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log(`UDP association ${this.describe()}: dropped (${key}): ${detail} (further drops of this kind are only counted)`);
  }

  /** Ends the association: relay socket, flow and control connection. Idempotent. */
  close(reason: string | null): void {
    if (this.closed) return;
    this.closed = true;
    if (this.started) this.host.stats.active--;
    if (reason) this.log(`UDP association ${this.describe()} ended: ${reason}`);
    try {
      this.batched?.close();
      this.dgram?.close();
    } catch {
      // already closed (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing left to release
    }
    const flow = this.flow;
    this.flow = null;
    this.waiting = null;
    if (flow) {
      flow.onDatagram = null;
      flow.onClose = null;
      flow.close();
    }
    this.control?.destroy();
    this.watch?.close();
    this.watch = null;
  }
}
