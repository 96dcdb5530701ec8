// Runs the host tools this layer drives (ip, nft, resolvectl, scripts/setup-routes.sh): execFile without a shell,
// a timeout on every call, stdin when given. `netns` (tests) wraps the command in `ip netns exec NS` so nothing
// reaches the host's own network configuration.

import { execFile } from 'node:child_process';
import { ZksError } from '../../errors/zks-error';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  netns?: string;
  timeoutMs?: number;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, cmd, ...args] : [cmd, ...args];
  return new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: opts.timeoutMs ?? 15_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        let code = 0;
        let errText = String(stderr);
        if (err) {
          const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
          if (e.code === 'ENOENT') errText = `${argv[0]}: command not found (install it, and run as root)`;
          else if (e.killed) errText += `\n(killed after ${opts.timeoutMs ?? 15_000} ms)`;
          code = typeof e.code === 'number' ? e.code : 127;
        }
        resolve({ code, stdout: String(stdout), stderr: errText });
      });
    child.stdin?.on('error', () => {}); // the tool may exit before reading stdin; its exit code tells
    child.stdin?.end(opts.input ?? '');
  });
}

/** As run, but a non-zero exit becomes ZksError('ZKS_ERR_SYSTEM') naming the command and its stderr. */
export async function must(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw systemError(`${cmd} ${args.join(' ')}`, r.stderr);
  return r.stdout;
}

export function systemError(what: string, detail: string): ZksError {
  const why = detail.trim().split('\n').slice(0, 6).join('; ') || 'failed';
  return new ZksError('ZKS_ERR_SYSTEM', `${what}: ${why}`);
}
