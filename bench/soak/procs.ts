// The soak's child processes, on the host or inside a network namespace (`ip netns exec` execs the program, so the
// pid is the program's). Each leads its own process group, so stop() reaches its children (workerd under
// `zks worker`); every output line goes to a log file and to the listeners (counters, JSON events); the last lines
// stay in memory for error messages. killAllSync() runs on process exit: nothing we started outlives the soak.
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly exited: boolean;
  /** Every line so far is kept only for this many (the log file has them all). */
  readonly tail: string[];
  /** Calls `fn` for every later stdout/stderr line. */
  onLine(fn: (line: string, stream: 'out' | 'err') => void): void;
  /** Resolves with the first line matching `re` printed from now on (ask before it can come); rejects on exit or after timeoutMs. */
  waitLine(re: RegExp, timeoutMs: number): Promise<string>;
  send(line: string): void;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves once the leader has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const TAIL = 40;
const groups = new Set<number>();

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

export function killAllSync(): void {
  for (const pid of groups) killGroup(pid, 'SIGKILL');
  groups.clear();
}
process.on('exit', killAllSync);

export interface StartOptions {
  /** Network namespace to run in (host when absent). */
  ns?: string;
  env?: NodeJS.ProcessEnv;
  /** Appends every line here. */
  logFile?: string;
}

export function startChild(name: string, argv: string[], opts: StartOptions = {}): Child {
  const full = opts.ns ? ['ip', 'netns', 'exec', opts.ns, ...argv] : argv;
  const child = spawn(full[0]!, full.slice(1), { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: spawn failed`);
  groups.add(pid);
  const log: WriteStream | undefined = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const listeners = new Set<(line: string, stream: 'out' | 'err') => void>();
  const tail: string[] = [];
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('close', (code, signal) => {
    exited = true;
    groups.delete(pid);
    log?.end(`[soak] ${name} exited (${code ?? signal})\n`);
    for (const l of listeners) l('', 'err'); // wakes waiters
    resolve();
  }));
  for (const [stream, source] of [['out', child.stdout!], ['err', child.stderr!]] as const) {
    let partial = '';
    source.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        log?.write(`${stream === 'err' ? 'E ' : ''}${line}\n`);
        tail.push(line);
        if (tail.length > TAIL) tail.shift();
        for (const l of listeners) l(line, stream);
      }
    });
  }
  child.stdin!.on('error', () => {});
  const c: Child = {
    name,
    pid,
    get exited() {
      return exited;
    },
    tail,
    onLine: (fn) => void listeners.add(fn),
    waitLine: (re, timeoutMs) => new Promise((resolve, reject) => {
      const done = (err: Error | null, line?: string) => {
        clearTimeout(timer);
        listeners.delete(check);
        if (err) reject(err);
        else resolve(line!);
      };
      const fail = (why: string) => new Error(`${name} ${why} a line matching ${re}; last lines:\n  ${tail.join('\n  ')}`);
      const timer = setTimeout(() => done(fail(`waited ${timeoutMs} ms for`)), timeoutMs);
      function check(line: string): void {
        if (line && re.test(line)) done(null, line);
        else if (exited) done(fail('exited without'));
      }
      listeners.add(check);
      if (exited) check('');
    }),
    send: (line) => void (!exited && child.stdin!.write(`${line}\n`)),
    async stop(graceMs = 5000) {
      if (exited) return;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL'); // what outlived its leader
    },
  };
  return c;
}
