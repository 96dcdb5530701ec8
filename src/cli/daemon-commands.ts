// `zks status`, `zks flows`, `zks route …` and `zksd status`: requests to zksd over its control socket. Route
// changes made while zksd is not running are saved and applied at the next `zksd up`.

import { ZksError } from '../errors/zks-error';
import { ControlClient } from '../control/client';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { proxyControlPath, userControlDir } from '../control/paths';
import type { StatusSnapshot } from '../control/protocol';
import { checkPrivateDir } from '../control/run-dir';
import { formatFlows, formatStatus, type FlowRow } from './status-view';
import type { ViaRule } from '../client/exit-choice';

export interface DaemonCommandFlags {
  json: boolean;
  closed: boolean;
  bypass: boolean;
  /** `zks route add PATTERN --via worker|exit`: a rule for the proxies, saved in the user's settings. */
  via?: string;
}

async function withDaemon<T>(fn: (c: ControlClient) => Promise<T>, orProxy = false): Promise<T> {
  // status/flows also work against a running `zks socks5` / `p2p-client` when zksd is not running.
  const c = await ControlClient.connect().catch(async (err: unknown) => {
    if (!orProxy || !(err instanceof ZksError) || err.code !== 'ZKS_ERR_NOT_RUNNING') throw err;
    const path = proxyControlPath();
    checkPrivateDir(dirname(path)); // a /tmp/zks-<uid> someone else made could hold their socket, not our proxy's
    return ControlClient.connect(path).catch(() => Promise.reject(err));
  });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** The status of every `zks expose http://…` agent of this user (their sockets in the private run directory). */
async function exposedTunnels(): Promise<StatusSnapshot[]> {
  const dir = userControlDir();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^expose-[a-z0-9-]+\.sock$/.test(n)).sort();
    checkPrivateDir(dir);
  } catch {
    return [];
  }
  const out: StatusSnapshot[] = [];
  for (const name of names) {
    const c = await ControlClient.connect(join(dir, name), 1000).catch(() => null); // a stale socket: skipped
    if (!c) continue;
    try {
      out.push(await c.status());
    } catch {
      // it went away between connect and answer
    } finally {
      c.close();
    }
  }
  return out;
}

/** `zks status` (zksd, else the user's proxy; then the user's exposed tunnels) and `zksd status` (zksd only). */
export async function printStatus(json: boolean, orProxy: boolean): Promise<void> {
  const tunnels = orProxy ? await exposedTunnels() : [];
  const s = await withDaemon((c) => c.status(), orProxy).catch((err: unknown) => {
    if (tunnels.length > 0 && err instanceof ZksError && err.code === 'ZKS_ERR_NOT_RUNNING') return null;
    throw err;
  });
  if (json) {
    console.log(JSON.stringify(tunnels.length > 0 ? { ...(s ?? {}), exposed: tunnels } : s, null, 2));
    return;
  }
  console.log([...(s ? [formatStatus(s)] : []), ...tunnels.map(formatStatus)].join('\n\n'));
}

export async function daemonCommand(command: 'status' | 'flows' | 'route', args: string[], flags: DaemonCommandFlags): Promise<void> {
  if (command === 'status') return printStatus(flags.json, true);
  if (command === 'flows') {
    const flows = await withDaemon((c) => c.request<FlowRow[]>('flows', { closed: flags.closed }), true);
    console.log(flags.json ? JSON.stringify(flows, null, 2) : formatFlows(flows));
    return;
  }
  // Loaded here, not at the top: `conf` (saved routes) costs ~150 ms of start-up that `zks status` must not pay.
  const [{ parseBypass }, { saveBypass, savedBypass }] = await Promise.all([import('../daemon/system/index'), import('../settings/daemon-settings')]);
  const [verb, cidrText] = args;
  const viaDone = await viaRouteCommand(verb, cidrText, flags);
  if (viaDone) return;
  if (verb === 'list' || verb === undefined) {
    const live = await withDaemon((c) => c.request<{ bypass: string[] }>('routes')).catch((err: unknown) => {
      if (err instanceof ZksError && err.code === 'ZKS_ERR_NOT_RUNNING') return null;
      throw err;
    });
    const list = live ? live.bypass : savedBypass();
    if (flags.json) console.log(JSON.stringify({ running: live !== null, bypass: list, via: await savedViaRuleTexts() }));
    else console.log(list.length ? list.map((c) => `${c} bypass`).join('\n') : 'no bypass routes');
    if (!live && !flags.json) console.error('(zksd is not running: these apply at the next `zksd up`)');
    return;
  }
  if (verb !== 'add' && verb !== 'del') throw new ZksError('ZKS_ERR_CONFIG', `unknown route command "${verb}": use add, del or list`);
  if (!cidrText) throw new ZksError('ZKS_ERR_CONFIG', `zks route ${verb} needs a CIDR, e.g. zks route ${verb} 10.0.0.0/8${verb === 'add' ? ' --bypass' : ''}`);
  if (verb === 'add' && !flags.bypass) {
    throw new ZksError('ZKS_ERR_CONFIG', 'zks route add needs --bypass (zksd: outside the tunnel) or --via worker|exit (zks socks5 / p2p-client)');
  }
  const cidr = parseBypass(cidrText).text;
  const live = await ControlClient.connect().catch((err: unknown) => {
    if (err instanceof ZksError && err.code === 'ZKS_ERR_NOT_RUNNING') return null;
    throw err;
  });
  if (live) {
    try {
      const r = await live.request<{ bypass: string[] }>(verb === 'add' ? 'route.add' : 'route.del', { cidr });
      console.log(`${verb === 'add' ? 'added' : 'removed'} bypass ${cidr}; bypass routes now: ${r.bypass.join(', ') || '(none)'}`);
    } finally {
      live.close();
    }
    return;
  }
  const list = savedBypass().filter((c) => c !== cidr);
  if (verb === 'add') list.push(cidr);
  saveBypass(list);
  console.log(`zksd is not running: ${verb === 'add' ? 'saved' : 'removed'} bypass ${cidr} (applies at the next \`zksd up\`)`);
}

/**
 * The `--via` rules of `zks route` (the proxies' rules, in the user's settings): add and del of such a rule, and
 * their part of list. True when the command is done; false leaves it to the bypass routes (zksd's).
 */
async function viaRouteCommand(verb: string | undefined, pattern: string | undefined, flags: DaemonCommandFlags): Promise<boolean> {
  const [{ parseViaRule, parseSavedRules }, { savedViaRoutes, saveViaRoutes }] = await Promise.all([
    import('../client/exit-choice'), import('../settings/user-config'),
  ]);
  if (verb === 'list' || verb === undefined) {
    // The bypass routes follow; a broken user config must not hide them (zksd's are in its own file).
    try {
      const rules = parseSavedRules(savedViaRoutes());
      if (!flags.json && rules.length > 0) console.log(rules.map((r) => `${r.pattern} via ${r.via}`).join('\n'));
    } catch (err) {
      console.error(`(--via rules not shown: ${(err as Error).message})`);
    }
    return false;
  }
  if (verb === 'add' && flags.via !== undefined) {
    if (flags.bypass) throw new ZksError('ZKS_ERR_CONFIG', 'a route is either --bypass or --via, not both');
    if (!pattern) throw new ZksError('ZKS_ERR_CONFIG', 'zks route add needs a domain or CIDR, e.g. zks route add example.com --via exit');
    const rule = parseViaRule(pattern, flags.via);
    const kept = parseSavedRules(savedViaRoutes()).filter((r) => r.pattern !== rule.pattern);
    saveViaRoutes([...kept, rule].map((r) => `${r.pattern} ${r.via}`));
    console.log(`added ${rule.pattern} via ${rule.via} (zks socks5 / p2p-client: from their next connection)`);
    return true;
  }
  if (verb === 'del' && pattern) {
    let rules: ViaRule[];
    let text: string;
    try {
      rules = parseSavedRules(savedViaRoutes());
      text = parseViaRule(pattern, 'exit').pattern; // as saved: 1.2.3.4 → 1.2.3.4/32
    } catch {
      return false; // not a --via rule (or no readable user config): a bypass route, perhaps
    }
    const kept = rules.filter((r) => r.pattern !== text);
    if (kept.length === rules.length) return false; // not a --via rule: a bypass route, perhaps
    saveViaRoutes(kept.map((r) => `${r.pattern} ${r.via}`));
    console.log(`removed ${text} (via rule)`);
    return true;
  }
  return false;
}

async function savedViaRuleTexts(): Promise<Array<{ pattern: string; via: string }> | { error: string }> {
  const [{ parseSavedRules }, { savedViaRoutes }] = await Promise.all([import('../client/exit-choice'), import('../settings/user-config')]);
  try {
    return parseSavedRules(savedViaRoutes()).map((r) => ({ pattern: r.pattern, via: r.via }));
  } catch (err) {
    return { error: (err as Error).message };
  }
}
