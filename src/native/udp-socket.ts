// Batched UDP sockets for the exit's NAT (the data path addon's UdpSocket, addon/udp.cc): datagrams queued in one
// turn of the event loop leave in one sendmmsg() — runs to one destination as UDP GSO messages — and reads come
// in batches of up to 64 per callback. node:dgram costs a system call and a JS callback per datagram, which at
// 50 000 datagrams/s was half a core of the exit peer. Optional like the rest of the addon: openBatchedUdpSocket()
// returns null without it and callers keep node:dgram.
//
// The socket holds no datagram past send(): queue() keeps the payload (the caller must not change it) until the
// microtask that sends the turn's queue; when the kernel's send buffer is full (EAGAIN) the queue waits for the
// socket to become writable, up to MAX_QUEUED datagrams, beyond which new ones are dropped and reported as EAGAIN.
import { constants } from 'node:os';
import { datapathAddon, type NativeUdpSocket } from './datapath';

/** A datagram that failed: its destination and the errno name (EHOSTUNREACH, EMSGSIZE, EAGAIN: dropped...). */
export interface UdpSendFailure {
  address: Uint8Array;
  port: number;
  code: string;
  count: number;
}

export interface BatchedUdpHandler<C> {
  /** Datagrams read in one batch arrive in a row; `payload` is a view the callee may keep (it is not reused). */
  received(ctx: C, payload: Uint8Array, host: string, port: number): void;
  /** `count` datagrams to one destination were lost (`address`: 4 or 16 bytes). May close the socket. */
  sendFailed(ctx: C, failure: UdpSendFailure): void;
  /** The socket broke (its fd failed); it is closed already. */
  failed(ctx: C, err: Error & { errno?: number }): void;
}

/** Datagrams one socket holds while the kernel's send buffer is full. */
export const MAX_QUEUED = 1024;

const DATAGRAMS = 0;
const WRITABLE = 1;
const DEST_SIZE = 18;
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name); // EAGAIN, not EWOULDBLOCK

/**
 * Destinations are views into shared slabs of DESTS_PER_SLAB: a flow keeps one for its life, and an ArrayBuffer
 * of its own would cost ~150 bytes (object, backing store, malloc) for 18 bytes. A slab lives while one of its
 * views does: at worst 15 dead neighbours (270 bytes) stay with a long-lived one.
 */
const DESTS_PER_SLAB = 16;
let slab = new Uint8Array(0);
let slabUsed = 0;

/** A destination as the addon takes it: 16 address bytes (IPv4 in the first 4) and the port, big-endian. */
export function encodeDestination(address: Uint8Array, port: number): Uint8Array {
  if (slabUsed + DEST_SIZE > slab.length) {
    slab = new Uint8Array(DEST_SIZE * DESTS_PER_SLAB);
    slabUsed = 0;
  }
  const d = slab.subarray(slabUsed, slabUsed + DEST_SIZE);
  slabUsed += DEST_SIZE;
  d.set(address);
  d[16] = port >> 8;
  d[17] = port & 0xff;
  return d;
}

export type { NativeUdpSocket };

/** The native socket with its owner attached, so that one callback serves every socket. */
type OwnedNative = NativeUdpSocket & { owner?: BatchedUdpSocket<unknown> };

/** Sockets with datagrams queued in this turn, flushed by one microtask. */
let due: Array<BatchedUdpSocket<unknown>> = [];

function flushDue(): void {
  const sockets = due;
  due = [];
  for (const s of sockets) s.flushQueued();
}

export class BatchedUdpSocket<C> {
  private native: OwnedNative | null;
  /** The queue (null while empty: thousands of idle flows keep no arrays). */
  private payloads: Uint8Array[] | null = null;
  private dests: Uint8Array[] | null = null;
  /** In `due`, or waiting for the socket to become writable (then the writable event flushes). */
  private scheduled = false;
  private blocked = false;
  /** Times the kernel's send buffer was full and the queue waited for it. */
  stalls = 0;

  constructor(
    native: NativeUdpSocket,
    private readonly v6: boolean,
    private readonly handler: BatchedUdpHandler<C>,
    private readonly ctx: C,
  ) {
    this.native = native;
    (native as OwnedNative).owner = this as BatchedUdpSocket<unknown>;
    native.setRef(false); // the session keeps the process alive, not its flows
    native.start(BatchedUdpSocket.onNativeEvent);
  }

  /** The addon calls this with the native socket as `this`. */
  private static onNativeEvent(this: OwnedNative, kind: number, data?: ArrayBuffer | Error, meta?: Int32Array, hosts?: string[]): void {
    this.owner?.event(kind, data, meta, hosts);
  }

  get port(): number {
    return this.native?.port ?? 0;
  }

  get closed(): boolean {
    return this.native === null;
  }

  /** Queues one datagram to `dest` (from encodeDestination; the same object may serve many datagrams). */
  queue(payload: Uint8Array, dest: Uint8Array): void {
    if (!this.native) return;
    if (this.payloads === null || this.dests === null) {
      this.payloads = [];
      this.dests = [];
    } else if (this.payloads.length >= MAX_QUEUED) {
      this.handler.sendFailed(this.ctx, this.failure(dest, 'EAGAIN', 1));
      return;
    }
    this.payloads.push(payload);
    this.dests.push(dest);
    if (!this.scheduled) {
      this.scheduled = true;
      if (due.length === 0) queueMicrotask(flushDue);
      due.push(this as BatchedUdpSocket<unknown>);
    }
  }

  close(): void {
    if (this.native) this.native.owner = undefined;
    this.native?.close();
    this.native = null;
    this.payloads = this.dests = null;
  }

  /** The turn's end (flushDue): sends what was queued, unless waiting for writable. */
  flushQueued(): void {
    if (this.blocked) return;
    this.scheduled = false;
    this.flush();
  }

  private flush(): void {
    const payloads = this.payloads;
    const dests = this.dests;
    if (!payloads || !dests) return;
    const end = payloads.length;
    let at = 0;
    while (this.native && at < end) {
      at += this.native.send(payloads, dests, at, end);
      if (at >= end) break;
      const code = errnoNames.get(this.native.sendErrno) ?? `E${this.native.sendErrno}`;
      if (code === 'EAGAIN') {
        this.blocked = this.scheduled = true;
        this.stalls++;
        this.native.waitWritable();
        break;
      }
      const failed = Math.max(1, this.native.sendFailed);
      this.handler.sendFailed(this.ctx, this.failure(dests[at], code, failed)); // may close us
      at += failed;
    }
    if (!this.native) return;
    if (at >= payloads.length) {
      this.payloads = this.dests = null;
    } else { // what is left after a stall, and anything a callback above queued meanwhile
      payloads.splice(0, at);
      dests.splice(0, at);
    }
  }

  private event(kind: number, data?: ArrayBuffer | Error, meta?: Int32Array, hosts?: string[]): void {
    if (kind === DATAGRAMS && data instanceof ArrayBuffer && meta && hosts) {
      let start = 0;
      for (let i = 0; i < hosts.length && this.native; i++) {
        const end = meta[2 * i];
        this.handler.received(this.ctx, new Uint8Array(data, start, end - start), hosts[i], meta[2 * i + 1]);
        start = end;
      }
    } else if (kind === WRITABLE) {
      this.blocked = this.scheduled = false;
      this.flush();
    } else {
      this.close();
      this.handler.failed(this.ctx, data instanceof Error ? data : new Error('UDP socket failed'));
    }
  }

  private failure(dest: Uint8Array, code: string, count: number): UdpSendFailure {
    return { address: dest.subarray(0, this.v6 ? 16 : 4), port: (dest[16] << 8) | dest[17], code, count };
  }
}

export interface BatchedUdpOptions {
  /** SO_RCVBUF to ask for (capped by net.core.rmem_max). */
  receiveBuffer?: number;
  /** The local address to bind (a literal of the socket's family); default: the wildcard address. */
  address?: string;
}

/**
 * A batched socket bound to an ephemeral port (IPv6: v6-only), or null without the addon (or with the environment
 * variable ZKS_UDP_SOCKETS=dgram, the escape hatch should these sockets misbehave somewhere). Throws the system's
 * error (with `errno`, `code` and `syscall`: EMFILE, EADDRNOTAVAIL...) when the socket cannot be made.
 */
export function openBatchedUdpSocket<C>(v6: boolean, handler: BatchedUdpHandler<C>, ctx: C, options: BatchedUdpOptions = {}): BatchedUdpSocket<C> | null {
  const addon = datapathAddon();
  if (!addon || process.env.ZKS_UDP_SOCKETS === 'dgram') return null;
  let native: NativeUdpSocket;
  try {
    native = new addon.UdpSocket(v6 ? 6 : 4, options.receiveBuffer, options.address);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    err.code ??= errnoCode(err);
    throw err;
  }
  return new BatchedUdpSocket(native, v6, handler, ctx);
}

/** The errno name of a native error ('EMFILE'...), for callers that branch on node-style codes. */
export function errnoCode(err: { errno?: number }): string {
  return (err.errno !== undefined && errnoNames.get(err.errno)) || 'EUNKNOWN';
}
