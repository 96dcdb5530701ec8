// The client's way choice (exit-choice.ts) and the Worker's reach check (protocol/worker-reach.ts): rules, their
// precedence, what goes to the exit peer on its own, and the parsers under arbitrary input.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chooseVia, parseSavedRules, parseViaRule, ruleFor } from '../../src/client/exit-choice';
import { CLOUDFLARE_RANGES, isCloudflareRefusal, isWorkerUnreachable, parseAddressRange, rangeContains, viaName, workerCannotReach } from '../../src/protocol/worker-reach';
import { parseIPv4 } from '../../src/protocol/address';
import { ZksError } from '../../src/errors/zks-error';

const t = (host: string, port = 443) => ({ host, port });

describe('workerCannotReach', () => {
  it('names port 25 and Cloudflare ranges, IPv4 and IPv6, at their edges', () => {
    expect(workerCannotReach('203.0.113.5', 25)).toMatch(/port 25/);
    expect(workerCannotReach('104.16.0.0', 443)).toMatch(/Cloudflare's own address \(104\.16\.0\.0\/13\)/);
    expect(workerCannotReach('104.23.255.255', 443)).toMatch(/104\.16\.0\.0\/13/);
    expect(workerCannotReach('104.32.0.0', 443)).toBeNull(); // just past 104.24.0.0/14
    expect(workerCannotReach('1.1.1.1', 853)).toMatch(/1\.1\.1\.0\/24/);
    expect(workerCannotReach('2606:4700:4700::1111', 443)).toMatch(/2606:4700::\/32/);
    expect(workerCannotReach('[2a06:98c7:ffff::1]', 443)).toMatch(/2a06:98c0::\/29/);
    expect(workerCannotReach('2a06:98c8::1', 443)).toBeNull();
    expect(workerCannotReach('example.com', 443)).toBeNull(); // a name shows only when it resolves
    expect(workerCannotReach('203.0.113.5', 443, [parseAddressRange('203.0.113.0/24')!])).toMatch(/ZKS_BLOCKED_RANGES/);
  });

  it('knows the error texts of connect() that name their cause, and no other', () => {
    // workerd says this of every failed connect (a refused port too): it is no sign of Cloudflare's network.
    expect(isCloudflareRefusal('proxy request failed, cannot connect to the specified address')).toBe(false);
    expect(isCloudflareRefusal('Connections to port 25 are prohibited')).toBe(true);
    expect(isCloudflareRefusal('TCP Loop detected')).toBe(true);
    expect(isCloudflareRefusal('connection refused')).toBe(false);
  });

  it('every answer carries the prefix a client retries on; IPv6 forms of an IPv4 address count as it', () => {
    const blocked = [parseAddressRange('127.0.0.0/8')!];
    for (const host of ['::ffff:127.0.0.1', '[::ffff:7f00:1]', '64:ff9b::7f00:1', '2002:7f00:1::1']) {
      const why = workerCannotReach(host, 443, blocked);
      expect(why, host).toMatch(/ZKS_BLOCKED_RANGES/);
      expect(isWorkerUnreachable(why!)).toBe(true);
    }
    expect(workerCannotReach('::ffff:104.16.1.1', 443)).toMatch(/104\.16\.0\.0\/13/);
    expect(isWorkerUnreachable(workerCannotReach('203.0.113.1', 25)!)).toBe(true);
    expect(isWorkerUnreachable(viaName('example.com', workerCannotReach('104.16.1.1', 443)!))).toBe(true);
    expect(viaName('example.com', workerCannotReach('104.16.1.1', 443)!)).toMatch(/^not reachable from a Worker: example\.com → 104\.16\.1\.1 is/);
    expect(isWorkerUnreachable('target is a loopback, private or link-local address')).toBe(false);
  });

  it('every published range parses, and contains its own first and last address', () => {
    for (const text of CLOUDFLARE_RANGES) {
      const r = parseAddressRange(text)!;
      expect(r, text).not.toBeNull();
      expect(rangeContains(r, r.bytes)).toBe(true);
      const last = r.bytes.slice();
      for (let bit = r.prefix; bit < last.length * 8; bit++) last[bit >> 3] |= 0x80 >> (bit & 7);
      expect(rangeContains(r, last)).toBe(true);
    }
  });

  it('range containment agrees with integer arithmetic for IPv4 (property)', () => {
    fc.assert(fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (net, addr, prefix) => {
      const r = parseAddressRange(`${net}/${prefix}`)!;
      const n = (s: string) => parseIPv4(s)!.reduce((a, b) => a * 256 + b, 0);
      const size = 2 ** (32 - prefix);
      expect(rangeContains(r, parseIPv4(addr)!)).toBe(Math.floor(n(net) / size) === Math.floor(n(addr) / size));
    }));
  });

  it('parseAddressRange never throws, and refuses what is not ADDRESS[/PREFIX] (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => {
      const r = parseAddressRange(s);
      if (r) expect(r.prefix).toBeLessThanOrEqual(r.bytes.length * 8);
    }));
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0/8', '10.0.0.0/', '10.0.0.0/08x', 'example.com/8', '']) {
      expect(parseAddressRange(bad), bad).toBeNull();
    }
  });
});

describe('route rules', () => {
  it('parse domains and ranges, and refuse anything else with ZKS_ERR_CONFIG', () => {
    expect(parseViaRule('Example.COM.', 'exit')).toMatchObject({ pattern: 'example.com', via: 'exit', domain: 'example.com' });
    expect(parseViaRule('10.1.2.3/8', 'worker')).toMatchObject({ pattern: '10.1.2.3/8', via: 'worker' });
    expect(parseViaRule('2001:db8::1', 'exit').pattern).toBe('2001:db8::1/128');
    for (const [p, v] of [['example.com', 'both'], ['-bad-.com', 'exit'], ['10.0.0.0/40', 'exit'], ['a b', 'exit'], ['', 'exit']]) {
      expect(() => parseViaRule(p!, v!), `${p} ${v}`).toThrow(ZksError);
    }
    expect(() => parseSavedRules(['example.com'])).toThrow(/PATTERN worker\|exit/);
    expect(parseSavedRules(['example.com exit', ' 10.0.0.0/8   worker '])).toHaveLength(2);
  });

  it('the most specific rule wins; a domain matches its subdomains, not lookalikes', () => {
    const rules = parseSavedRules(['example.com exit', 'www.example.com worker', '10.0.0.0/8 exit', '10.1.0.0/16 worker']);
    expect(ruleFor(t('example.com'), rules)?.via).toBe('exit');
    expect(ruleFor(t('a.b.example.com'), rules)?.via).toBe('exit');
    expect(ruleFor(t('www.example.com'), rules)?.via).toBe('worker');
    expect(ruleFor(t('x.www.example.com'), rules)?.via).toBe('worker');
    expect(ruleFor(t('notexample.com'), rules)).toBeNull();
    expect(ruleFor(t('10.2.3.4'), rules)?.via).toBe('exit');
    expect(ruleFor(t('10.1.3.4'), rules)?.via).toBe('worker');
    expect(ruleFor(t('11.0.0.1'), rules)).toBeNull();
    expect(ruleFor(t('WWW.Example.com.'), rules)?.via).toBe('worker');
  });

  it('parseViaRule never throws anything but ZksError (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), fc.constantFrom('exit', 'worker', 'x'), (p, v) => {
      try {
        parseViaRule(p, v);
      } catch (err) {
        expect(err).toBeInstanceOf(ZksError);
      }
    }));
  });
});

describe('chooseVia', () => {
  const none: never[] = [];
  it('default worker: port 25 and Cloudflare addresses go to the exit peer when there is one', () => {
    expect(chooseVia(t('203.0.113.9', 25), none, 'worker', true, null)).toMatchObject({ via: 'exit', why: 'auto' });
    expect(chooseVia(t('104.18.1.1'), none, 'worker', true, null)).toMatchObject({ via: 'exit', why: 'auto' });
    expect(chooseVia(t('203.0.113.9'), none, 'worker', true, null)).toMatchObject({ via: 'worker', why: 'default' });
    expect(chooseVia(t('104.18.1.1'), none, 'worker', false, null)).toMatchObject({ via: 'worker' }); // fails there, clearly
    expect(chooseVia(t('site.example'), none, 'worker', true, 'refused lately')).toMatchObject({ via: 'exit', why: 'auto', detail: 'refused lately' });
  });
  it('rules beat everything; default exit stays exit', () => {
    const rules = parseSavedRules(['104.16.0.0/13 worker', 'mail.example exit']);
    expect(chooseVia(t('104.18.1.1'), rules, 'worker', true, null)).toMatchObject({ via: 'worker', why: 'rule' });
    expect(chooseVia(t('mail.example'), rules, 'worker', false, null)).toMatchObject({ via: 'exit', why: 'rule' });
    expect(chooseVia(t('203.0.113.9', 25), none, 'exit', true, null)).toMatchObject({ via: 'exit', why: 'default' });
  });
});
