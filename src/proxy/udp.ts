// SOCKS5 UDP ASSOCIATE for `zks socks5` / `zks p2p-client`: each association relays through one datagram flow of
// the tunnel (relay mode: through the room to an exit peer that relays UDP). Where the path carries no UDP — the
// Worker, or an exit peer without Capability.UDP — the association still succeeds so DNS works: a DnsOnlyFlow
// answers port 53 as DNS-over-TCP and refuses the rest with a log line that says how to get UDP.

import { formatTarget, type Target } from '../protocol/address';
import { ConnectResult } from '../protocol/constants';
import type { DatagramDialer } from '../protocol/datagram-types';
import { ZksError } from '../errors/zks-error';
import type { Dialer } from '../client/dialer';
import { DnsOnlyFlow, type NoUdpCounters } from '../client/dns-only-flow';
import { newSocksUdpStats, type SocksUdpStats, type UdpAssociateOutcome } from '../socks';

/** One object for `zks status --json`: the associations' counters and the no-UDP path's. */
export type ProxyUdpStats = SocksUdpStats & NoUdpCounters;

export function newProxyUdpStats(): ProxyUdpStats {
  return { ...newSocksUdpStats(), dnsOverTcp: 0, refusedNoUdp: 0 };
}

/**
 * The counters as one flat record for `status` (docs/CONTROL.md style, like zksd's `udp`): each drop reason
 * becomes dropped<Reason> ('foreign-source' → droppedForeignSource).
 */
export function proxyUdpCounters(stats: ProxyUdpStats): Record<string, number> {
  const { dropped, ...totals } = stats;
  const out: Record<string, number> = { ...totals };
  for (const [reason, n] of Object.entries(dropped)) {
    out[`dropped${reason.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`] = n;
  }
  return out;
}

/** What opening a flow needs; TunnelPool implements DatagramDialer. */
export type DatagramOpener = Pick<DatagramDialer, 'openDatagramFlow'>;

export interface UdpAssociateOptions {
  datagrams: DatagramOpener;
  /** Opens the DNS-over-TCP streams when the path carries no UDP. */
  dialer: Dialer;
  /** p2p-client (through a room) or socks5 (the Worker): decides what the refusal tells the user. */
  relayMode: boolean;
  stats: ProxyUdpStats;
  log(line: string): void;
}

export function udpAssociateVia(o: UdpAssociateOptions): () => Promise<UdpAssociateOutcome> {
  const refusal = o.relayMode
    ? (t: Target) => `UDP to ${formatTarget(t)} cannot go through this room: its exit peer does not relay UDP `
      + '(started with --no-udp, or older than UDP support). Only DNS (port 53) is answered, over TCP'
    : (t: Target) => `UDP to ${formatTarget(t)} needs an exit peer (relay mode: zks p2p-client --room …); `
      + 'the Worker cannot send UDP. Only DNS (port 53) is answered, over TCP';
  return async () => {
    const flow = await o.datagrams.openDatagramFlow();
    if (!(flow instanceof ZksError)) return { ok: true, flow };
    if (flow.code !== 'ZKS_ERR_UNSUPPORTED') {
      return { ok: false, code: ConnectResult.GENERAL_FAILURE, message: flow.message };
    }
    return { ok: true, flow: new DnsOnlyFlow({ dialer: o.dialer, refusal, counters: o.stats, log: o.log }) };
  };
}
