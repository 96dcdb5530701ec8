// The relay SOCKS5 lane, all on 127.0.0.1: `zks worker` (workerd), the forwarder in front of it, `zks exit-peer`
// and `zks p2p-client` (real CLI processes, as test/exit/resume-cli.test.ts runs them), and the traffic server.
//
//   driver ──SOCKS5──▶ p2p-client ──ws──▶ forwarder:client ─┐
//                                                          ├─▶ workerd (room) ;  exit-peer ──TCP/UDP──▶ traffic server
//                      exit-peer  ──ws──▶ forwarder:exit  ─┘
import { join } from 'node:path';
import { generateKey } from '../../src/cli/args';
import { forwarderKill, freePort, isolatedEnv, jsonLine, scriptArgv, type Lane } from './lane';
import { startChild, type Child } from './procs';
import type { Bin } from './snapshot';
import { emptyResumeLog, watchClient, watchExit } from './resume-log';

export const SOCKS_LANE = 'relay SOCKS5';

export async function startSocksLane(dir: string, bin: Bin): Promise<Lane> {
  const env = isolatedEnv(join(dir, 'socks-env'));
  const logFile = (name: string) => join(dir, `socks-${name}.log`);
  const started: Child[] = [];
  const start = (name: string, argv: string[]) => {
    const c = startChild(name, argv, { env, logFile: logFile(name) });
    started.push(c);
    return c;
  };
  const key = generateKey();
  const room = generateKey();
  const workerPort = await freePort();
  const startWorker = async () => {
    const w = start('worker', [process.execPath, bin.zks, 'worker', '--listen', `127.0.0.1:${workerPort}`, `--key=${key}`]);
    await w.waitLine(/zks worker ready on/, 60_000);
    return w;
  };
  const log = emptyResumeLog();
  try {
    let worker = await startWorker();
    const upstream = `127.0.0.1:${workerPort}`;
    const forwarder = start('forwarder', scriptArgv('forwarder.ts', {
      routes: [{ name: 'client', listen: '127.0.0.1:0', to: upstream }, { name: 'exit', listen: '127.0.0.1:0', to: upstream }],
    }));
    const forwarding = jsonLine<{ ports: { client: number; exit: number } }>(forwarder, 'ready', 30_000);
    const server = start('traffic-server', scriptArgv('traffic-server.ts', { host: '127.0.0.1' }));
    const serving = jsonLine<{ tcp: number; udp: number }>(server, 'ready', 30_000);
    const [{ ports }, served] = await Promise.all([forwarding, serving]);
    const exit = start('exit-peer', [process.execPath, bin.zks, 'exit-peer', '--relay', `ws://127.0.0.1:${ports.exit}`,
      `--key=${key}`, `--room=${room}`, '--allow-lan', '--no-direct']);
    watchExit(exit, log);
    await exit.waitLine(/zks exit-peer ready/, 60_000);
    const client = start('p2p-client', [process.execPath, bin.zks, 'p2p-client', '--relay', `ws://127.0.0.1:${ports.client}`,
      `--key=${key}`, `--room=${room}`, '--listen', '127.0.0.1:0', '--no-direct']);
    watchClient(client, log);
    const ready = await client.waitLine(/zks p2p-client ready on 127\.0\.0\.1:\d+/, 60_000);
    const socksPort = Number(/127\.0\.0\.1:(\d+)/.exec(ready)![1]);
    return {
      name: SOCKS_LANE,
      driverNs: undefined,
      socksPort,
      target: { host: '127.0.0.1', tcp: served.tcp, udp: served.udp },
      log,
      kill: (route) => forwarderKill(forwarder, route),
      async restartWorker() {
        const t0 = performance.now();
        await worker.stop(15_000);
        worker = await startWorker();
        return performance.now() - t0;
      },
      async stop() {
        // Clients first (a clean end of their sessions), then the rest.
        await client.stop();
        await exit.stop();
        await Promise.all(started.map((c) => c.stop()));
      },
    };
  } catch (e) {
    await Promise.all(started.map((c) => c.stop()));
    throw e;
  }
}
