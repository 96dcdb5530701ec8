// The saved `--via` rules as a live provider for the proxies: `zks route add example.com --via exit` changes a
// running `zks socks5` / `p2p-client` at its next stream. The file is re-read only when its mtime changed (one
// stat per stream: mtime, size and inode); a file that no longer parses keeps the rules in force and says why once.

import { statSync } from 'node:fs';
import { parseSavedRules, type ViaRule } from '../client/exit-choice';
import { configPath, savedViaRoutes } from './user-config';

export function viaRulesProvider(log?: (line: string) => void): () => readonly ViaRule[] {
  let rules: readonly ViaRule[] = [];
  let seen = '';
  let complained = false;
  const load = (): void => {
    let stamp = 'none';
    try {
      const st = statSync(configPath());
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`; // a rename over it (how it is saved) changes the inode too
    } catch {
      // no file: no rules
    }
    if (stamp === seen) return;
    seen = stamp;
    try {
      rules = stamp === 'none' ? [] : parseSavedRules(savedViaRoutes());
      complained = false;
    } catch (err) {
      if (!complained) log?.(`route rules not reloaded, the previous ones stay: ${(err as Error).message}`);
      complained = true;
    }
  };
  load();
  return () => {
    load();
    return rules;
  };
}
