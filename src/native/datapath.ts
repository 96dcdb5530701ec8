// The data path's addon (addon/datapath.cc): AEAD contexts that seal and open records in place, in the caller's
// buffer (node:crypto always returns a fresh buffer: one ArrayBuffer per record, which at 100 MB/s is what keeps V8's
// major GC busy), and fixed malloc thresholds. Optional: without the addon (not built, not Linux) callers fall back
// to node:crypto and leave malloc alone. Loaded once, on first use.
import { createRequire } from 'node:module';

export type DatapathSuite = 'aes-256-gcm' | 'chacha20-poly1305';

/** One key, one direction. Regions are (buffer, offset, length); out-of-bounds regions throw RangeError. */
export interface InPlaceAead {
  /** buf[offset, +length) becomes ciphertext and the 16-byte tag is written right after it. */
  seal(nonce: Uint8Array, buf: Uint8Array, offset: number, length: number): void;
  /** `length` includes the tag. true: buf[offset, +length-16) is the plaintext; false: bad tag, region wiped. */
  open(nonce: Uint8Array, buf: Uint8Array, offset: number, length: number): boolean;
  /** Frees the OpenSSL context (which cleanses the key schedule); also happens when it is collected. */
  dispose(): void;
}

/** addon/udp.cc's UdpSocket; src/native/udp-socket.ts is its user-facing side. */
export interface NativeUdpSocket {
  readonly port: number;
  readonly sendErrno: number;
  readonly sendFailed: number;
  start(cb: (kind: number, data?: ArrayBuffer | Error, meta?: Int32Array, hosts?: string[]) => void): void;
  send(payloads: Uint8Array[], dests: Uint8Array[], start: number, end: number): number;
  waitWritable(): void;
  close(): void;
  setRef(ref: boolean): void;
}

/** addon/connection-watch.cc's ConnectionWatch; src/native/connection-watch.ts is its user-facing side. */
export interface NativeConnectionWatch {
  start(cb: (errno: number) => void): void;
  close(): void;
}

interface Addon {
  ConnectionWatch: new (fd: number) => NativeConnectionWatch;
  AeadContext: new (suite: DatapathSuite, key: Uint8Array, encrypt: boolean) => InPlaceAead;
  UdpSocket: new (family: 4 | 6, receiveBuffer?: number, address?: string) => NativeUdpSocket;
  tuneMalloc(trimThreshold: number, mmapThreshold: number): boolean;
  trimMalloc(): boolean;
  reduceMemory(): boolean;
}

let addon: Addon | null | undefined;

function load(): Addon | null {
  if (addon !== undefined) return addon;
  try {
    addon = createRequire(import.meta.url)('./build/Release/zks_datapath.node') as Addon;
  } catch {
    addon = null; // not built here: node:crypto does the same work with one more buffer per record
  }
  return addon;
}

/** The addon, or null when it is not built here (for the other modules of this layer). */
export function datapathAddon(): Addon | null {
  return load();
}

/** Whether records can be sealed in place here (the addon is built and loads). */
export function inPlaceAeadAvailable(): boolean {
  return load() !== null;
}

/** An in-place AEAD for `key` (the caller may wipe its copy afterwards), or null without the addon. */
export function createInPlaceAead(suite: DatapathSuite, key: Uint8Array, encrypt: boolean): InPlaceAead | null {
  const a = load();
  return a ? new a.AeadContext(suite, key, encrypt) : null;
}

/** Heap top kept before glibc trims it, and the size from which malloc maps memory instead. */
const TRIM_THRESHOLD = 8 * 1024 * 1024;
const MMAP_THRESHOLD = 4 * 1024 * 1024;

let tuned = false;

/**
 * For long-running data-path processes: fixed malloc thresholds. glibc's dynamic ones trim the heap top and map
 * 128 KiB+ buffers afresh, so a process that once held many connections faulted ~300 000 fresh pages per GB
 * carried (a third of its CPU, as system time). Costs at most TRIM_THRESHOLD of freed memory kept for reuse.
 * Returns whether the thresholds were set (false without the addon or off glibc).
 */
export function tuneMallocForThroughput(): boolean {
  if (tuned) return true;
  const a = load();
  tuned = a ? a.tuneMalloc(TRIM_THRESHOLD, MMAP_THRESHOLD) : false;
  return tuned;
}

/**
 * V8's memory-reducing collection (as on a low-memory notification: compacts, drops caches); false without the
 * addon, when the caller should fall back to gc().
 */
export function reduceMemory(): boolean {
  return load()?.reduceMemory?.() ?? false;
}

/** Gives the free memory malloc keeps for reuse back to the system (memory reports: RSS = live state). */
export function trimMalloc(): boolean {
  return load()?.trimMalloc() ?? false;
}
