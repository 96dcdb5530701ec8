// The control socket of `zks socks5` / `zks p2p-client`, so `zks-tui` and `zks flows` work without zksd: the
// same protocol (docs/CONTROL.md) with the subset that makes sense for a proxy — status, flows, flow.close and
// subscriptions. It is the user's own: 0600 in a 0700 directory under $XDG_RUNTIME_DIR (or /tmp/zks-<uid>).

import { roomLabel } from '../crypto/room';
import type { TunnelPool } from '../client/pool';
import { ControlClient } from '../control/client';
import { proxyControlPath } from '../control/paths';
import type { ProxyStatus } from '../control/protocol';
import { startControlService, type ControlService } from '../control/service';
import { relayDisplayUrl, relayLinkSnapshot } from '../control/status';
import type { ProxyFlowRegistry } from './flows';

export interface ProxyControlOptions {
  mode: 'socks5' | 'p2p-client';
  relay: string;
  listen: string;
  /** The pools in use, the default way's first (an exit peer's pool is the one with a room). */
  pools: TunnelPool[];
  flows: ProxyFlowRegistry;
  /** p2p-client: the room's public id (its label and exit-peer presence go into status). */
  roomId?: Uint8Array;
  path?: string;
  /** The SOCKS5 UDP associations' counters (proxyUdpCounters). */
  udp?: () => Record<string, number>;
  log: (line: string) => void;
}

/** Starts the socket, or returns null (with a log line) when another running proxy already owns it. */
export async function startProxyControl(o: ProxyControlOptions): Promise<ControlService | null> {
  const path = o.path ?? proxyControlPath();
  const other = await ControlClient.connect(path, 500).catch(() => null);
  if (other) {
    other.close();
    o.log(`control socket ${path} belongs to another running zks client: this one has none (zks-tui shows the other)`);
    return null;
  }
  const startedAt = Date.now();
  const relay = relayDisplayUrl(o.relay);
  const exitPool = o.roomId ? o.pools.find((p) => p.hasRoom) : undefined;
  const several = o.pools[0]!.relays.size > 1;
  const status = (): ProxyStatus => ({
    pid: process.pid,
    mode: o.mode,
    relay,
    listen: o.listen,
    killSwitch: null,
    bypass: null,
    room: o.roomId ? roomLabel(o.roomId) : null,
    exitPeer: exitPool ? exitPool.connections.length > 0 : null,
    uptimeMs: Date.now() - startedAt,
    connections: o.pools.flatMap((p) => [...p.connections, ...(p.datagramConnection ? [p.datagramConnection] : [])]).map((c) => ({
      ...relayLinkSnapshot(c), ...(several ? { relay: relayDisplayUrl(c.relayUrl) } : {}),
    })),
    ...(several ? { relays: relayHealth(o.pools) } : {}),
    flows: o.flows.count,
    ...o.flows.totals(),
    rateUp: Math.round(o.flows.totalRate.upRate),
    rateDown: Math.round(o.flows.totalRate.downRate),
    ...(o.udp ? { udp: o.udp() } : {}),
  });
  return startControlService({ path, access: 'user', flows: o.flows, status });
}

/** Each relay as the pools see it: up only if every pool in use has it up (the Worker's and an exit peer's). */
function relayHealth(pools: readonly TunnelPool[]): Array<{ url: string; up: boolean; error: string | null }> {
  const views = pools.map((p) => p.relays.snapshot());
  return views[0]!.map((r, i) => {
    const down = views.map((v) => v[i]!).find((x) => !x.up);
    return { url: relayDisplayUrl(r.url), up: !down, error: down ? down.lastError : null };
  });
}
