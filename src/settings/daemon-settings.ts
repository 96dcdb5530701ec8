// zksd's own settings, /etc/zks/zksd.json (ZKS_ZKSD_CONFIG_DIR overrides the directory), mode 0600: relay, key,
// room and exit-id for `zksd up` without flags, and the bypass routes. The trust rule: zksd runs as root and routes the whole
// machine, so it reads only its flags and this file, never a user's `zks config`. A root process refuses the file
// when it or its directory is not root's or is writable by group or others (whoever could write it would steer root).

import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ZksError } from '../errors/zks-error';
import { JsonStore } from './json-store';

export const DAEMON_SETTING_KEYS = ['relay', 'key', 'room', 'exit-id'] as const;
export type DaemonSettingKey = (typeof DAEMON_SETTING_KEYS)[number];
const SECRET_KEYS: ReadonlySet<string> = new Set(['key', 'room']);

export const DEFAULT_DAEMON_CONFIG_DIR = '/etc/zks';

let store: JsonStore | null = null;

/** The file holds relay, key, room and exit-id (strings) and bypass (a list of CIDRs). */
function settings(): JsonStore {
  if (store === null) {
    const path = join(process.env.ZKS_ZKSD_CONFIG_DIR || DEFAULT_DAEMON_CONFIG_DIR, 'zksd.json');
    checkTrusted(path);
    store = new JsonStore(path);
  }
  return store;
}

/** As root: the file and its directory must be root's and writable by no one else (absent is fine). */
export function checkTrusted(path: string, uid = process.getuid?.()): void {
  if (uid !== 0) return;
  for (const p of [dirname(path), path]) {
    let st;
    try {
      st = statSync(p);
    } catch {
      continue; // not created yet
    }
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new ZksError('ZKS_ERR_CONFIG', `${p} is not trusted: zksd runs as root and reads only root-owned settings that ` +
        `no one else can write (owner uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}); fix with ` +
        `\`sudo chown root: ${p} && sudo chmod go-w ${p}\``);
    }
  }
}

function checkKey(name: string): DaemonSettingKey {
  if (!(DAEMON_SETTING_KEYS as readonly string[]).includes(name)) {
    throw new ZksError('ZKS_ERR_CONFIG', `unknown zksd setting "${name}"; known: ${DAEMON_SETTING_KEYS.join(', ')} (bypass routes: \`zks route\`)`);
  }
  return name as DaemonSettingKey;
}

export function daemonSetting(name: DaemonSettingKey): string | undefined {
  const v = settings().get(name);
  return typeof v === 'string' ? v : undefined;
}
export function setDaemonSetting(name: string, value: string): void {
  settings().set(checkKey(name), value);
}
export function unsetDaemonSetting(name: string): void {
  settings().delete(checkKey(name));
}
export function listDaemonSettings(): Array<[string, string]> {
  return DAEMON_SETTING_KEYS.flatMap((k): Array<[string, string]> => {
    const v = daemonSetting(k);
    return v === undefined ? [] : [[k, SECRET_KEYS.has(k) ? '(set, hidden)' : v]];
  });
}
export function daemonConfigPath(): string {
  return settings().path;
}

export function savedBypass(): string[] {
  const list = settings().get('bypass');
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
}

export function saveBypass(list: readonly string[]): void {
  settings().set('bypass', [...list]);
}
