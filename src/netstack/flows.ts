// The interface's flow table: TCP flows by 4-tuple, and which of them need a dispatch. A flow needs one when it got
// a segment, when an application call woke its socket (the dirty list), or when its timer is due (a deadline heap);
// poll visits only those, so an idle flow costs nothing per pass. Invariant: outside poll, every live flow that is
// not dirty has `timerAt` equal to its socket's pollAt() (Infinity for none); heap entries whose deadline differs
// from their flow's timerAt are stale and skipped. A one-entry cache serves runs of packets of one flow.

import type { TcpSocket } from './socket/index';
import { DeadlineHeap } from './storage/index';
import { ipv4ToText, ipv6ToText } from './wire/index';

export interface Endpoint {
  /** Dotted quad or RFC 5952 IPv6 text. */
  readonly address: string;
  readonly port: number;
}

/** One TCP flow. `local` is the destination the application dialled (we answer as it); `remote` is the application. */
export interface Flow {
  readonly id: number;
  readonly family: 4 | 6;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly socket: TcpSocket;
}

/** A snapshot of one flow for the control socket. Bytes are TCP payload on the wire, retransmissions included. */
export interface FlowInfo {
  readonly id: number;
  readonly family: 4 | 6;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly state: TcpSocket['state'];
  /** Payload bytes received from the application (TUN → us). */
  readonly bytesIn: number;
  /** Payload bytes sent to the application (us → TUN). */
  readonly bytesOut: number;
}

export class FlowEntry implements Flow {
  bytesIn = 0;
  bytesOut = 0;
  /** In the dirty list. */
  dirty = false;
  /** Deadline of this flow's valid heap entry; Infinity when it has none. */
  timerAt = Infinity;
  /** Still in the table (heap entries of removed flows are stale). */
  live = true;
  readonly localPort: number;
  readonly remotePort: number;
  constructor(
    readonly id: number,
    readonly family: 4 | 6,
    readonly key: string,
    /** Our address (the packet's destination), a copy. */
    readonly localAddr: Uint8Array,
    readonly remoteAddr: Uint8Array,
    readonly local: Endpoint,
    readonly remote: Endpoint,
    readonly socket: TcpSocket,
  ) {
    this.localPort = local.port;
    this.remotePort = remote.port;
  }
}

export function addressText(a: Uint8Array): string {
  return a.length === 4 ? ipv4ToText(a) : ipv6ToText(a);
}

function u32(a: Uint8Array, i: number): number {
  return ((a[i] << 24) | (a[i + 1] << 16) | (a[i + 2] << 8) | a[i + 3]) >>> 0;
}

/** IPv4: the address as a decimal number; IPv6: four base-36 words, each ended by '.', so the two never collide. */
function addrKey(a: Uint8Array): string {
  if (a.length === 4) return String(u32(a, 0));
  let s = '';
  for (let i = 0; i < 16; i += 4) s += `${u32(a, i).toString(36)}.`;
  return s;
}

/** 4-tuple key as seen on incoming packets: application (src) → dialled target (dst). */
export function flowKey(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number): string {
  return `${addrKey(src)}:${srcPort}>${addrKey(dst)}:${dstPort}`;
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class FlowTable {
  private readonly byKey = new Map<string, FlowEntry>();
  private last: FlowEntry | null = null;
  private dirty: FlowEntry[] = [];
  private readonly timers = new DeadlineHeap<FlowEntry>();

  get size(): number { return this.byKey.size; }
  get hasDirty(): boolean { return this.dirty.length > 0; }
  values(): IterableIterator<FlowEntry> { return this.byKey.values(); }

  /** The flow of a packet src:srcPort → dst:dstPort, if any. */
  find(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number): FlowEntry | undefined {
    const l = this.last;
    if (l !== null && l.remotePort === srcPort && l.localPort === dstPort && sameAddress(l.remoteAddr, src) && sameAddress(l.localAddr, dst)) {
      return l;
    }
    const f = this.byKey.get(flowKey(src, srcPort, dst, dstPort));
    if (f !== undefined) this.last = f;
    return f;
  }

  add(f: FlowEntry): void {
    this.byKey.set(f.key, f);
  }

  remove(f: FlowEntry): void {
    f.live = false;
    f.timerAt = Infinity;
    this.byKey.delete(f.key);
    if (this.last === f) this.last = null;
  }

  markDirty(f: FlowEntry): void {
    if (f.dirty || !f.live) return;
    f.dirty = true;
    this.dirty.push(f);
  }

  /** Takes every flow that needs a dispatch at nowMs: the dirty ones and those whose timer is due. */
  takeDue(nowMs: number): FlowEntry[] {
    const heap = this.timers;
    while (heap.nextAt <= nowMs) {
      const at = heap.nextAt;
      const f = heap.pop() as FlowEntry;
      if (f.live && f.timerAt === at) {
        f.timerAt = Infinity;
        this.markDirty(f);
      }
    }
    const due = this.dirty;
    this.dirty = [];
    for (let i = 0; i < due.length; i++) due[i].dirty = false;
    return due;
  }

  /** Records the flow's next deadline after a dispatch (null: none). */
  schedule(f: FlowEntry, at: number | null): void {
    if (at === null) {
      f.timerAt = Infinity; // its heap entry, if any, is stale now
      return;
    }
    if (at === f.timerAt) return;
    f.timerAt = at;
    this.timers.push(at, f);
    // Every rescheduling leaves a stale entry behind: shed them once they outnumber the flows.
    if (this.timers.size > 2 * this.byKey.size + 64) this.timers.filter((a, g) => g.live && g.timerAt === a);
  }

  /** The earliest deadline of any flow, or null. */
  nextDeadline(): number | null {
    const heap = this.timers;
    while (heap.size > 0) {
      const f = heap.nextItem as FlowEntry;
      if (f.live && f.timerAt === heap.nextAt) return heap.nextAt;
      heap.pop();
    }
    return null;
  }
}
