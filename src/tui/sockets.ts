// Which control sockets zks-tui tries, in order: zksd's (the full-system VPN), then the one `zks socks5` /
// `zks p2p-client` open for their user. `--socket PATH` replaces the list with that one path.

import { controlSocketPath, proxyControlPath } from '../control/paths';

export function candidateSockets(forced?: string): string[] {
  if (forced) return [forced];
  return [controlSocketPath(), proxyControlPath()];
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
