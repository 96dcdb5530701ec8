// Classifies a failed connect(). workerd reports refused ports and unknown host names with the same message,
// but SOCKS5 clients deserve the right reply code, so after a failure (never on the success path) we ask a
// DNS-over-HTTPS JSON endpoint (RFC 8484 JSON flavour, as served by 1.1.1.1) whether the name exists.

import { ConnectResult, type ConnectResultCode } from '../protocol/constants';
import { hostKind } from '../protocol/address';
import { isCloudflareRefusal, viaName, workerCannotReach, WORKER_UNREACHABLE_PREFIX, type AddressRange } from '../protocol/worker-reach';
import type { Target } from '../protocol/address';

interface DohAnswer {
  Status?: number;
  Answer?: Array<{ type: number; data?: unknown }>;
}

/** Addresses of `name` (IPv4 first), [] when it does not exist, null when the resolver could not be asked. */
export async function resolveName(dohUrl: string, name: string): Promise<string[] | null> {
  const ask = async (type: 'A' | 'AAAA'): Promise<string[] | null> => {
    const url = `${dohUrl}?name=${encodeURIComponent(name)}&type=${type}`;
    const res = await fetch(url, { headers: { accept: 'application/dns-json' } });
    if (!res.ok) return null;
    const body = (await res.json()) as DohAnswer;
    if (body.Status === 3) return []; // NXDOMAIN
    const want = type === 'A' ? 1 : 28;
    return (body.Answer ?? []).filter((a) => a.type === want && typeof a.data === 'string').map((a) => a.data as string);
  };
  try {
    const [a, aaaa] = await Promise.all([ask('A'), ask('AAAA')]);
    if (a === null && aaaa === null) return null;
    return [...(a ?? []), ...(aaaa ?? [])];
  } catch {
    return null;
  }
}

export async function classifyConnectFailure(
  target: Target,
  error: unknown,
  dohUrl: string,
  blocked: readonly AddressRange[],
): Promise<{ code: ConnectResultCode; message: string }> {
  const { host, port } = target;
  const text = error instanceof Error ? error.message : String(error);
  if (isCloudflareRefusal(text)) return { code: ConnectResult.FORBIDDEN, message: `${WORKER_UNREACHABLE_PREFIX}${host}: ${text}` };
  if (/port 25|prohibited|not allowed|blocked/i.test(text)) return { code: ConnectResult.FORBIDDEN, message: text };
  if (hostKind(host) === 'domain') {
    const addresses = await resolveName(dohUrl, host);
    if (addresses?.length === 0) return { code: ConnectResult.HOST_UNREACHABLE, message: `${host}: no such host` };
    if (addresses === null) return { code: ConnectResult.GENERAL_FAILURE, message: `connect failed and ${host} could not be looked up` };
    // A site behind Cloudflare fails in the same words as a refused port: only its addresses tell them apart.
    for (const address of addresses) {
      const why = workerCannotReach(address, port, blocked);
      if (why) return { code: ConnectResult.FORBIDDEN, message: viaName(host, why) };
    }
  }
  return { code: ConnectResult.REFUSED, message: 'connection refused' };
}
