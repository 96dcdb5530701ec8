// The client's CPU per GB with a native application on the SOCKS5 port (OpenBSD netcat, `nc -X 5`), as a user's
// curl or ssh would be, beside the figure taken with the bench's own JavaScript sockets. (Open question, 2026-12-06:
// inside this bench both say ≈ 5 / 9 CPU-s/GB down / up for `zks socks5`, while a fresh `zks socks5` measured alone
// with nc spends 1.9–2.7, also after 2 000 churned connections: the app is not what makes the bench's client dearer.)
// Download: nc reads the origin's endless stream and `head` stops it after `bytes`. Upload: `bytes` of zeros to the
// origin's greet server, which reads everything and closes once nc has shut down its side (-N).

import { spawn, spawnSync } from 'node:child_process';

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

/** Moves `bytes` through the SOCKS5 proxy on `socksPort`: from the download origin, or to the greet origin. */
export async function nativeTransfer(kind: 'down' | 'up', socksPort: number, originPort: number, bytes: number, timeoutMs = 120_000): Promise<void> {
  const nc = `nc -X 5 -x 127.0.0.1:${socksPort}`;
  if (kind === 'down') return sh(`${nc} 127.0.0.1 ${originPort} | head -c ${bytes} > /dev/null`, timeoutMs);
  return sh(`head -c ${bytes} /dev/zero | ${nc} -N 127.0.0.1 ${originPort} > /dev/null`, timeoutMs);
}
