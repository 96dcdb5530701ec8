// DNS for the full-system VPN: point the host's resolver at the daemon's DNS address on the TUN, and put back
// exactly what was there. A regular /etc/resolv.conf is backed up (bytes, mode, owner) and rewritten in place; a
// symlink into systemd-resolved is left alone and resolved is told instead (resolvectl dns/domain on the TUN link,
// undone by `resolvectl revert`). Writes are in place, not tmp + rename: resolv.conf is often a bind mount
// (containers, `ip netns exec`), which rename cannot replace.

import { chmod, chown, lstat, readFile, readlink, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { must, run, systemError } from './exec';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

export type ResolvBackup =
  | { kind: 'file'; path: string; content: string /* base64 */; mode: number; uid: number; gid: number }
  | { kind: 'absent'; path: string }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'resolved'; path: string; tun: string };

export interface DnsOptions {
  resolver: string;
  tun: string;
  resolvConfPath?: string;
  netns?: string;
  /** Tests: a stand-in for resolvectl (run outside any namespace). */
  resolvectl?: string;
}

export const resolvConfText = (resolver: string): string =>
  `# written by zksd; restored by zksd down\nnameserver ${resolver}\n`;

// `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf; without that file the namespace
// shares the host's, which a test must never write. So inside a namespace the default path means that file.
function targetPath(o: { resolvConfPath?: string; netns?: string }): string {
  if (o.resolvConfPath) return o.resolvConfPath;
  return o.netns ? `/etc/netns/${o.netns}/resolv.conf` : DEFAULT_RESOLV_CONF;
}

const isResolvedTarget = (abs: string): boolean =>
  abs.startsWith('/run/systemd/resolve/') || /^\/(usr\/)?lib\/systemd\/resolv\.conf$/.test(abs);

async function resolvectl(o: { netns?: string; resolvectl?: string }, args: string[]): Promise<void> {
  // resolvectl talks to the host's resolved over D-Bus whatever namespace it runs in: a test namespace would
  // reconfigure a host link that happens to share the TUN's ifindex.
  if (o.netns && !o.resolvectl) throw systemError('resolvectl', 'refusing systemd-resolved inside a test namespace');
  await must(o.resolvectl ?? 'resolvectl', args);
}

/**
 * Decides how DNS will be changed and captures what restoreDns needs, changing nothing: the caller records the
 * backup (state file) before applyDns, so a crash in between still restores.
 */
export async function backupDns(o: DnsOptions): Promise<ResolvBackup> {
  const path = targetPath(o);
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw systemError(`reading ${path}`, String(e));
    if (o.netns && !o.resolvConfPath) throw systemError(path, 'missing: create it so the namespace has its own');
    return { kind: 'absent', path };
  }
  if (st.isSymbolicLink()) {
    const target = await readlink(path);
    if (isResolvedTarget(resolvePath(dirname(path), target))) return { kind: 'resolved', path, tun: o.tun };
    return { kind: 'symlink', path, target };
  }
  if (!st.isFile()) throw systemError(path, 'not a regular file or symlink; leaving DNS alone');
  const content = await readFile(path);
  return { kind: 'file', path, content: content.toString('base64'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/** Points DNS at `resolver` the way `backup` (from backupDns) decided. */
export async function applyDns(o: DnsOptions, backup: ResolvBackup): Promise<void> {
  switch (backup.kind) {
    case 'resolved':
      await resolvectl(o, ['dns', o.tun, o.resolver]);
      // '~.': this link is the route for every domain, so queries stop going to the other links' servers.
      await resolvectl(o, ['domain', o.tun, '~.']);
      return;
    case 'symlink': // managed by something else (resolvconf, NetworkManager): replaced by a file, relinked on restore
      await unlink(backup.path);
      await writeFile(backup.path, resolvConfText(o.resolver), { mode: 0o644 });
      return;
    case 'absent':
      await writeFile(backup.path, resolvConfText(o.resolver), { mode: 0o644, flag: 'wx' });
      return;
    case 'file':
      await writeFile(backup.path, resolvConfText(o.resolver));
  }
}

/** Puts back exactly what applyDns found; tolerant of a TUN link that is already gone. */
export async function restoreDns(b: ResolvBackup, o: { netns?: string; resolvectl?: string } = {}): Promise<void> {
  switch (b.kind) {
    case 'file':
      await writeFile(b.path, Buffer.from(b.content, 'base64'));
      await chmod(b.path, b.mode);
      await chown(b.path, b.uid, b.gid).catch(() => {}); // not root (tests on a temp file): the owner is unchanged anyway
      return;
    case 'absent':
      await unlink(b.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      return;
    case 'symlink':
      await unlink(b.path).catch(() => {});
      await symlink(b.target, b.path);
      return;
    case 'resolved': {
      if (o.netns && !o.resolvectl) return; // never configured (applyDns refuses it there)
      const r = await run(o.resolvectl ?? 'resolvectl', ['revert', b.tun]);
      // The TUN vanished with a crashed daemon: resolved dropped its settings with the link.
      if (r.code !== 0 && !/not known|No such device|Failed to resolve interface/i.test(r.stderr)) {
        throw systemError(`resolvectl revert ${b.tun}`, r.stderr);
      }
    }
  }
}
