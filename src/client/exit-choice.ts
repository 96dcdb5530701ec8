// Which way a stream goes when a client has both the Worker and an exit peer: the user's rules (`zks route add
// example.com --via exit`) first, most specific wins; else what the Worker is known not to reach (port 25,
// Cloudflare's own addresses) goes to the exit; else the default. Pure: no pools, no clock, no I/O.

import { hostKind, isValidDomain, type Target } from '../protocol/address';
import { literalBytes, parseAddressRange, rangeContains, workerCannotReach, type AddressRange } from '../protocol/worker-reach';
import { ZksError } from '../errors/zks-error';

export type Via = 'worker' | 'exit';

export interface ViaRule {
  /** As the user wrote it, canonical: a lower-case domain (matches itself and its subdomains) or a CIDR. */
  pattern: string;
  via: Via;
  domain: string | null;
  range: AddressRange | null;
}

export interface ViaChoice {
  via: Via;
  /** 'rule': the user asked for it (never retried the other way); 'auto': the Worker cannot reach it; 'default'. */
  why: 'rule' | 'auto' | 'default';
  /** For logs: the rule's pattern, or what the Worker cannot do. */
  detail: string | null;
}

/** Parses one rule; ZKS_ERR_CONFIG names what is wrong. */
export function parseViaRule(pattern: string, via: string): ViaRule {
  if (via !== 'worker' && via !== 'exit') throw new ZksError('ZKS_ERR_CONFIG', `--via must be worker or exit, not "${via}"`);
  const text = pattern.trim().toLowerCase().replace(/\.$/, '');
  const range = text.includes('/') || hostKind(text) !== 'domain' ? parseAddressRange(text) : null;
  // Host bits stay as written (rangeContains masks them): the user finds the rule as they typed it.
  if (range) return { pattern: range.text, via, domain: null, range };
  if (text.includes('/') || hostKind(text) !== 'domain' || !isValidDomain(text)) {
    throw new ZksError('ZKS_ERR_CONFIG', `"${pattern.slice(0, 80)}" is neither a domain (example.com) nor an address range (203.0.113.0/24)`);
  }
  return { pattern: text, via, domain: text, range: null };
}

/** Rules as saved ("PATTERN VIA" per entry); a malformed entry is ZKS_ERR_CONFIG naming it. */
export function parseSavedRules(entries: readonly string[]): ViaRule[] {
  return entries.map((e) => {
    const [pattern, via, extra] = e.trim().split(/\s+/);
    if (!pattern || !via || extra !== undefined) throw new ZksError('ZKS_ERR_CONFIG', `saved route "${e.slice(0, 80)}" is not "PATTERN worker|exit"`);
    return parseViaRule(pattern, via);
  });
}

/** The most specific rule for `target`: the longest matching domain, or the longest matching prefix. */
export function ruleFor(target: Target, rules: readonly ViaRule[]): ViaRule | null {
  const bytes = literalBytes(target.host);
  const host = target.host.toLowerCase().replace(/\.$/, '');
  let best: ViaRule | null = null;
  let bestScore = -1;
  for (const r of rules) {
    let score = -1;
    if (bytes && r.range && rangeContains(r.range, bytes)) score = r.range.prefix;
    else if (!bytes && r.domain && (host === r.domain || host.endsWith(`.${r.domain}`))) score = r.domain.length;
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

/** Decides for one target. `hasExit`: an exit peer is configured; `remembered`: the Worker refused this host lately. */
export function chooseVia(target: Target, rules: readonly ViaRule[], defaultVia: Via, hasExit: boolean, remembered: string | null): ViaChoice {
  const rule = ruleFor(target, rules);
  if (rule) return { via: rule.via, why: 'rule', detail: rule.pattern };
  if (defaultVia === 'exit' || !hasExit) return { via: defaultVia, why: 'default', detail: null };
  const cannot = workerCannotReach(target.host, target.port) ?? remembered;
  if (cannot) return { via: 'exit', why: 'auto', detail: cannot };
  return { via: 'worker', why: 'default', detail: null };
}
