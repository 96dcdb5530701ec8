// A real control server (src/control/server.ts, the daemon's own) serving scripted status and flows:
// the TUI under test speaks the real protocol over a real unix socket; only the numbers are made up.
// Requests are recorded; killswitch / route.add / flow.close behave like zksd's (bad CIDRs refused).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer, type ControlServer } from '../../src/control/server';
import { peerUid } from '../../src/daemon/tun/sockets';
import type { ControlCommand } from '../../src/control/protocol';
import { ZksError } from '../../src/errors/zks-error';

export interface ScriptedDaemon {
  readonly path: string;
  readonly dir: string;
  status: Record<string, unknown>;
  flows: Record<string, unknown>[];
  readonly requests: Array<{ cmd: ControlCommand; args: Record<string, unknown> }>;
  server: ControlServer | null;
  /** Pushes the current flows and status to subscribers, as zksd's tick does. */
  publish(): void;
  log(message: string): void;
  /** Stops listening (a daemon restart or crash); start() listens again on the same path. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export function zksdStatus(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pid: 4242, mode: 'direct', relay: 'wss://zks.example.workers.dev', relayEndpoints: ['104.21.1.1:443'], tun: 'zks0',
    killSwitch: true, bypass: ['192.168.0.0/16'], uptimeMs: 61_234,
    connections: [{ id: 1, streams: 3, rttMs: 21.4 }, { id: 2, streams: 0, rttMs: -1 }],
    flows: 2, bytesUp: 81_234, bytesDown: 9_912_345, rateUp: 1_200, rateDown: 2_450_000,
    ...over,
  };
}

export function flow(id: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id, protocol: 'tcp', source: `100.77.0.1:${41_000 + id}`, destination: '93.184.216.34:443', target: '93.184.216.34:443',
    path: 'worker', state: 'established', bytesUp: 812, bytesDown: 152_334, rateUp: 0, rateDown: 48_210, ageMs: 5_210, error: null,
    ...over,
  };
}

export async function scriptedDaemon(socketName = 'zksd.sock'): Promise<ScriptedDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'zks-tui-'));
  const d: ScriptedDaemon = {
    path: join(dir, socketName),
    dir,
    status: zksdStatus(),
    flows: [],
    requests: [],
    server: null,
    publish() {
      d.server?.publish('flows', d.flows);
      d.server?.publish('status', d.status);
    },
    log(message) {
      d.server?.publish('log', { at: Date.now(), message });
    },
    async stop() {
      await d.server?.close();
      d.server = null;
    },
    async start() {
      // Who asks, read as zksd reads it (the test runs as root: changes are allowed).
      d.server = await startControlServer(d.path, (cmd, args) => handle(cmd, args), { peerUid });
    },
    async destroy() {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const handle = (cmd: ControlCommand, args: Record<string, unknown>): unknown => {
    d.requests.push({ cmd, args });
    switch (cmd) {
      case 'status':
        return d.status;
      case 'flows':
        return d.flows;
      case 'killswitch':
        d.status = { ...d.status, killSwitch: args.on };
        return { killSwitch: args.on };
      case 'route.add': {
        const cidr = String(args.cidr);
        if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(cidr)) throw new ZksError('ZKS_ERR_CONFIG', `bad CIDR "${cidr}" (expected e.g. 10.0.0.0/8)`);
        const bypass = [...(d.status.bypass as string[]), cidr];
        d.status = { ...d.status, bypass };
        return { bypass };
      }
      case 'flow.close':
        if (!d.flows.some((f) => f.id === args.id)) throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `no live flow with id ${String(args.id)}`);
        d.flows = d.flows.filter((f) => f.id !== args.id);
        return { closed: args.id };
      default:
        throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `not scripted: ${cmd}`);
    }
  };
  await d.start();
  return d;
}
