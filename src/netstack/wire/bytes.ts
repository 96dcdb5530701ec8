// Big-endian field reads for the packet views. Plain byte arithmetic instead of a DataView per view: creating a
// DataView for every packet showed up in profiles (≈ 5 % of the receive path at 1500-byte packets).

export function u16(buf: Uint8Array, i: number): number {
  return (buf[i] << 8) | buf[i + 1];
}

export function u32(buf: Uint8Array, i: number): number {
  return ((buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]) >>> 0;
}
