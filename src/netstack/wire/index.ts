// The wire layer of the netstack: IPv4, IPv6, TCP, UDP and ICMP/ICMPv6 packets as bytes, and nothing else — no I/O,
// no clock, no state beyond one packet (smoltcp's src/wire is the model). Uint8Array + DataView only, no node:*.
//
// How views work. `XView.checked(buf)` validates every length a getter will rely on (header length fields against
// the buffer, the TCP option list, the IPv6 extension chain) exactly once and returns the view or a WireError; it
// never throws. Afterwards the getters read big-endian fields at named offsets (`F.SEQ = 4`, bytes.ts: no DataView
// per packet) and cannot fail or go out of bounds. Getters returning bytes (`payload`, `src`) are subarrays aliasing
// the packet: no copy, so copy them to keep them past the packet's buffer. For typed work, `XRepr.parse(view)` turns
// a view into a plain object (addresses copied, payload still aliased) and `XRepr.emit(repr, buf, …)` writes one
// back, checksum included, returning the bytes written; emit throws RangeError only for a Repr no packet could carry
// (a caller bug, not packet input). Checksums of TCP/UDP/ICMPv6 depend on the IP addresses, so those views verify
// with `verifyChecksum(src, dst)` and emit takes `{ src, dst, checksum: 'full' | 'pseudo' | 'none' }` ('pseudo'
// for kernel checksum offload).
// Layering: the interface (../iface.ts) checks the IP view, then the upper-layer view over `payload`/`upperPayload`.

export * from './errors';
export * from './checksum';
export * from './seq';
export * from './ip';
export * from './ipv4';
export * from './ipv6';
export * from './tcp';
export * from './udp';
export * from './icmp';
export * from './vnet';
