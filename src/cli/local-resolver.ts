// A DNS-over-HTTPS JSON endpoint (the subset 1.1.1.1 serves: ?name=&type=A|AAAA) for the local stack, so the
// Worker in workerd can tell "no such host" from "connection refused". It answers from the hosts file, and
// from the system resolver unless `hostsOnly` (tests use that so no query ever leaves this machine).

import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { promises as dns } from 'node:dns';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';

export interface LocalResolver {
  url: string;
  close(): Promise<void>;
}

function hostsFile(path = '/etc/hosts'): Map<string, string[]> {
  const map = new Map<string, string[]>();
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return map;
  }
  for (const raw of text.split('\n')) {
    const [addr, ...names] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!addr || (!isIPv4(addr) && !isIPv6(addr))) continue;
    for (const n of names) map.set(n.toLowerCase(), [...(map.get(n.toLowerCase()) ?? []), addr]);
  }
  return map;
}

export async function startLocalResolver(opts: { hostsOnly?: boolean } = {}): Promise<LocalResolver> {
  const server: Server = createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const name = (u.searchParams.get('name') ?? '').toLowerCase().replace(/\.$/, '');
    const type = u.searchParams.get('type') === 'AAAA' ? 'AAAA' : 'A';
    const want = type === 'A' ? isIPv4 : isIPv6;
    let addresses = (hostsFile().get(name) ?? []).filter((a) => want(a));
    let status = 0;
    if (addresses.length === 0 && (name === 'localhost' || name.endsWith('.localhost'))) {
      addresses = type === 'A' ? ['127.0.0.1'] : ['::1'];
    }
    if (addresses.length === 0 && !opts.hostsOnly) {
      try {
        addresses = type === 'A' ? await dns.resolve4(name) : await dns.resolve6(name);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        status = code === 'ENOTFOUND' ? 3 : code === 'ENODATA' ? 0 : 2;
      }
    } else if (addresses.length === 0) {
      status = hostsFile().has(name) ? 0 : 3;
    }
    res.setHeader('content-type', 'application/dns-json');
    res.end(JSON.stringify({ Status: status, Answer: addresses.map((data) => ({ name, type: type === 'A' ? 1 : 28, data })) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/dns-query`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
