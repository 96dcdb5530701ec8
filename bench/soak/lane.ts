// A lane is one relay-mode path the soak drives traffic through, with what the chaos needs from it: the relay
// SOCKS5 lane (zks p2p-client on the host) and the zksd lane (a namespace topology). Both put a forwarder
// (forwarder.ts) between their relay clients and workerd, named routes `client` and `exit`. Also the helpers both
// use to start the soak's own scripts and to wait for their JSON lines.
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from './flows';
import type { Child } from './procs';
import type { ResumeLog } from './resume-log';

export type KillRoute = 'all' | 'client' | 'exit';

export interface Lane {
  readonly name: string;
  /** Where the driver runs: a namespace (zksd lane) or the host. */
  readonly driverNs: string | undefined;
  readonly socksPort: number | undefined;
  readonly target: Target;
  readonly log: ResumeLog;
  /** Resets the forwarded WebSockets of `route`; resolves with how many TCP pairs were cut. */
  kill(route: KillRoute): Promise<number>;
  /** Stops workerd and starts it again on the same address; resolves with the ms it was away. */
  restartWorker(): Promise<number>;
  /** The lane's client as it reports its own memory (zksd's status: RSS, V8 heap, Buffers), MB; null if it cannot. */
  memory?(): Promise<{ rssMB: number; heapMB: number; externalMB: number } | null>;
  stop(): Promise<void>;
}

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = (name: string) => join(ROOT, 'bench/soak', name);

/** argv for one of the soak's own scripts (forwarder.ts, traffic-server.ts, driver.ts) with a JSON argument. */
export function scriptArgv(name: 'forwarder.ts' | 'traffic-server.ts' | 'driver.ts', arg: unknown): string[] {
  return [process.execPath, '--import', 'tsx', SCRIPT(name), JSON.stringify(arg)];
}

/** Private config/run dirs for the zks processes of a lane: never the user's saved settings or sockets. */
export function isolatedEnv(dir: string): NodeJS.ProcessEnv {
  const env = { ZKS_CONFIG_DIR: join(dir, 'config'), XDG_RUNTIME_DIR: join(dir, 'xdg'), ZKS_RUN_DIR: join(dir, 'run') };
  mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 }); // the others each program makes itself
  return { ...process.env, ...env };
}

/** Waits for a JSON line that has `key` and returns it parsed. */
export async function jsonLine<T>(c: Child, key: string, timeoutMs: number): Promise<T> {
  return JSON.parse(await c.waitLine(new RegExp(`^\\{.*"${key}"`), timeoutMs)) as T;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Sends a kill to a forwarder and resolves with its count. */
export async function forwarderKill(forwarder: Child, route: KillRoute): Promise<number> {
  const reply = jsonLine<{ killed: number }>(forwarder, 'killed', 5000);
  forwarder.send(`kill ${route}`);
  return (await reply).killed;
}
