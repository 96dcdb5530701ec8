// The control socket of `zks socks5` / `zks p2p-client`, so `zks-tui` and `zks flows` work without zksd: the
// same protocol (docs/CONTROL.md) with the subset that makes sense for a proxy — status, flows, flow.close and
// subscriptions. It is the user's own: 0600 in a 0700 directory under $XDG_RUNTIME_DIR (or /tmp/zks-<uid>).

import { ZksError } from '../protocol/errors';
import { roomLabel } from '../crypto/room';
import { ControlClient } from '../daemon/control/client';
import { startControlServer, type ControlServer } from '../daemon/control/server';
import type { TunnelPool } from './pool';
import type { ClientFlowTable } from './flow-table';

export function clientControlPath(): string {
  const base = process.env.XDG_RUNTIME_DIR || '/tmp';
  return `${base}/zks-${process.getuid?.() ?? 0}/client.sock`;
}

export interface ClientControlOptions {
  mode: 'socks5' | 'p2p-client';
  relay: string;
  listen: string;
  pool: TunnelPool;
  flows: ClientFlowTable;
  /** p2p-client: the room's public id (its label and exit-peer presence go into status). */
  roomId?: Uint8Array;
  path?: string;
  log: (line: string) => void;
}

export interface ClientControl {
  readonly path: string;
  close(): Promise<void>;
}

/** Starts the socket, or returns null (with a log line) when another running client already owns it. */
export async function startClientControl(o: ClientControlOptions): Promise<ClientControl | null> {
  const path = o.path ?? clientControlPath();
  const other = await ControlClient.connect(path, 500).catch(() => null);
  if (other) {
    other.close();
    o.log(`control socket ${path} belongs to another running zks client: this one has none (zks-tui shows the other)`);
    return null;
  }
  const startedAt = Date.now();
  const url = new URL(o.relay);
  const status = () => ({
    pid: process.pid,
    mode: o.mode,
    relay: `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`,
    listen: o.listen,
    killSwitch: null,
    room: o.roomId ? roomLabel(o.roomId) : null,
    exitPeer: o.roomId ? o.pool.connections.length > 0 : null,
    uptimeMs: Date.now() - startedAt,
    connections: o.pool.connections.map((c) => ({ id: c.id, streams: c.mux.streams.size, rttMs: c.mux.rttMs })),
    flows: o.flows.count,
    ...o.flows.totals(),
    rateUp: Math.round(o.flows.totalRate.upRate),
    rateDown: Math.round(o.flows.totalRate.downRate),
  });
  let server: ControlServer | null = null;
  server = await startControlServer(path, (cmd, args) => {
    switch (cmd) {
      case 'status':
        return status();
      case 'flows':
        return o.flows.flows(args.closed === true);
      case 'flow.close': {
        if (typeof args.id !== 'number') throw new ZksError('ZKS_ERR_CONTROL_REQUEST', 'flow.close needs args.id (a flow id from `flows`)');
        if (!o.flows.close(args.id)) throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `no live flow with id ${args.id}`);
        server?.publish('log', { at: Date.now(), message: `flow ${args.id} closed by the operator` });
        return { closed: args.id };
      }
      case 'subscribe':
      case 'unsubscribe':
        return null; // answered by the control server
      default:
        throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `${cmd} is not available in ${o.mode} mode (it is a zksd command)`);
    }
  }, { access: 'user' });
  let ticks = 0;
  const ticker = setInterval(() => {
    o.flows.sampleRates(performance.now());
    if (server!.subscribers('flows') > 0) server!.publish('flows', o.flows.flows(true));
    if (++ticks % 4 === 0 && server!.subscribers('status') > 0) server!.publish('status', status());
  }, 250);
  ticker.unref();
  return {
    path,
    async close() {
      clearInterval(ticker);
      await server!.close();
    },
  };
}
