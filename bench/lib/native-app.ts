// The tunnel clients' CPU per GB with a native application on the SOCKS5 port (OpenBSD netcat, `nc -X 5`), as a
// user's curl or ssh would be, with `ssh -D` (OpenSSH, AES-GCM) measured beside ours in the same rounds as the
// baseline. Download: nc reads the origin's endless stream and `head` stops it after `bytes`. Upload: `bytes` of
// zeros to the origin's greet server, which reads everything and closes once nc has shut down its side (-N).
//
// Pinned like ../shared/bench/bench-peers.sh (two 1-core machines on a 2-core box): the "client host" CPU 0 runs
// nc, head and each tunnel's client process; the "server host" CPU 1 runs workerd, the exit peer, sshd and the
// origin. Unpinned, the scheduler's placement moved the client's CPU-s/GB by up to 2.5x between runs.
// Each figure is the median of the rounds' CPU-s/GB; configurations alternate within a round.

import { spawn, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { cpuSeconds, cpuSecondsTree } from './procs';
import type { CpuRow } from './report';

export interface NativeConfig {
  name: string;
  socksPort: number;
  /** label → pid; `client` labels run on the client CPU, the rest on the server CPU. */
  pids: Record<string, number>;
  clientLabels: string[];
  /** Labels whose CPU is summed over their process tree (sshd's session children). */
  treeLabels?: string[];
}

/** Whether an OpenBSD netcat with SOCKS5 (-X 5 -x) is installed (Debian's netcat-openbsd). */
export function hasNativeApp(): boolean {
  const r = spawnSync('nc', ['-h'], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.includes('OpenBSD') && `${r.stdout}${r.stderr}`.includes('-X');
}

function sh(script: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`\`${script}\` failed (${signal ?? code}): ${err.trim().slice(0, 300)}`));
    });
  });
}

/** Whether the client/server CPU split is possible (2+ CPUs and util-linux taskset). */
function canPin(): boolean {
  return cpus().length >= 2 && !spawnSync('taskset', ['-V'], { stdio: 'ignore' }).error;
}

/** Moves every thread of `pid` to `cpu`; false when taskset refused (the process is gone). */
function pin(pid: number, cpu: number): boolean {
  return Number.isFinite(pid) && spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0;
}

/** Moves `bytes` through the SOCKS5 proxy on `socksPort`: from the download origin, or to the greet origin. */
export async function nativeTransfer(
  kind: 'down' | 'up', socksPort: number, originPort: number, bytes: number, timeoutMs = 120_000, cpu?: number,
): Promise<void> {
  const on = cpu === undefined ? '' : `taskset -c ${cpu} `;
  const nc = `${on}nc -X 5 -x 127.0.0.1:${socksPort}`;
  if (kind === 'down') return sh(`${nc} 127.0.0.1 ${originPort} | ${on}head -c ${bytes} > /dev/null`, timeoutMs);
  return sh(`${on}head -c ${bytes} /dev/zero | ${nc} -N 127.0.0.1 ${originPort} > /dev/null`, timeoutMs);
}

export interface NativeCpuOptions {
  bytes: number;
  rounds: number;
  ports: { download: number; greet: number };
  /** Server-side processes that belong to no configuration (the origin). */
  serverPids: number[];
  log(line: string): void;
}

function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

/** CPU-s/GB per process and direction (median over rounds); failures become diagnostics, never figures. */
export async function measureNativeCpu(configs: NativeConfig[], opts: NativeCpuOptions): Promise<{ rows: CpuRow[]; diagnostics: string[]; pinned: boolean }> {
  const diagnostics: string[] = [];
  const pinned = canPin();
  if (!pinned) diagnostics.push('native-application CPU rows unpinned (needs 2 CPUs and taskset): expect more spread between runs');
  else {
    for (const c of configs) for (const [label, pid] of Object.entries(c.pids)) pin(pid, c.clientLabels.includes(label) ? 0 : 1);
    for (const pid of opts.serverPids) pin(pid, 1);
  }
  const gb = opts.bytes / 1e9;
  const perRound = new Map<string, { down: number[]; up: number[] }>(); // `${config}\0${label}`
  const snapshot = (c: NativeConfig) =>
    Object.fromEntries(Object.entries(c.pids).map(([l, pid]) => [l, c.treeLabels?.includes(l) ? cpuSecondsTree(pid) : cpuSeconds(pid)]));
  for (let round = 0; round < opts.rounds; round++) {
    for (const c of configs) {
      for (const kind of ['down', 'up'] as const) {
        opts.log(`native application (nc) ${kind} ${gb} GB round ${round + 1}/${opts.rounds}: ${c.name}`);
        const before = snapshot(c);
        const port = kind === 'down' ? opts.ports.download : opts.ports.greet;
        try {
          await nativeTransfer(kind, c.socksPort, port, opts.bytes, 120_000, pinned ? 0 : undefined);
        } catch (err) {
          diagnostics.push(`${c.name} nc ${kind} round ${round + 1}: ${(err as Error).message}`);
          continue;
        }
        const after = snapshot(c);
        for (const label of Object.keys(c.pids)) {
          const key = `${c.name}\0${label}`;
          const entry = perRound.get(key) ?? { down: [], up: [] };
          entry[kind].push((after[label] - before[label]) / gb);
          perRound.set(key, entry);
        }
      }
    }
  }
  const rows = [...perRound.entries()].map(([key, e]) => {
    const [config, label] = key.split('\0');
    return { process: label, config, downCpuSecPerGB: median(e.down), upCpuSecPerGB: median(e.up) };
  });
  return { rows, diagnostics, pinned };
}
