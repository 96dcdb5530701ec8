// What the direct path reads out of WebRTC's text (everything else is the stack's business): the DTLS fingerprint
// line of an SDP (RFC 8122 §5), the address and type of a UDP candidate line (RFC 8839 §5.1).

import { BlockList, isIP } from 'node:net';

const FINGERPRINT = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/m;

/** "sha-256 AB:CD:…" (algorithm lower case, hash upper case) from an SDP's a=fingerprint line; null without one. */
export function fingerprintOf(sdp: string): string | null {
  const m = FINGERPRINT.exec(sdp);
  return m ? `${m[1].toLowerCase()} ${m[2].toUpperCase()}` : null;
}

/** Address and port of a UDP candidate line (RFC 8839 §5.1: foundation, component, transport, priority, address, port). */
export function candidateAddress(line: string): { address: string; port: number } | null {
  const f = line.replace(/^a=/, '').split(' ');
  const port = Number(f[5]);
  if (f.length < 8 || f[2]?.toLowerCase() !== 'udp' || isIP(f[4] ?? '') === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { address: f[4]!, port };
}

/** Address and port of a relayed candidate line (`typ relay`: an allocation on the peer's TURN server), else null. */
export function relayedCandidateAddress(line: string): { address: string; port: number } | null {
  const f = line.replace(/^a=/, '').split(' ');
  return f[6] === 'typ' && f[7] === 'relay' ? candidateAddress(line) : null;
}

// Parsed, not pattern-matched: 0:0:0:0:0:0:0:1, ::ffff:7f00:1 and ::127.0.0.1 are loopback too (BlockList maps
// IPv4-mapped IPv6 addresses onto the IPv4 rules).
const NEVER_A_PEER = new BlockList();
NEVER_A_PEER.addSubnet('127.0.0.0', 8, 'ipv4');
NEVER_A_PEER.addSubnet('0.0.0.0', 8, 'ipv4');
NEVER_A_PEER.addSubnet('224.0.0.0', 4, 'ipv4');
NEVER_A_PEER.addAddress('255.255.255.255', 'ipv4');
NEVER_A_PEER.addSubnet('::', 96, 'ipv6'); // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
NEVER_A_PEER.addSubnet('ff00::', 8, 'ipv6');

/** Loopback, unspecified, broadcast or multicast: never a peer on another machine, only ever a probe of this one. */
export function unusableCandidateAddress(address: string): boolean {
  const family = isIP(address);
  return family === 0 || NEVER_A_PEER.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
