// Drives the netstack from a TUN device: every read batch goes through Interface.receive, then one service pass
// (the engine moves bytes between sockets and tunnel streams) and one Interface.poll whose packets go out in a
// single batched write. Socket timers become one Node timer set to the earliest deadline poll reports. Anything
// that changes a socket outside a read batch (tunnel data, a dial result) calls kick(), which coalesces into one
// pass per event-loop turn — so ACKs go out once per batch, not once per segment.
// Offload devices (virtio-net header): the interface is switched to offload mode; input checksums the kernel
// vouched for (NEEDS_CSUM / DATA_VALID) are not verified again, and every packet written carries a vnet header —
// GSO_TCPV4/TCPV6 with gso_size for segments the kernel must cut, NEEDS_CSUM with csum_start/offset for TCP.

import type { TunDevice } from './tun/index';
import {
  VNET_HDR_F_DATA_VALID, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4, VNET_HDR_GSO_TCPV6, VNET_HDR_LEN,
  emitVnetHeader, type VnetHeader,
} from '../netstack/wire/vnet';
import type { Interface, TxOffload } from '../netstack/iface';

export interface DriverStats {
  /** Packets the kernel queue refused (full): TCP recovers them by retransmission. */
  writeDropped: number;
  writeBatches: number;
  /** Offload devices: TCP super-packets read (gso_type set) and written (the kernel cuts them). */
  gsoRead: number;
  gsoWritten: number;
}

const TRUSTED = VNET_HDR_F_NEEDS_CSUM | VNET_HDR_F_DATA_VALID;

export class StackDriver {
  readonly stats: DriverStats = { writeDropped: 0, writeBatches: 0, gsoRead: 0, gsoWritten: 0 };
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | null = null;
  private closed = false;
  private readonly out: Uint8Array[] = [];
  /** vnet headers of `out`, 10 bytes each (offload devices only). */
  private headers = new Uint8Array(64 * VNET_HDR_LEN);
  /** Filled per packet and encoded at once: no object per packet on the write path. */
  private readonly header: VnetHeader = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  private readonly collect: (packet: Uint8Array, offload: TxOffload | null) => void;

  constructor(
    private readonly dev: TunDevice,
    private readonly iface: Interface,
    /** Runs before each poll: move data between sockets and streams for flows marked active. */
    private readonly service: (nowMs: number) => void,
    onError: (err: Error) => void,
  ) {
    const offload = dev.offload;
    iface.setOffload(offload); // the device decides: partial checksums on a plain TUN would reach apps broken
    this.collect = offload ? (p, o) => this.collectWithHeader(p, o) : (p) => void this.out.push(p);
    dev.onError(onError);
    dev.onPackets((batch) => {
      const now = performance.now();
      if (offload) {
        for (let i = 0; i < batch.count; i++) {
          if (batch.gsoType(i) !== VNET_HDR_GSO_NONE) this.stats.gsoRead++;
          iface.receive(batch.packet(i), now, (batch.flags(i) & TRUSTED) !== 0);
        }
      } else {
        for (let i = 0; i < batch.count; i++) iface.receive(batch.packet(i), now);
      }
      this.run(now);
    });
  }

  /** Schedules a service + poll pass on this event-loop turn (many kicks, one pass). */
  kick(): void {
    if (this.immediate !== null || this.closed) return;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.run(performance.now());
    });
  }

  private collectWithHeader(packet: Uint8Array, o: TxOffload | null): void {
    const i = this.out.length;
    this.out.push(packet);
    if ((i + 1) * VNET_HDR_LEN > this.headers.length) {
      const grown = new Uint8Array(this.headers.length * 2);
      grown.set(this.headers);
      this.headers = grown;
    }
    const h = this.header;
    if (o === null) {
      h.flags = 0; // complete checksums, one packet
      h.gsoType = VNET_HDR_GSO_NONE;
      h.hdrLen = h.gsoSize = h.csumStart = h.csumOffset = 0;
    } else {
      if (o.gsoSize !== 0) this.stats.gsoWritten++;
      h.flags = VNET_HDR_F_NEEDS_CSUM;
      h.gsoType = o.gsoSize === 0 ? VNET_HDR_GSO_NONE : o.family === 4 ? VNET_HDR_GSO_TCPV4 : VNET_HDR_GSO_TCPV6;
      h.hdrLen = o.hdrLen;
      h.gsoSize = o.gsoSize;
      h.csumStart = o.csumStart;
      h.csumOffset = o.csumOffset;
    }
    emitVnetHeader(h, this.headers, i * VNET_HDR_LEN);
  }

  private run(now: number): void {
    if (this.closed) return;
    this.service(now);
    const out = this.out;
    const next = this.iface.poll(now, this.collect);
    if (out.length > 0) {
      this.stats.writeBatches++;
      const headers = this.dev.offload ? this.headers.subarray(0, out.length * VNET_HDR_LEN) : undefined;
      const written = this.dev.closed ? 0 : this.dev.write(out, headers);
      this.stats.writeDropped += out.length - written;
      out.length = 0;
    }
    this.schedule(next, now);
  }

  private schedule(next: number | null, now: number): void {
    if (next === null) return; // an earlier timer may fire for nothing; cheaper than clearing it every batch
    if (next <= now) return this.kick();
    if (this.timer !== null && this.timerAt <= next) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.run(performance.now());
    }, Math.ceil(next - now));
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }
}
