// `npm start` / `zks start`: the whole local stack in one process: the relay Worker in workerd (Miniflare API),
// a local resolver for it, a small demo HTTP origin, and `zks socks5` connected to the Worker. Prints `ready`.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDevWorker, type DevWorker } from './dev-worker';
import { startLocalResolver, type LocalResolver } from './local-resolver';
import { startSocksClient, type SocksClient } from '../proxy/socks-client';
import { generateKey, parseKey } from './args';
import { deriveRoomKeys } from '../crypto/room';
import { nodeCrypto } from '../crypto/node';
import { ExitPeer } from '../exit';

export interface LocalStackOptions {
  /** direct: the Worker connects to targets; relay: Worker room + a local exit peer, end-to-end encrypted. */
  mode?: 'direct' | 'relay';
  key?: string;
  roomSecret?: string;
  workerHost?: string;
  workerPort?: number;
  socksHost?: string;
  socksPort?: number;
  demo?: boolean;
  maxStreams?: number;
  hostsOnly?: boolean;
  /** Serve the proxy's control socket (zks-tui); the CLI turns it on, tests leave it off. */
  control?: boolean;
  log?: (line: string) => void;
}

export interface LocalStack {
  mode: 'direct' | 'relay';
  key: string;
  roomSecret: string | null;
  exit: ExitPeer | null;
  worker: DevWorker;
  socks: SocksClient;
  demoUrl: string | null;
  close(): Promise<void>;
}

function startDemoOrigin(): Promise<Server> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from the demo origin, reached through ZKS-Tunnel (${req.method} ${req.url})\n`);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const key = opts.key ?? generateKey();
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const resolver: LocalResolver = await startLocalResolver({ hostsOnly: opts.hostsOnly });
    cleanups.push(() => resolver.close());
    const worker = await startDevWorker({
      key,
      host: opts.workerHost ?? '127.0.0.1',
      port: opts.workerPort ?? 8787,
      allowPrivateTargets: true,
      dohUrl: resolver.url,
      maxStreams: opts.maxStreams,
    });
    cleanups.push(() => worker.dispose());
    let demoUrl: string | null = null;
    if (opts.demo !== false) {
      const demo = await startDemoOrigin();
      cleanups.push(() => new Promise((r) => demo.close(() => r())));
      demoUrl = `http://127.0.0.1:${(demo.address() as AddressInfo).port}/`;
    }
    const mode = opts.mode ?? 'direct';
    let exit: ExitPeer | null = null;
    let roomSecret: string | null = null;
    if (mode === 'relay') {
      roomSecret = opts.roomSecret ?? generateKey();
      // The local exit peer may reach this machine's services (the demo origin): --allow-lan semantics.
      exit = await ExitPeer.start({ relay: worker.url, key: parseKey(key), roomSecret, allowLan: true, log: opts.log });
      const started = exit;
      cleanups.push(() => started.close());
    }
    const socks = await startSocksClient({
      relay: worker.url,
      key: parseKey(key),
      room: roomSecret ? await deriveRoomKeys(nodeCrypto, roomSecret) : undefined,
      listenHost: opts.socksHost ?? '127.0.0.1',
      listenPort: opts.socksPort ?? 1080,
      maxStreamsPerConnection: opts.maxStreams,
      log: opts.log,
      control: opts.control,
    });
    cleanups.push(() => socks.close());
    return {
      mode,
      key,
      roomSecret,
      exit,
      worker,
      socks,
      demoUrl,
      close: async () => {
        for (const c of cleanups.reverse()) await c().catch(() => {});
      },
    };
  } catch (err) {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw err;
  }
}
