// Which control sockets zks-tui tries, in order: zksd's (the full-system VPN), then the one `zks socks5` /
// `zks p2p-client` open for their user, then the user's exposed HTTP tunnels. `--socket PATH` replaces the list with that one path.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { controlSocketPath, proxyControlPath, userControlDir } from '../control/paths';

/** zksd, the user's proxy, then the user's exposed tunnels (`zks expose http://…`) in id order. */
export function candidateSockets(forced?: string): string[] {
  if (forced) return [forced];
  let tunnels: string[] = [];
  try {
    tunnels = readdirSync(userControlDir()).filter((n) => /^expose-[a-z0-9-]+\.sock$/.test(n)).sort().map((n) => join(userControlDir(), n));
  } catch {
    // no private directory yet: no tunnels
  }
  return [controlSocketPath(), proxyControlPath(), ...tunnels];
}

/** "waiting for zksd at A (or a zks client at B)" — the line the waiting screen and --watch print. */
export function waitingLine(candidates: readonly string[]): string {
  const [first, ...rest] = candidates;
  const others = rest.length ? ` (or a zks client at ${rest.join(', ')})` : '';
  return `waiting for zksd at ${first}${others}`;
}

/** For one-shot snapshots that find nothing. */
export function absentLine(candidates: readonly string[]): string {
  const [first, ...rest] = candidates;
  const others = rest.length ? ` (nor a zks client at ${rest.join(', ')})` : '';
  return `zksd is not running: nothing answers at ${first}${others}`;
}
