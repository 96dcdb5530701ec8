// The relay stack the UDP/ICMP tests share: the real Worker in workerd (private targets allowed, so loopback servers
// are reachable in direct mode), and per test a real ExitPeer attached to a fresh room with a TunnelPool client.
// useRelayStack() registers its own hooks: the Worker lives for the file, exits and pools for one test.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { encodeBase64Url } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys } from '../../src/crypto/room';
import { generateKey } from '../../src/cli/args';
import { ExitPeer, type ExitPeerOptions } from '../../src/exit/index';
import { TunnelPool } from '../../src/client/pool';

export interface RelayStack {
  readonly key: Uint8Array;
  /** The Worker's ws:// URL (valid once beforeAll ran). */
  readonly url: string;
  /** A new room: its exit peer (allowLan unless overridden) and a client pool; both closed after the test. */
  relay(exitOpts?: Partial<ExitPeerOptions>): Promise<{ pool: TunnelPool; exit: ExitPeer; secret: string; logs: string[] }>;
  /** A pool straight to the Worker (direct mode), closed after the test. */
  direct(): TunnelPool;
  /** Runs `fn` after the current test. */
  defer(fn: () => unknown): void;
}

export function useRelayStack(): RelayStack {
  const key = new Uint8Array(randomBytes(32));
  let worker: DevWorker | undefined;
  const cleanups: Array<() => unknown> = [];
  beforeAll(async () => {
    worker = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await worker?.dispose();
  });
  const stack: RelayStack = {
    key,
    get url() {
      if (!worker) throw new Error('the Worker is not up yet (use the stack inside a test)');
      return worker.url;
    },
    async relay(exitOpts = {}) {
      const secret = generateKey();
      const logs: string[] = [];
      const exit = await ExitPeer.start({ relay: stack.url, key, roomSecret: secret, allowLan: true, log: (l) => logs.push(l), ...exitOpts });
      cleanups.push(() => exit.close());
      const pool = new TunnelPool({ url: stack.url, key, room: await deriveRoomKeys(nodeCrypto, secret) });
      cleanups.push(() => pool.stop());
      return { pool, exit, secret, logs };
    },
    direct() {
      const pool = new TunnelPool({ url: stack.url, key });
      cleanups.push(() => pool.stop());
      return pool;
    },
    defer(fn) {
      cleanups.push(fn);
    },
  };
  return stack;
}
