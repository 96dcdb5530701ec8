// The record of every host change zksd made, so `zksd down` can undo them after a crash. JSON, rewritten
// atomically (tmp file + rename in the same directory) after each change; the file is 0600, in zksd's run dir
// (created 0700 here when missing; control/run-dir.ts gives it its final owner and mode).
// Written before a change is attempted where possible, so a crash at any point leaves an over- rather than an
// under-complete record — undo tolerates things that are not there.

import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RouteRecord } from './routes';
import type { ResolvBackup } from './resolv';
import { systemError } from './exec';

export const DEFAULT_STATE_PATH = '/run/zks/state.json';
export const STATE_VERSION = 1;

export interface HostState {
  version: typeof STATE_VERSION;
  pid: number;
  tun: string;
  netns?: string;
  ipv6: 'carry' | 'blackhole';
  relayEndpoints: { address: string; port: number }[];
  /** The default-route interfaces at up (the only ones DHCP may use under the kill switch); absent in old records. */
  uplinks?: string[];
  bypass: string[];
  /** Direct path peers allowed out (address . UDP port; their routes are in `routes`); absent in old records. */
  direct?: { address: string; port: number }[];
  /** Routes added, in order; each is deleted by `ip -<family> route del <args>`. */
  routes: RouteRecord[];
  /** Whether table inet zks_killswitch is (or may be) present. */
  killSwitch: boolean;
  resolv?: ResolvBackup;
}

export async function writeState(path: string, state: HostState): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state, null, 2) + '\n');
      await fh.sync(); // the rename must not land before the bytes (power loss leaves old or new, never empty)
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    throw systemError(`writing the state file ${path}`, String((e as Error).message ?? e));
  }
}

/** The record at `path`, or undefined when there is none. Throws ZKS_ERR_SYSTEM when it is unreadable. */
export async function readState(path: string): Promise<HostState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw systemError(`reading the state file ${path}`, String((e as Error).message));
  }
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch {
    throw systemError(`the state file ${path}`, 'not JSON; undo by hand (ip route, nft delete table inet zks_killswitch) and delete it');
  }
  if (!isState(s)) throw systemError(`the state file ${path}`, `not a version ${STATE_VERSION} zksd state record`);
  return s;
}

export async function removeState(path: string): Promise<void> {
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw systemError(`deleting the state file ${path}`, e.message);
  });
}

function isState(x: unknown): x is HostState {
  const s = x as Partial<HostState> | null;
  return !!s && s.version === STATE_VERSION && typeof s.tun === 'string' && typeof s.pid === 'number' &&
    Array.isArray(s.routes) && Array.isArray(s.bypass) && Array.isArray(s.relayEndpoints) &&
    typeof s.killSwitch === 'boolean' && (s.ipv6 === 'carry' || s.ipv6 === 'blackhole') &&
    // Interface names go into the nft ruleset as they are: only plain ones are accepted.
    (s.uplinks === undefined || (Array.isArray(s.uplinks) && s.uplinks.every((u) => typeof u === 'string' && /^[A-Za-z0-9_.-]{1,15}$/.test(u)))) &&
    s.routes.every((r) => r && typeof r.key === 'string' && (r.family === 4 || r.family === 6) &&
      Array.isArray(r.args) && r.args.every((a) => typeof a === 'string'));
}
