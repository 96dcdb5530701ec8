// Processes inside network namespaces for the test topology: one-shot commands (execIn) and long-running
// services (startIn). Every child leads its own process group (`ip netns exec` execs the program, keeping the
// pid), so stop() reaches its children too (workerd under `zks worker`). killAllSync() is the exit-time net.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

export interface ExecOptions {
  /** SIGKILL to the whole group after this long (default 30 s); the result then has code -1. */
  timeoutMs?: number;
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
}

const groups = new Set<number>();

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

/** Runs `cmd args` in namespace `ns` (no shell; '' = this process's namespace) and collects its output. */
export function execIn(ns: string, cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const argv = ns ? ['ip', 'netns', 'exec', ns, cmd, ...args] : [cmd, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'pipe', env: opts.env ?? process.env });
    groups.add(child.pid!);
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      groups.delete(child.pid!);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err, ms: Date.now() - t0 });
    });
    child.on('error', (e) => (err += String(e)));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input);
  });
}

export interface NsProcess {
  readonly pid: number;
  readonly name: string;
  readonly lines: string[];
  stderr(): string;
  /** Resolves with the first stdout line at index ≥ `from` that matches; rejects on exit or after timeoutMs. */
  waitLine(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Resolves once stderr so far matches `re` (e.g. tcpdump's "listening on"). */
  waitStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Writes one line to its stdin. */
  send(line: string): void;
  signal(sig: NodeJS.Signals): void;
  readonly exited: boolean;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves once the process has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-running program in namespace `ns`. */
export function startIn(ns: string, name: string, argv: string[], env?: NodeJS.ProcessEnv): NsProcess {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, ...argv], { detached: true, stdio: 'pipe', env: env ?? process.env });
  const pid = child.pid!;
  groups.add(pid);
  const lines: string[] = [];
  let err = '';
  let partial = '';
  let exited = false;
  const wake = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of wake) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const w of wake) w();
  });
  child.stdin!.on('error', () => {});
  const exit = new Promise<void>((resolve) => child.on('close', () => {
    exited = true;
    groups.delete(pid);
    if (partial) lines.push(partial);
    for (const w of wake) w();
    resolve();
  }));
  /** Resolves with probe()'s first defined value, re-checked on every output; rejects on exit or timeout. */
  const until = <T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const fail = (why: string) => new Error(`${name} ${why} ${what}; stdout: ${lines.join('|')} stderr: ${err}`);
      const timer = setTimeout(() => {
        wake.delete(check);
        reject(fail(`waited ${timeoutMs} ms for`));
      }, timeoutMs);
      function check(): void {
        const v = probe();
        if (v === undefined && !exited) return;
        clearTimeout(timer);
        wake.delete(check);
        if (v !== undefined) resolve(v);
        else reject(fail('exited without'));
      }
      wake.add(check);
      check();
    });
  return {
    pid,
    name,
    lines,
    stderr: () => err,
    get exited() {
      return exited;
    },
    waitLine(re, timeoutMs = 15_000, from = 0) {
      const hit = () => lines.slice(from).find((l) => re.test(l));
      return until(hit, timeoutMs, `a line matching ${re}`);
    },
    async waitStderr(re, timeoutMs = 15_000) {
      await until(() => (re.test(err) ? err : undefined), timeoutMs, `stderr matching ${re}`);
    },
    send(line) {
      child.stdin!.write(`${line}\n`);
    },
    signal(sig) {
      if (!exited) process.kill(pid, sig);
    },
    async stop(graceMs = 3000) {
      if (exited) return;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL'); // children that outlived their leader
    },
  };
}

/** SIGKILL to every group still running (process 'exit' handler: synchronous only). */
export function killAllSync(): void {
  for (const pid of groups) killGroup(pid, 'SIGKILL');
  groups.clear();
}
