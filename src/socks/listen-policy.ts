// Refuses to expose the proxy beyond this machine by accident: a non-loopback listen address needs both an
// explicit opt-in (allowRemote) and credentials (auth). Loopback = 127.0.0.0/8, ::1 (and ::ffff:127.x), localhost.

import { parseIPv4, parseIPv6 } from '../protocol/address';
import { ZksError } from '../errors/zks-error';

export function isLoopbackHost(host: string): boolean {
  const h = (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host).toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  const v4 = parseIPv4(h);
  if (v4) return v4[0] === 127;
  const v6 = h.includes(':') ? parseIPv6(h) : null;
  if (!v6) return false;
  const zeros = (from: number, to: number) => v6.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 15) && v6[15] === 1) return true; // ::1
  return zeros(0, 10) && v6[10] === 0xff && v6[11] === 0xff && v6[12] === 127; // ::ffff:127.0.0.0/104
}

/** null when listening on `host` is allowed; otherwise a ZKS_ERR_CONFIG error naming exactly what is missing. */
export function checkListenPolicy(
  host: string,
  opts: { allowRemote?: boolean; auth?: { username: string; password: string } },
): ZksError | null {
  if (isLoopbackHost(host)) return null;
  const missing: string[] = [];
  if (!opts.allowRemote) missing.push('allowRemote (--allow-remote)');
  if (!opts.auth || opts.auth.username === '' || opts.auth.password === '') {
    missing.push('auth (--user and --password, both non-empty)');
  }
  if (missing.length === 0) return null;
  const shown = host === '' ? 'all interfaces' : host;
  return new ZksError(
    'ZKS_ERR_CONFIG',
    `refusing to listen on ${shown}: it is not a loopback address, so anyone who can reach it could use the proxy. ` +
      `Missing: ${missing.join(' and ')}. Set ${missing.length === 2 ? 'both' : 'it'}, or listen on 127.0.0.1.`,
  );
}
