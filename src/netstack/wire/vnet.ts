// The virtio-net header (virtio 1.x §5.1.6, struct virtio_net_hdr in linux/virtio_net.h) that an offload TUN puts
// before every packet: how the kernel must finish a packet's checksum (NEEDS_CSUM) or whether it already checked it
// (DATA_VALID), and how to cut a TCP super-packet into segments (gso_type, gso_size, hdr_len). TUN uses the legacy
// layout: 10 bytes, 16-bit fields in host byte order (not network order like every other view here).
// The addon decodes read headers into its batch table (src/daemon/tun); this file is the one encoder.

export const VNET_HDR_LEN = 10;

/** flags */
export const VNET_HDR_F_NEEDS_CSUM = 1;
export const VNET_HDR_F_DATA_VALID = 2;
/** gso_type */
export const VNET_HDR_GSO_NONE = 0;
export const VNET_HDR_GSO_TCPV4 = 1;
export const VNET_HDR_GSO_UDP = 3;
export const VNET_HDR_GSO_TCPV6 = 4;
export const VNET_HDR_GSO_ECN = 0x80;

export interface VnetHeader {
  flags: number;
  gsoType: number;
  /** Length of the IP + TCP headers of a GSO packet. */
  hdrLen: number;
  /** Payload bytes per segment the super-packet stands for (0 unless gsoType != NONE). */
  gsoSize: number;
  /** With NEEDS_CSUM: the checksum covers bytes from csumStart on and goes to csumStart + csumOffset. */
  csumStart: number;
  csumOffset: number;
}

const F = { FLAGS: 0, GSO_TYPE: 1, HDR_LEN: 2, GSO_SIZE: 4, CSUM_START: 6, CSUM_OFFSET: 8 } as const;

/** Legacy virtio is host-endian; every host Node runs on is little-endian, but the check costs nothing. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function put16(buf: Uint8Array, at: number, v: number): void {
  buf[at + (HOST_LE ? 0 : 1)] = v & 0xff;
  buf[at + (HOST_LE ? 1 : 0)] = (v >>> 8) & 0xff;
}

function get16(buf: Uint8Array, at: number): number {
  return HOST_LE ? buf[at] | (buf[at + 1] << 8) : (buf[at] << 8) | buf[at + 1];
}

/**
 * Writes one header at buf[off, off + VNET_HDR_LEN). Plain byte stores, no DataView: the driver calls this once
 * per packet written. Throws RangeError when the header does not fit (a caller bug, not packet input).
 */
export function emitVnetHeader(h: VnetHeader, buf: Uint8Array, off = 0): number {
  if (off < 0 || off + VNET_HDR_LEN > buf.length) throw new RangeError('virtio-net header does not fit the buffer');
  buf[off + F.FLAGS] = h.flags;
  buf[off + F.GSO_TYPE] = h.gsoType;
  put16(buf, off + F.HDR_LEN, h.hdrLen);
  put16(buf, off + F.GSO_SIZE, h.gsoSize);
  put16(buf, off + F.CSUM_START, h.csumStart);
  put16(buf, off + F.CSUM_OFFSET, h.csumOffset);
  return VNET_HDR_LEN;
}

/** Reads one header at buf[off, off + VNET_HDR_LEN), or null when the buffer is too short. */
export function parseVnetHeader(buf: Uint8Array, off = 0): VnetHeader | null {
  if (off < 0 || off + VNET_HDR_LEN > buf.length) return null;
  return {
    flags: buf[off + F.FLAGS],
    gsoType: buf[off + F.GSO_TYPE],
    hdrLen: get16(buf, off + F.HDR_LEN),
    gsoSize: get16(buf, off + F.GSO_SIZE),
    csumStart: get16(buf, off + F.CSUM_START),
    csumOffset: get16(buf, off + F.CSUM_OFFSET),
  };
}

/** Headers for TunDevice.write: VNET_HDR_LEN bytes per packet, back to back. */
export function encodeVnetHeaders(headers: readonly VnetHeader[]): Uint8Array {
  const out = new Uint8Array(headers.length * VNET_HDR_LEN);
  for (let i = 0; i < headers.length; i++) emitVnetHeader(headers[i], out, i * VNET_HDR_LEN);
  return out;
}
