// The daemon's own persisted settings (bypass routes), kept apart from a user's `zks config`: zksd runs as root
// and its routes apply to the whole machine. Stored with `conf` in /etc/zks (ZKS_ZKSD_CONFIG_DIR overrides).

import Conf from 'conf';

interface DaemonSettings {
  bypass: string[];
}

let store: Conf<DaemonSettings> | null = null;

function settings(): Conf<DaemonSettings> {
  store ??= new Conf<DaemonSettings>({
    projectName: 'zks-tunnel',
    configName: 'zksd',
    cwd: process.env.ZKS_ZKSD_CONFIG_DIR || '/etc/zks',
    configFileMode: 0o600,
    defaults: { bypass: [] },
  });
  return store;
}

export function savedBypass(): string[] {
  const list = settings().get('bypass');
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
}

export function saveBypass(list: readonly string[]): void {
  settings().set('bypass', [...list]);
}

export function settingsPath(): string {
  return settings().path;
}
