// The relay's base URL as users type it (wss://name.workers.dev, https://…, ws://127.0.0.1:8787), normalised
// once for every Node-side component: http(s) becomes ws(s), no query or fragment, no trailing slash.
import { ZksError } from '../errors/zks-error';

export function parseRelayUrl(text: string | undefined): string {
  if (!text) throw new ZksError('ZKS_ERR_CONFIG', 'no relay: pass --relay wss://your-worker.example.workers.dev (or ws://127.0.0.1:8787 locally)');
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ZksError('ZKS_ERR_CONFIG', `"${text}" is not a URL; expected ws://host:port or wss://host`);
  }
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new ZksError('ZKS_ERR_CONFIG', `relay URL must start with wss:// or ws://, got ${u.protocol}`);
  if (u.search || u.hash) throw new ZksError('ZKS_ERR_CONFIG', 'the relay URL must not have a query or fragment');
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}
