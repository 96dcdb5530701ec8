// Addresses no flow may have and no ICMP error may be about (RFC 1122 §3.2.1.3 / §3.2.2, RFC 4443 §2.4(e)):
// IPv4 0/8 and 224/4 and up (multicast, reserved, limited broadcast); IPv6 :: and ff00::/8 (multicast).

/** True for a 4- or 16-byte address that is unspecified, multicast or broadcast. */
export function unusableAddress(a: Uint8Array): boolean {
  if (a.length === 4) return a[0] === 0 || a[0] >= 224;
  if (a[0] === 0xff) return true;
  for (let i = 0; i < 16; i++) if (a[i] !== 0) return false;
  return true;
}
