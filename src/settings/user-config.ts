// A user's settings (`zks config set relay ws://...`) in their config dir via `conf` (ZKS_CONFIG_DIR overrides it).
// Flags always win. The file is mode 0600 (it holds the key, never printed by `config list`). Read by `zks` and
// the proxies only: zksd, as root, reads its own daemon-settings.ts and never this file.

import Conf from 'conf';
import { chmodSync } from 'node:fs';
import { ZksError } from '../errors/zks-error';

export const CONFIG_KEYS = ['relay', 'key', 'room', 'listen', 'max-streams', 'user', 'password'] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];
const SECRET_KEYS: ReadonlySet<string> = new Set(['key', 'room', 'password']);

let store: Conf<Record<string, string>> | null = null;

function conf(): Conf<Record<string, string>> {
  if (!store) {
    store = new Conf<Record<string, string>>({
      projectName: 'zks-tunnel',
      cwd: process.env.ZKS_CONFIG_DIR || undefined,
      configFileMode: 0o600,
    });
    try {
      chmodSync(store.path, 0o600);
    } catch {
      // file not written yet
    }
  }
  return store;
}

function checkKey(name: string): ConfigKey {
  if (!(CONFIG_KEYS as readonly string[]).includes(name)) {
    throw new ZksError('ZKS_ERR_CONFIG', `unknown setting "${name}"; known: ${CONFIG_KEYS.join(', ')}`);
  }
  return name as ConfigKey;
}

export function getSetting(name: ConfigKey): string | undefined {
  return conf().get(name);
}
export function setSetting(name: string, value: string): void {
  conf().set(checkKey(name), value);
}
export function unsetSetting(name: string): void {
  conf().delete(checkKey(name));
}
export function listSettings(): Array<[string, string]> {
  return Object.entries(conf().store).map(([k, v]) => [k, SECRET_KEYS.has(k) ? '(set, hidden)' : String(v)]);
}
export function configPath(): string {
  return conf().path;
}
