// A user's settings (`zks config set relay ws://...`) in ~/.config/zks-tunnel-nodejs/config.json (the XDG config
// dir; where `conf` kept it, so earlier files are still read; ZKS_CONFIG_DIR overrides the directory). Flags always
// win. The file is mode 0600 (it holds the key, never printed by `config list`). Read by `zks` and the proxies
// only: zksd, as root, reads its own daemon-settings.ts and never this file.

import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import envPaths from 'env-paths';
import { ZksError } from '../errors/zks-error';
import { JsonStore } from './json-store';

export const CONFIG_KEYS = [
  'relay', 'key', 'room', 'exit-id', 'exit-key', 'listen', 'max-streams', 'user', 'password',
  'direct', 'stun', 'turn', 'turn-user', 'turn-pass', 'direct-tcp', 'direct-tcp-port', 'direct-tcp-advertise',
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];
const SECRET_KEYS: ReadonlySet<string> = new Set(['key', 'room', 'exit-key', 'password', 'turn-pass']);

let store: JsonStore | null = null;

function conf(): JsonStore {
  if (!store) {
    store = new JsonStore(join(process.env.ZKS_CONFIG_DIR || envPaths('zks-tunnel').config, 'config.json'));
    try {
      chmodSync(store.path, 0o600); // a file written by an older zks with a looser mode
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
  const v = conf().get(name);
  return typeof v === 'string' ? v : undefined;
}
export function setSetting(name: string, value: string): void {
  conf().set(checkKey(name), value);
}
export function unsetSetting(name: string): void {
  conf().delete(name === VIA_ROUTES_KEY ? name : checkKey(name)); // the rules are set by `zks route`, cleared either way
}
export function listSettings(): Array<[string, string]> {
  return Object.entries(conf().read()).map(([k, v]) => [k, SECRET_KEYS.has(k) ? '(set, hidden)' : String(v)]);
}
export function configPath(): string {
  return conf().path;
}

/** The saved `zks route add … --via` rules, "PATTERN VIA" each (exit-choice.ts parses them). */
export function savedViaRoutes(): string[] {
  const v = conf().get(VIA_ROUTES_KEY);
  return Array.isArray(v) ? v.filter((e): e is string => typeof e === 'string') : [];
}
export function saveViaRoutes(entries: string[]): void {
  if (entries.length === 0) conf().delete(VIA_ROUTES_KEY);
  else conf().set(VIA_ROUTES_KEY, entries);
}
const VIA_ROUTES_KEY = 'via-routes';
