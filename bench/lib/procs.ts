// Child processes for the benchmark and what /proc says about them. Every child is spawned detached (its own
// process group) and registered, so one kill of the group takes workerd/esbuild grandchildren along; exit,
// SIGINT, SIGTERM and errors all end every group we started. RSS comes from /proc/PID/status (VmRSS), CPU
// time from /proc/PID/stat (utime + stime, in clock ticks).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux
const KILL_GRACE_MS = 3_000;

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Last lines of stdout + stderr, for diagnostics. */
  lines: string[];
  /** Lines printed after the ready line (start-up chatter excluded); capped like `lines`. */
  afterReady: string[];
  exited: Promise<void>;
  kill(): Promise<void>;
}

const live = new Set<Proc>();

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

export function killAllSync(): void {
  for (const p of live) signalGroup(p.pid, 'SIGKILL');
  live.clear();
}

export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAllSync();
      process.exit(130);
    });
  }
}

/** Spawns `cmd args` in its own process group and resolves once a stdout/stderr line matches `ready`. */
export function spawnProc(
  name: string,
  cmd: string,
  args: string[],
  ready: RegExp,
  timeoutMs = 30_000,
): Promise<{ proc: Proc; match: RegExpMatchArray }> {
  installHooks();
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd() });
  const pid = child.pid;
  if (pid === undefined) return Promise.reject(new Error(`${name}: spawn failed`));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = {
    name,
    pid,
    child,
    lines: [],
    afterReady: [],
    exited,
    kill: async () => {
      if (!live.has(proc)) return;
      live.delete(proc);
      signalGroup(pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, KILL_GRACE_MS))]);
      signalGroup(pid, 'SIGKILL'); // stragglers in the group (workerd) even if the leader left
    },
  };
  live.add(proc);
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(new Error(`${name}: not ready within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void proc.kill();
      reject(new Error(`${err.message}\n  ${proc.lines.slice(-10).join('\n  ')}`));
    };
    const onChunk = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        proc.lines.push(line);
        if (proc.lines.length > 200) proc.lines.shift();
        if (done) {
          proc.afterReady.push(line);
          if (proc.afterReady.length > 200) proc.afterReady.shift();
        }
        const m = done ? null : line.match(ready);
        if (m) {
          done = true;
          clearTimeout(timer);
          resolve({ proc, match: m });
        }
      }
    };
    child.stdout!.on('data', onChunk);
    child.stderr!.on('data', onChunk);
    child.once('exit', (code, signal) => fail(new Error(`${name}: exited (${code ?? signal}) before it was ready`)));
  });
}

/** Resident set size in bytes, or NaN when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is parenthesised and may contain spaces: split after the last ')'. Index 0 = field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU seconds used so far. */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / CLOCK_TICKS : NaN;
}

/** Every live process: pid → its parent and command name. */
function processTable(): Map<number, { parent: number; name: string }> {
  const table = new Map<number, { parent: number; name: string }>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      table.set(pid, { parent: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), name });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

function descends(table: Map<number, { parent: number }>, pid: number, root: number): boolean {
  for (let p = table.get(pid)?.parent, hops = 0; p && hops < 8; p = table.get(p)?.parent, hops++) {
    if (p === root) return true;
  }
  return false;
}

/** First descendant of `root` whose command name is `comm` (e.g. the workerd under a Miniflare host). */
export function findDescendant(root: number, comm: string): number | null {
  const table = processTable();
  for (const [pid, { name }] of table) if (name === comm && descends(table, pid, root)) return pid;
  return null;
}

/** CPU seconds of `root` and its live descendants (sshd's per-connection children do its work). */
export function cpuSecondsTree(root: number): number {
  const table = processTable();
  let sum = cpuSeconds(root);
  for (const pid of table.keys()) if (descends(table, pid, root)) sum += cpuSeconds(pid) || 0;
  return sum;
}
