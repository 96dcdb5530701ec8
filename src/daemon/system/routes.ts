// Host routes through scripts/setup-routes.sh (the issue asks for that script; it is all-or-nothing per run).
// This side only runs it (execFile, no shell) and turns its `route …` / `skip …` lines into JSON records; undoing
// feeds the same records back to `down`, so what is deleted is exactly what was added.

import { fileURLToPath } from 'node:url';
import { must, run, systemError } from './exec';

export const SETUP_ROUTES = fileURLToPath(new URL('../../../scripts/setup-routes.sh', import.meta.url));

export type RouteKind = 'tunnel' | 'blackhole' | 'relay' | 'bypass';

/** One route the script added: `ip -<family> route del <args…>` removes it. */
export interface RouteRecord {
  kind: RouteKind;
  /** The relay address, bypass CIDR or tunnel prefix this route serves. */
  key: string;
  family: 4 | 6;
  args: string[];
}

export interface RoutesUpOptions {
  tun: string;
  relays: readonly string[];
  bypass: readonly string[];
  ipv6: 'carry' | 'blackhole';
  netns?: string;
}

const KINDS = new Set<string>(['tunnel', 'blackhole', 'relay', 'bypass']);

/** Parses the script's stdout; `skip` lines are decisions that added nothing. */
export function parseRouteLines(stdout: string): RouteRecord[] {
  const out: RouteRecord[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'route') continue;
    if (f.length < 5 || !KINDS.has(f[1]!) || (f[3] !== '4' && f[3] !== '6')) {
      throw systemError('setup-routes.sh', `unexpected output line ${JSON.stringify(line)}`);
    }
    out.push({ kind: f[1] as RouteKind, key: f[2]!, family: f[3] === '4' ? 4 : 6, args: f.slice(4) });
  }
  return out;
}

export const recordLine = (r: RouteRecord): string => `route ${r.kind} ${r.key} ${r.family} ${r.args.join(' ')}`;

async function script(args: string[], input?: string): Promise<string> {
  const r = await run('bash', [SETUP_ROUTES, ...args], { input, timeoutMs: 30_000 });
  if (r.code !== 0) throw systemError(`setup-routes.sh ${args[0]}`, r.stderr);
  return r.stdout;
}

const nsArgs = (netns?: string): string[] => (netns ? ['--netns', netns] : []);

/** Relay host routes, bypass routes, then the /1 routes. Nothing is left behind when it throws. */
export async function routesUp(o: RoutesUpOptions): Promise<RouteRecord[]> {
  const args = ['up', '--tun', o.tun, '--ipv6', o.ipv6, ...nsArgs(o.netns)];
  for (const r of o.relays) args.push('--relay', r);
  for (const b of o.bypass) args.push('--bypass', b);
  return parseRouteLines(await script(args));
}

/** Routes for more bypass prefixes while the tunnel routes exist (each on the path it had before them). */
export async function bypassRoutesAdd(tun: string, cidrs: readonly string[], netns?: string): Promise<RouteRecord[]> {
  const args = ['bypass-add', '--tun', tun, ...nsArgs(netns)];
  for (const c of cidrs) args.push('--bypass', c);
  return parseRouteLines(await script(args));
}

/** Deletes the given routes, last first; routes already gone (their device vanished) are not an error. */
export async function routesDel(records: readonly RouteRecord[], netns?: string): Promise<void> {
  if (records.length === 0) return;
  const verb = records.every((r) => r.kind === 'bypass') ? 'bypass-del' : 'down';
  await script([verb, ...nsArgs(netns)], records.map(recordLine).join('\n') + '\n');
}

/**
 * The interfaces of the default routes (both families) as they are now: the uplinks, where DHCP renewals may still
 * go under the kill switch. Read before the tunnel routes are added (those never replace a default route).
 */
export async function uplinkInterfaces(netns?: string): Promise<string[]> {
  const names = new Set<string>();
  for (const family of ['-4', '-6']) {
    const text = await must('ip', [...(netns ? ['-n', netns] : []), family, 'route', 'show', 'default']);
    // Names nft can quote as they are (an odd name would just get no DHCP exemption).
    for (const m of text.matchAll(/\bdev ([A-Za-z0-9_.-]{1,15})(?:\s|$)/g)) names.add(m[1]!);
  }
  return [...names].sort();
}
