// IP protocol / IPv6 next-header numbers (IANA "Assigned Internet Protocol Numbers") used by the wire layer,
// and the address representation shared by IPv4 and IPv6: a Uint8Array of 4 or 16 bytes in network order.

export const IpProtocol = {
  HOP_BY_HOP: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  IPV6_ROUTE: 43,
  IPV6_FRAG: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  IPV6_NONXT: 59,
  IPV6_OPTS: 60,
} as const;

/** 4 bytes (IPv4) or 16 bytes (IPv6), network order. */
export type IpAddress = Uint8Array;

