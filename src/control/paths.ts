// Where the control sockets live. zksd: /run/zks/zksd.sock (ZKS_RUN_DIR overrides the directory, which also holds
// its state file and log). The proxies (`zks socks5` / `zks p2p-client`): one per user, 0600 in a 0700 directory
// under $XDG_RUNTIME_DIR (or /tmp/zks-<uid>). zks, zksd, the proxies and zks-tui all take the paths from here;
// run-dir.ts makes and checks those directories.

export const DEFAULT_RUN_DIR = '/run/zks';

/** The run directory (control socket, state file, log); ZKS_RUN_DIR overrides /run/zks. */
export function runDir(): string {
  return process.env.ZKS_RUN_DIR || DEFAULT_RUN_DIR;
}

/** zksd's control socket. */
export function controlSocketPath(): string {
  return `${runDir()}/zksd.sock`;
}

/** The control socket of the user's running proxy (`zks socks5` / `zks p2p-client`): no root needed to watch it. */
export function proxyControlPath(): string {
  return `${userControlDir()}/client.sock`;
}

/** The user's private directory of control sockets (the proxy's and every exposed tunnel's). */
export function userControlDir(): string {
  const base = process.env.XDG_RUNTIME_DIR || '/tmp';
  return `${base}/zks-${process.getuid?.() ?? 0}`;
}

/** The control socket of the agent exposing tunnel `id` (`zks expose http://…`): one per tunnel, the user's own. */
export function exposeControlPath(id: string): string {
  return `${userControlDir()}/expose-${id}.sock`;
}
