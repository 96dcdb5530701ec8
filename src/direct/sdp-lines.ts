// The two things the direct path reads out of WebRTC's text (everything else is the stack's business): the DTLS
// fingerprint line of an SDP (RFC 8122 §5) and the address of a UDP candidate line (RFC 8839 §5.1).

import { isIP } from 'node:net';

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

/** Loopback, unspecified or multicast: never a peer on another machine, only ever a probe of this one. */
export function unusableCandidateAddress(address: string): boolean {
  const a = address.toLowerCase();
  if (isIP(a) === 4) {
    const first = Number(a.split('.')[0]);
    return first === 127 || first === 0 || (first >= 224 && first <= 239);
  }
  return a === '::1' || a === '::' || a.startsWith('ff') || a.startsWith('::ffff:127.');
}
