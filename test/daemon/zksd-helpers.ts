// Running zksd and the zks CLI inside a topology's client namespace, with their run/config dirs in the topology's
// temp dir (never /run/zks or /etc/zks), and a snapshot of everything `zksd down` must restore.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIn, type ExecResult, type NsProcess } from './topology-proc';
import { ADDR, PORTS, type Topology } from './topology';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = { zks: join(ROOT, 'bin/zks.js'), zksd: join(ROOT, 'bin/zksd.js') };

export interface ZksdProcess {
  readonly proc: NsProcess;
  readonly env: NodeJS.ProcessEnv;
  readonly runDir: string;
  readonly configDir: string;
  /** SIGTERM (a clean down) unless already gone. */
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  exited(timeoutMs?: number): Promise<void>;
  /** SIGKILLs the Worker (and its workerd) in the world namespace: the tunnel drops. */
  killWorker(): Promise<void>;
}

/** Everything `zksd up` may change in the client namespace, as one comparable text. */
export async function snapshotHost(topo: Topology): Promise<string> {
  const parts: string[] = [];
  for (const [cmd, args] of [
    ['ip', ['route', 'show', 'table', 'all']],
    ['ip', ['-6', 'route', 'show', 'table', 'all']],
    ['ip', ['rule']],
    ['ip', ['-6', 'rule']],
    ['ip', ['-br', 'link']],
    ['nft', ['list', 'ruleset']],
    ['cat', ['/etc/resolv.conf']],
  ] as const) {
    const r = await topo.exec('client', cmd, [...args]);
    // Kernel-maintained neighbour/cache lines and link state flags are not ours; the listings above have none.
    parts.push(`$ ${cmd} ${args.join(' ')}\n${r.stdout.toString()}${r.stderr}`);
  }
  return parts.join('\n');
}

export async function startZksd(topo: Topology, extra: string[]): Promise<ZksdProcess> {
  const runDir = join(topo.dir, 'zksd-run');
  const configDir = join(topo.dir, 'zksd-etc');
  mkdirSync(configDir, { recursive: true });
  const env = {
    ...process.env,
    ZKS_RUN_DIR: runDir,
    ZKS_ZKSD_CONFIG_DIR: configDir,
    ZKS_CONFIG_DIR: join(topo.dir, 'zks-config'),
  };
  const proc = startIn(topo.ns.client, 'zksd', [
    process.execPath, BIN.zksd, 'up', '--foreground', '--relay', topo.relayUrl!, '--key', topo.key!,
    '--dns-upstream', `${ADDR.world}:${PORTS.dns}`, ...extra,
  ], env);
  await proc.waitLine(/^zksd up:/, 45_000);
  const worldPids = async (re: RegExp): Promise<number[]> => {
    const { execFileSync } = await import('node:child_process');
    const pids = execFileSync('ip', ['netns', 'pids', topo.ns.world]).toString().split('\n').filter(Boolean).map(Number);
    return pids.filter((pid) => {
      try {
        return re.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {
        return false;
      }
    });
  };
  const exited = async (timeoutMs = 15_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!proc.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!proc.exited) throw new Error('zksd did not exit');
  };
  return {
    proc,
    env,
    runDir,
    configDir,
    stop: () => proc.stop(5_000),
    async kill(signal) {
      proc.signal(signal);
      await exited();
    },
    exited,
    async killWorker() {
      for (const pid of await worldPids(/zks\.js worker|workerd/)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** `zks …` (or `zksd …`) in the client namespace with the daemon's run/config dirs. */
export function zksIn(topo: Topology, zksd: ZksdProcess, args: string[], bin: 'zks' | 'zksd' = 'zks'): Promise<ExecResult> {
  return topo.exec('client', process.execPath, [BIN[bin], ...args], { env: zksd.env, timeoutMs: 30_000 });
}
