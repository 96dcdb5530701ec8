// The zksd lane, in test/daemon/topology.ts's namespaces (root only): the topology's `zks worker` in world, and
// ours beside it — the forwarder, `zks exit-peer` and the traffic server on world's tunnel-only address — and zksd
// (relay mode, --room) in client, where the driver's plain sockets go into zksd's TUN and through our netstack.
//
//   client ns: driver ──TUN──▶ zksd ──ws──▶ world ns: forwarder:client (10.79.0.1:8788) ─┐
//                                                                                        ├─▶ workerd 10.79.0.1:8787
//              world ns:        exit-peer ──ws──▶ forwarder:exit (10.79.0.1:8789) ──────┘
//              exit-peer ──TCP/UDP──▶ traffic server on 10.79.1.1 (refused from the client veth: tunnel only)
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client';
import { generateKey } from '../../src/cli/args';
import { ADDR, PORTS, createTopology, type Topology } from '../../test/daemon/topology';
import { forwarderKill, isolatedEnv, jsonLine, scriptArgv, type Lane } from './lane';
import { startChild, type Child } from './procs';
import type { Bin } from './snapshot';
import { emptyResumeLog, watchClient, watchExit } from './resume-log';

export const ZKSD_LANE = 'zksd';
const FORWARD = { client: 8788, exit: 8789 } as const;

export function zksdRunnable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (zksd needs a TUN and network namespaces)';
  if (process.platform !== 'linux') return 'not Linux';
  return null;
}

export async function startZksdLane(dir: string, bin: Bin): Promise<Lane> {
  let topo: Topology | undefined;
  const started: Child[] = [];
  const logFile = (name: string) => join(dir, `zksd-${name}.log`);
  const log = emptyResumeLog();
  const stopAll = async () => {
    // zksd first: a clean `down` restores the client namespace; the topology removes the rest.
    for (const c of [...started].reverse()) await c.stop(8000);
    await topo?.destroy();
  };
  try {
    topo = await createTopology({ worker: true, exitPeer: false, http: false, iperf: false, ssh: false });
    const t = topo;
    const env = isolatedEnv(join(t.dir, 'zks-env'));
    const start = (name: string, ns: string, argv: string[], extraEnv: NodeJS.ProcessEnv = env) => {
      const c = startChild(name, argv, { ns, env: extraEnv, logFile: logFile(name) });
      started.push(c);
      return c;
    };
    const upstream = `${ADDR.world}:${PORTS.worker}`;
    const forwarder = start('forwarder', t.ns.world, scriptArgv('forwarder.ts', {
      routes: [{ name: 'client', listen: `${ADDR.world}:${FORWARD.client}`, to: upstream }, { name: 'exit', listen: `${ADDR.world}:${FORWARD.exit}`, to: upstream }],
    }));
    const forwarding = jsonLine(forwarder, 'ready', 30_000);
    const server = start('traffic-server', t.ns.world, scriptArgv('traffic-server.ts', { host: ADDR.tunnelOnly }));
    const serving = jsonLine<{ tcp: number; udp: number }>(server, 'ready', 30_000);
    const [, served] = await Promise.all([forwarding, serving]);
    const room = generateKey();
    const exit = start('exit-peer', t.ns.world, [process.execPath, bin.zks, 'exit-peer', '--relay', `ws://${ADDR.world}:${FORWARD.exit}`,
      `--key=${t.key}`, `--room=${room}`, '--allow-lan', '--no-direct']);
    watchExit(exit, log);
    await exit.waitLine(/zks exit-peer ready/, 60_000);
    const zksdEnv = { ...env, ZKS_RUN_DIR: join(t.dir, 'zksd-run'), ZKS_ZKSD_CONFIG_DIR: join(t.dir, 'zksd-etc') };
    const zksd = start('zksd', t.ns.client, [process.execPath, bin.zksd, 'up', '--foreground', '--relay', `ws://${ADDR.world}:${FORWARD.client}`,
      `--key=${t.key}`, `--room=${room}`, '--dns-upstream', `${ADDR.world}:${PORTS.dns}`], zksdEnv);
    watchClient(zksd, log);
    await zksd.waitLine(/^zksd up:/, 60_000);
    return {
      name: ZKSD_LANE,
      driverNs: t.ns.client,
      socksPort: undefined,
      target: { host: ADDR.tunnelOnly, tcp: served.tcp, udp: served.udp },
      log,
      kill: (route) => forwarderKill(forwarder, route),
      // Its own figures, over its control socket: is a growth in RSS in the JS heap, in Buffers, or outside both?
      async memory() {
        const c = await ControlClient.connect(join(zksdEnv.ZKS_RUN_DIR, 'zksd.sock'), 2_000).catch(() => null);
        if (!c) return null;
        try {
          const s = await c.status();
          return 'memory' in s && s.memory ? s.memory : null;
        } catch {
          return null;
        } finally {
          c.close();
        }
      },
      async restartWorker() {
        const t0 = performance.now();
        await t.restartWorker();
        return performance.now() - t0;
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
