// Network namespaces for TUN tests: each test gets a fresh `zkstun-<random>` namespace, puts its TUN device there
// and uses only addresses inside it (10.77.0.0/24). The host's routes and firewall are never touched; every
// namespace is deleted in afterEach/finally, which also destroys any device still inside it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

export const randomIfName = (): string => `zt${randomBytes(5).toString('hex')}`; // 12 bytes < IFNAMSIZ

export interface Netns {
  readonly name: string;
  /** `ip -n <ns> …` */
  ip(...args: string[]): Promise<string>;
  /** Starts `node -e script` inside the namespace; `lines` collects its stdout lines. */
  node(script: string, args?: string[]): NodeChild;
  del(): Promise<void>;
}

export interface NodeChild {
  readonly proc: ChildProcess;
  readonly lines: string[];
  stderr(): string;
  /** Resolves with the first stdout line matching `re`; rejects after `timeoutMs`. */
  waitLine(re: RegExp, timeoutMs?: number): Promise<string>;
  exited(timeoutMs?: number): Promise<number | null>;
  kill(): void;
}

const live = new Set<string>();

export async function createNetns(): Promise<Netns> {
  const name = `zkstun-${randomBytes(4).toString('hex')}`;
  await must('ip', ['netns', 'add', name]);
  live.add(name);
  const children: NodeChild[] = [];
  const ns: Netns = {
    name,
    ip: (...args) => must('ip', ['-n', name, ...args]),
    node(script, args = []) {
      const child = spawnNode(['ip', 'netns', 'exec', name, process.execPath, '-e', script, ...args]);
      children.push(child);
      return child;
    },
    async del() {
      for (const c of children) c.kill();
      if (!live.delete(name)) return;
      await run('ip', ['netns', 'del', name]);
    },
  };
  await ns.ip('link', 'set', 'dev', 'lo', 'up');
  return ns;
}

/** Deletes every namespace this process created and has not deleted yet (afterAll safety net). */
export async function deleteAllNetns(): Promise<void> {
  for (const name of [...live]) {
    live.delete(name);
    await run('ip', ['netns', 'del', name]);
  }
}

export function spawnNode(argv: string[], env?: NodeJS.ProcessEnv): NodeChild {
  const [cmd, ...args] = argv;
  const proc = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  const lines: string[] = [];
  let err = '';
  let partial = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  exit.then(() => {
    if (partial) lines.push(partial);
    partial = '';
    for (const w of waiters.splice(0)) w();
  });
  let done = false;
  void exit.then(() => (done = true));
  return {
    proc,
    lines,
    stderr: () => err,
    waitLine(re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; ` +
          `stdout: ${lines.join('|')} stderr: ${err}`)), timeoutMs);
        const check = (): void => {
          const hit = lines.find((l) => re.test(l));
          if (hit !== undefined) {
            clearTimeout(timer);
            resolve(hit);
          } else if (done) {
            clearTimeout(timer);
            reject(new Error(`process exited without a line matching ${re}; stdout: ${lines.join('|')} stderr: ${err}`));
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
    exited(timeoutMs = 10_000) {
      return Promise.race([
        exit,
        new Promise<number | null>((_, reject) => setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms; stderr: ${err}`)), timeoutMs)),
      ]);
    },
    kill() {
      if (!done) proc.kill('SIGKILL');
    },
  };
}
