// ICMP echo sockets for the exit peer (Linux): the zks_icmp addon (addon/icmp.cc) behind a small class. open()
// tries an unprivileged ping socket (SOCK_DGRAM: the gid must be in net.ipv4.ping_group_range of this network
// namespace), then a raw socket (CAP_NET_RAW); when neither is allowed it throws an IcmpSocketError saying what
// to change. Messages arrive as the kernel hands them over (see IcmpMessage); parsing them is the caller's job.
// The addon loads lazily, so importing this module never needs the native build.

import { createRequire } from 'node:module';
import { ZksError } from '../errors/zks-error';

export type IcmpFamily = 4 | 6;

/** Why no ICMP socket could be opened; the pinger falls back to timing a TCP connect for all of them. */
export type IcmpSocketErrorReason = 'not-permitted' | 'addon-missing' | 'unsupported' | 'io';

export class IcmpSocketError extends ZksError {
  readonly reason: IcmpSocketErrorReason;
  readonly errno: number | undefined;
  constructor(reason: IcmpSocketErrorReason, message: string, errno?: number) {
    super('ZKS_ERR_UNSUPPORTED', message);
    this.name = 'IcmpSocketError';
    this.reason = reason;
    this.errno = errno;
  }
}

export const NOT_PERMITTED_MESSAGE =
  "ICMP sockets not permitted: add the exit's gid to net.ipv4.ping_group_range (sysctl, per network namespace) " +
  'or run it with CAP_NET_RAW';

/** An ICMP error the kernel queued for a dgram socket (IP_RECVERR; struct sock_extended_err). */
export interface IcmpQueuedError {
  errno: number;
  /** SO_EE_ORIGIN_*: 2 ICMP, 3 ICMPv6, 1 local (e.g. the neighbour never answered). */
  origin: number;
  type: number;
  code: number;
  /** The router (or this host) that sent the error; '' when the kernel gave none. */
  offender: string;
}

/**
 * One message from the socket. Dgram: `data` is the ICMP message (header first); for an error, it is the echo
 * we sent and `from` is its destination. Raw IPv4: `data` starts with the IP header. `ttl` is -1 when unknown.
 */
export interface IcmpMessage {
  data: Uint8Array;
  from: string;
  ttl: number;
  error: IcmpQueuedError | null;
}

interface NativeSocket {
  readonly ident: number;
  start(cb: (err: NativeError | null, msg?: IcmpMessage) => void): void;
  send(address: string, packet: Uint8Array, ttl?: number): number;
  close(): void;
  setRef(ref: boolean): void;
}
interface NativeError extends Error {
  errno?: number;
  syscall?: string;
}
interface Addon {
  IcmpSocket: new (family: number, raw: boolean) => NativeSocket;
}

let addon: Addon | undefined;
function loadAddon(): Addon {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)('./build/Release/zks_icmp.node') as Addon;
    return addon;
  } catch (e) {
    throw new IcmpSocketError(
      'addon-missing',
      `the ICMP addon is not built (${(e as Error).message.split('\n')[0]}): run \`npm ci\` or \`node src/native/build.mjs\``,
    );
  }
}

const EACCES = 13;
const EPERM = 1;
const EAFNOSUPPORT = 97;
const EPROTONOSUPPORT = 93;

export class IcmpSocket {
  /** 'dgram': the kernel sets the echo identifier (= `ident`) and checksum; 'raw': we do, and see IP headers (v4). */
  readonly kind: 'dgram' | 'raw';
  readonly family: IcmpFamily;
  /** dgram: the identifier the kernel puts in our echoes; raw: 0 (the caller picks one). */
  readonly ident: number;
  /** Every message read from the socket; errors of the socket itself go to onError. */
  onMessage: ((msg: IcmpMessage) => void) | null = null;
  onError: ((err: ZksError) => void) | null = null;
  private native: NativeSocket | null;

  private constructor(native: NativeSocket, family: IcmpFamily, kind: 'dgram' | 'raw') {
    this.native = native;
    this.family = family;
    this.kind = kind;
    this.ident = native.ident;
    native.start((err, msg) => {
      if (err) this.onError?.(new IcmpSocketError('io', `ICMP socket: ${err.message}`, err.errno));
      else if (msg) this.onMessage?.(msg);
    });
  }

  /**
   * A ping socket, else a raw one; `kinds` limits the attempts (tests). Throws IcmpSocketError: 'not-permitted'
   * (neither allowed), 'unsupported' (no such family here), 'addon-missing', 'io'.
   */
  static open(family: IcmpFamily, kinds: ReadonlyArray<'dgram' | 'raw'> = ['dgram', 'raw']): IcmpSocket {
    const { IcmpSocket: Native } = loadAddon();
    let denied: NativeError | undefined;
    for (const kind of kinds) {
      try {
        return new IcmpSocket(new Native(family, kind === 'raw'), family, kind);
      } catch (e) {
        const err = e as NativeError;
        if (err.errno === EACCES || err.errno === EPERM) {
          denied = err;
          continue;
        }
        if (err.errno === EAFNOSUPPORT || err.errno === EPROTONOSUPPORT) {
          throw new IcmpSocketError('unsupported', `ICMP over IPv${family} is not available here: ${err.message}`, err.errno);
        }
        throw new IcmpSocketError('io', `could not open an ICMP socket: ${err.message}`, err.errno);
      }
    }
    throw new IcmpSocketError('not-permitted', `${NOT_PERMITTED_MESSAGE} (IPv${family}: ${denied?.message ?? 'not tried'})`, denied?.errno);
  }

  /**
   * Sends one ICMP message (header + data) to a literal address; 0 or the errno of sendmsg. `ttl` (1..255) limits
   * this packet's hops only (traceroute); absent: the system default.
   */
  send(address: string, packet: Uint8Array, ttl?: number): number {
    if (!this.native) return 9; // EBADF
    return this.native.send(address, packet, ttl);
  }

  /** Whether an idle socket keeps the process alive (default true, like a net.Socket). */
  setRef(ref: boolean): void {
    this.native?.setRef(ref);
  }

  get closed(): boolean {
    return this.native === null;
  }

  /** Idempotent. */
  close(): void {
    this.native?.close();
    this.native = null;
  }
}
