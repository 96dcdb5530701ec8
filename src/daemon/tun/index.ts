// TUN device for zksd (Linux): the zks_tun addon (addon/tun.cc) opens /dev/net/tun and hands packets over in
// batches — one callback per wake-up, many packets in one ArrayBuffer — and writes synchronously without ever
// blocking the event loop. Offload mode puts a virtio_net_hdr (virtio 1.x §5.1.6) before every packet: the kernel
// then passes TCP super-packets up to 64 KiB with partial checksums, and accepts the same.
// Addresses, routes and `up` are the caller's job (configureTun); the addon loads lazily, so importing this
// module never needs the native build.

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { ZksError } from '../../errors/zks-error';
import { encodeVnetHeaders, type VnetHeader } from '../../netstack/wire/vnet';

/** Why a TUN operation failed; callers branch on this (the ZksError code is ZKS_ERR_TUN). */
export type TunErrorReason =
  | 'permission' // not root / no CAP_NET_ADMIN
  | 'no-device' // /dev/net/tun missing
  | 'busy' // the name belongs to another device or a TUN another process holds
  | 'offload-unsupported' // the kernel refused IFF_VNET_HDR / TUNSETOFFLOAD: reopen with offload: false
  | 'invalid' // bad options (name, MTU, write arguments)
  | 'addon-missing' // the native addon was not built
  | 'closed'
  | 'io';

export class TunError extends ZksError {
  readonly reason: TunErrorReason;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  /** For write errors: packets written before the failing one. */
  readonly written: number | undefined;
  constructor(reason: TunErrorReason, message: string, detail: { errno?: number; syscall?: string; written?: number } = {}) {
    super('ZKS_ERR_TUN', message);
    this.name = 'TunError';
    this.reason = reason;
    this.errno = detail.errno;
    this.syscall = detail.syscall;
    this.written = detail.written;
  }
}

// The virtio-net header (constants, fields, encoder) is a wire format: it lives with the netstack's views.
export {
  VNET_HDR_F_DATA_VALID, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_ECN, VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4, VNET_HDR_GSO_TCPV6,
  VNET_HDR_GSO_UDP, VNET_HDR_LEN, encodeVnetHeaders, type VnetHeader,
} from '../../netstack/wire/vnet';

// Row layout of the batch table, u32 per field (must match TableField in addon/tun.cc).
const F = { OFFSET: 0, LENGTH: 1, FLAGS: 2, GSO_TYPE: 3, HDR_LEN: 4, GSO_SIZE: 5, CSUM_START: 6, CSUM_OFFSET: 7 } as const;
const STRIDE = 8;

/**
 * The packets of one read batch. Both views share one ArrayBuffer owned by this batch (never reused by the
 * addon), so packets may be kept after the callback returns.
 *
 *   ArrayBuffer: | table: count × 8 u32 (offset, length, vnet header fields) | packets back to back |
 *                                                                            ^ data (offsets are relative to it)
 */
export class PacketBatch {
  readonly count: number;
  constructor(
    readonly table: Uint32Array,
    readonly data: Uint8Array,
  ) {
    this.count = table.length / STRIDE;
  }
  /** The i-th IP packet (a view, no copy; without its vnet header). */
  packet(i: number): Uint8Array {
    const o = i * STRIDE;
    const start = this.table[o + F.OFFSET];
    return this.data.subarray(start, start + this.table[o + F.LENGTH]);
  }
  length(i: number): number {
    return this.table[i * STRIDE + F.LENGTH];
  }
  flags(i: number): number {
    return this.table[i * STRIDE + F.FLAGS];
  }
  gsoType(i: number): number {
    return this.table[i * STRIDE + F.GSO_TYPE];
  }
  gsoSize(i: number): number {
    return this.table[i * STRIDE + F.GSO_SIZE];
  }
  vnetHeader(i: number): VnetHeader {
    const o = i * STRIDE;
    const t = this.table;
    return {
      flags: t[o + F.FLAGS],
      gsoType: t[o + F.GSO_TYPE],
      hdrLen: t[o + F.HDR_LEN],
      gsoSize: t[o + F.GSO_SIZE],
      csumStart: t[o + F.CSUM_START],
      csumOffset: t[o + F.CSUM_OFFSET],
    };
  }
  *[Symbol.iterator](): IterableIterator<Uint8Array> {
    for (let i = 0; i < this.count; i++) yield this.packet(i);
  }
}

export interface TunOptions {
  /** Interface name (≤ 15 bytes; "zks%d" lets the kernel number it). Default: the kernel picks tunN. */
  name?: string;
  /** Set with SIOCSIFMTU right after creation. Default: the kernel's 1500. */
  mtu?: number;
  /** IFF_VNET_HDR + checksum/TSO offload. Default false (plain IP packets). */
  offload?: boolean;
  /** Read-batch caps: a batch ends at this many packets or once this many bytes were read. */
  maxBatchPackets?: number;
  maxBatchBytes?: number;
}

interface NativeDevice {
  readonly fd: number;
  readonly name: string;
  readonly vnetHdr: boolean;
  start(cb: (err: NativeError | null, table?: Uint32Array, data?: Uint8Array) => void): void;
  pause(): void;
  resume(): void;
  write(packets: readonly Uint8Array[], headers?: Uint8Array): number;
  close(): void;
  setRef(ref: boolean): void;
}
interface NativeError extends Error {
  errno?: number;
  syscall?: string;
  written?: number;
}
interface Addon {
  TunDevice: new (name: string, offload: boolean, maxPackets: number, maxBytes: number, mtu: number) => NativeDevice;
  /** Socket options Node does not expose (tun/sockets.ts wraps them). */
  openMarkedTcpSocket(family: 4 | 6, mark: number): number;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
}

let addon: Addon | undefined;
export function loadAddon(): Addon {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)('./build/Release/zks_tun.node') as Addon;
    return addon;
  } catch (e) {
    throw new TunError(
      'addon-missing',
      `the TUN addon is not built (${(e as Error).message.split('\n')[0]}): run \`npm ci\` or ` +
        '`node src/daemon/tun/build.mjs` (needs g++, make and python3); an installed package: ' +
        '`npm rebuild -g --allow-scripts=zks-tunnel zks-tunnel`',
    );
  }
}

const E = osConstants.errno;

function toTunError(e: unknown, name: string): TunError {
  if (e instanceof TunError) return e;
  const err = e as NativeError;
  const detail = { errno: err.errno, syscall: err.syscall, written: err.written };
  const sys = err.syscall ?? '';
  switch (err.errno) {
    case E.EPERM:
    case E.EACCES:
      return new TunError('permission', 'opening a TUN device needs root (CAP_NET_ADMIN): run zksd with sudo', detail);
    case E.ENOENT:
    case E.ENXIO:
    case E.ENODEV:
      if (sys.startsWith('open')) {
        return new TunError(
          'no-device',
          '/dev/net/tun is missing: load the tun module (`modprobe tun`), or in a container pass the device in ' +
            '(e.g. --device /dev/net/tun)',
          detail,
        );
      }
      break;
    case E.EBUSY:
      return new TunError('busy', `interface ${name} is already in use by another process`, detail);
    case E.EINVAL:
      if (sys === 'ioctl TUNSETIFF') {
        return new TunError('busy', `cannot use interface name ${name}: another kind of device has it`, detail);
      }
      if (sys === 'ioctl TUNSETOFFLOAD' || sys === 'ioctl TUNSETVNETHDRSZ') {
        return new TunError('offload-unsupported', 'this kernel refuses TUN offload: open with offload: false', detail);
      }
      if (sys === 'ioctl SIOCSIFMTU') return new TunError('invalid', `MTU out of range for ${name}`, detail);
      break;
    case E.EBADF:
      return new TunError('closed', `TUN device ${name} is closed`, detail);
  }
  if (err instanceof TypeError || err instanceof RangeError) return new TunError('invalid', err.message, detail);
  return new TunError('io', `TUN device ${name}: ${err.message}`, detail);
}

export class TunDevice {
  readonly name: string;
  readonly offload: boolean;
  #native: NativeDevice;
  #onPackets: ((batch: PacketBatch) => void) | undefined;
  #onError: ((err: TunError) => void) | undefined;
  #started = false;
  #closed = false;

  /** Use openTun(). */
  constructor(native: NativeDevice) {
    this.#native = native;
    this.name = native.name;
    this.offload = native.vnetHdr;
  }

  get fd(): number {
    return this.#native.fd;
  }
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Delivers every read batch to `cb` (replacing any earlier callback). Reading starts on the first call. A throw
   * in `cb` is an uncaught exception, as from any event emitter.
   */
  onPackets(cb: (batch: PacketBatch) => void): void {
    this.#onPackets = cb;
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#native.start((err, table, data) => {
      if (err) {
        const e = toTunError(err, this.name);
        if (!this.#onError) throw e;
        this.#onError(e);
        return;
      }
      this.#onPackets?.(new PacketBatch(table!, data!));
    });
  }

  /** Read errors (the device vanished, …) stop reading and go here; without a handler they are thrown. */
  onError(cb: (err: TunError) => void): void {
    this.#onError = cb;
  }

  /**
   * Writes whole packets without blocking; returns how many went out. Fewer than `packets.length` means the
   * kernel queue is full: drop or queue the rest. In offload mode `headers` gives each packet's vnet header
   * (encodeVnetHeaders or VnetHeader[]); without it packets go out with a zero header (complete checksums).
   */
  write(packets: readonly Uint8Array[], headers?: readonly VnetHeader[] | Uint8Array): number {
    if (this.#closed) throw new TunError('closed', `TUN device ${this.name} is closed`);
    const raw = headers === undefined || headers instanceof Uint8Array ? headers : encodeVnetHeaders(headers);
    try {
      return this.#native.write(packets, raw);
    } catch (e) {
      throw toTunError(e, this.name);
    }
  }

  /** Backpressure for the read side: stop polling the fd until resume(); the kernel queue drops beyond its qlen. */
  pause(): void {
    if (!this.#closed) this.#native.pause();
  }
  resume(): void {
    if (!this.#closed) this.#native.resume();
  }
  /** Whether a reading device keeps the process alive (default true). */
  ref(): void {
    this.#native.setRef(true);
  }
  unref(): void {
    this.#native.setRef(false);
  }

  /** Stops reading and closes the fd; a non-persistent TUN interface disappears with it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }
}

/** Creates (or attaches to) a TUN interface in the current network namespace. Throws TunError. */
export function openTun(options: TunOptions = {}): TunDevice {
  const { name = '', mtu = 0, offload = false, maxBatchPackets = 64, maxBatchBytes = 1 << 20 } = options;
  if (Buffer.byteLength(name) > 15) throw new TunError('invalid', `interface name ${name} is longer than 15 bytes`);
  if (mtu !== 0 && !(Number.isInteger(mtu) && mtu >= 68 && mtu <= 65535)) {
    throw new TunError('invalid', `MTU ${mtu} is out of range (68..65535)`);
  }
  const { TunDevice: Native } = loadAddon();
  try {
    return new TunDevice(new Native(name, offload, maxBatchPackets, maxBatchBytes, mtu));
  } catch (e) {
    throw toTunError(e, name || 'tun');
  }
}

export interface ConfigureTunOptions {
  /** CIDR, e.g. '10.77.0.1/24' (IPv6 works the same). */
  address?: string;
  mtu?: number;
  /** Packets the kernel holds for the reader (the device's txqueuelen: TUN's ring); Linux gives TUN 500. */
  txQueueLen?: number;
  /** Run the `ip` commands in this named network namespace (`ip -n`). */
  netns?: string;
}

/** Sets the MTU, brings the interface up and assigns the address, with `ip` (execFile, no shell). */
export async function configureTun(name: string, options: ConfigureTunOptions = {}): Promise<void> {
  const ns = options.netns ? ['-n', options.netns] : [];
  const mtu = options.mtu ? ['mtu', String(options.mtu)] : [];
  const qlen = options.txQueueLen ? ['txqueuelen', String(options.txQueueLen)] : [];
  await ip([...ns, 'link', 'set', 'dev', name, ...mtu, ...qlen, 'up']);
  if (options.address) await ip([...ns, 'addr', 'replace', options.address, 'dev', name]);
}

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const why = String(stderr).trim() || err.message;
      const reason: TunErrorReason = /not permitted/i.test(why) ? 'permission' : 'io';
      reject(new TunError(reason, `ip ${args.join(' ')}: ${why}`));
    });
  });
}
