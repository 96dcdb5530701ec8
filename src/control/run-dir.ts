// The directories the control sockets live in, made and checked before a socket goes in or a client trusts one.
// zksd's run dir (/run/zks): root's, 0710 with group `zks` when it exists (members reach the socket, but cannot
// list or write the dir), else 0700; repaired to that on every start. A user's private dir (/tmp/zks-<uid> or
// $XDG_RUNTIME_DIR/zks-<uid>): the user's, exactly 0700. A symlink, a dir of another owner or one open to others is
// refused (ZKS_ERR_CONFIG), never followed or repaired: in /tmp anyone can create zks-<uid> before its user does.
// Modes are set with chmod after mkdir, so the umask cannot widen or narrow them.

import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { ZksError } from '../errors/zks-error';

/** The gid of group `name` from /etc/group, or null. */
export function groupId(name: string): number | null {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [group, , gid] = line.split(':');
      if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
    }
  } catch {
    // no /etc/group: root only
  }
  return null;
}

const myUid = (): number => process.getuid?.() ?? 0;

function refuse(dir: string, why: string, fix: string): ZksError {
  return new ZksError('ZKS_ERR_CONFIG', `${dir} ${why}: refusing to use it for a control socket (${fix})`);
}

/** lstat (never follows a symlink) and the checks both kinds of dir share; undefined when it does not exist. */
function inspect(dir: string, uid: number): Stats | undefined {
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ZksError('ZKS_ERR_CONFIG', `cannot inspect ${dir}: ${(e as Error).message}`);
  }
  if (st.isSymbolicLink()) throw refuse(dir, 'is a symbolic link', 'remove it; zksd and zks create the directory themselves');
  if (!st.isDirectory()) throw refuse(dir, 'is not a directory', 'remove it');
  if (st.uid !== uid) throw refuse(dir, `belongs to uid ${st.uid}, not to uid ${uid}`, 'someone else created it: remove it, or set XDG_RUNTIME_DIR');
  return st;
}

function create(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ZksError('ZKS_ERR_CONFIG', `cannot create ${dir}: ${(e as Error).message}`);
  }
}

/** Makes (or checks) a user's private socket dir: owned by `uid`, mode exactly 0700. Throws ZKS_ERR_CONFIG. */
export function ensurePrivateDir(dir: string, uid = myUid()): void {
  const existed = inspect(dir, uid) !== undefined;
  if (!existed) {
    create(dir);
    const st = inspect(dir, uid)!; // someone may have won the race to create it: the checks still hold
    if ((st.mode & 0o777) !== 0o700 && st.uid === uid) chmodSync(dir, 0o700);
  }
  checkPrivateDir(dir, uid);
}

/** A client's check before it trusts a socket in a user's private dir (it creates nothing). */
export function checkPrivateDir(dir: string, uid = myUid()): void {
  const st = inspect(dir, uid);
  if (st && (st.mode & 0o777) !== 0o700) {
    throw refuse(dir, `has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700`, `chmod 700 ${dir}, or remove it`);
  }
}

/**
 * Makes zksd's run dir and sets its owner and mode (root's, 0710 + group `zks`, else 0700), whatever they were:
 * only root creates entries in /run. A symlink or a dir of another owner is refused. Throws ZKS_ERR_CONFIG.
 */
export function ensureRunDir(dir: string, uid = myUid()): void {
  if (!inspect(dir, uid)) create(dir);
  const st = inspect(dir, uid)!;
  const gid = groupId('zks');
  try {
    if (gid !== null && st.gid !== gid) chownSync(dir, uid, gid);
    chmodSync(dir, gid !== null ? 0o710 : 0o700);
  } catch (e) {
    throw new ZksError('ZKS_ERR_CONFIG', `cannot set the owner and mode of ${dir}: ${(e as Error).message}`);
  }
}
