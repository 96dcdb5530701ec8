// CLI argument parsers: valid forms, clear errors, and fast-check: any input yields a value or a ZksError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { attachOptionValues, generateKey, parseHostPort, parseKey, parseRelayUrl } from '../../src/cli/args';
import { ZksError } from '../../src/errors/zks-error';

const onlyZksErrors = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_CONFIG');
  }
};

describe('parseHostPort', () => {
  it('accepts host, host:port and [v6]:port', () => {
    expect(parseHostPort('127.0.0.1:1080', 1)).toEqual({ host: '127.0.0.1', port: 1080 });
    expect(parseHostPort('localhost', 1080)).toEqual({ host: 'localhost', port: 1080 });
    expect(parseHostPort('[::1]:9', 1)).toEqual({ host: '::1', port: 9 });
  });
  it('rejects bad ports and shapes', () => {
    expect(() => parseHostPort('h:70000', 1)).toThrow(/0-65535/);
    expect(() => parseHostPort('::1:80', 1)).toThrow(/\[::1\]/);
  });
  it('never throws anything but ZksError', () => {
    fc.assert(fc.property(fc.string(), (s) => onlyZksErrors(() => parseHostPort(s, 1080))), { numRuns: 2000 });
  });
});

describe('parseKey', () => {
  it('round-trips generated keys and names the fix when wrong', () => {
    expect(parseKey(generateKey())).toHaveLength(32);
    // regression: 1 in 64 keys started with "-" and broke `--key KEY`
    for (let i = 0; i < 2000; i++) expect(generateKey().startsWith('-')).toBe(false);
    expect(() => parseKey(undefined)).toThrow(/zks keygen/);
    expect(() => parseKey('abc')).toThrow(/43 characters/);
  });
  it('never throws anything but ZksError', () => {
    fc.assert(fc.property(fc.string(), (s) => onlyZksErrors(() => parseKey(s))), { numRuns: 2000 });
  });
});

describe('parseRelayUrl', () => {
  it('accepts ws/wss and maps http(s) to ws(s)', () => {
    expect(parseRelayUrl('wss://a.workers.dev')).toBe('wss://a.workers.dev');
    expect(parseRelayUrl('https://a.workers.dev/x/')).toBe('wss://a.workers.dev/x');
    expect(parseRelayUrl('http://127.0.0.1:8787')).toBe('ws://127.0.0.1:8787');
    expect(() => parseRelayUrl('wss://a.workers.dev/?q=1')).toThrow(/query/);
    expect(() => parseRelayUrl('ftp://x')).toThrow(/wss:\/\//);
    expect(() => parseRelayUrl('not a url')).toThrow(/not a URL/);
  });
  it('never throws anything but ZksError', () => {
    fc.assert(fc.property(fc.string(), (s) => onlyZksErrors(() => parseRelayUrl(s))), { numRuns: 2000 });
  });
});

describe('attachOptionValues', () => {
  const OPTIONS = { key: { type: 'string' }, room: { type: 'string' }, quiet: { type: 'boolean' } } as const;
  it('joins a value to its option, so a key beginning with "-" is a value, not a flag', () => {
    expect(attachOptionValues(['--key', '-abc', '--quiet', '--room=-x', 'pos', '--room', '--', '--', '--key', 'y'], OPTIONS))
      .toEqual(['--key=-abc', '--quiet', '--room=-x', 'pos', '--room=--', '--', '--key', 'y']);
    expect(attachOptionValues(['--key'], OPTIONS)).toEqual(['--key']); // parseArgs says the value is missing
  });

  it('bin/zks.js takes `--key -…` as the key (one fresh key in 64 begins with "-")', async () => {
    const { spawnSync } = await import('node:child_process');
    const key = `-${'A'.repeat(42)}`;
    const r = spawnSync(process.execPath, ['bin/zks.js', 'socks5', '--relay', 'ws://127.0.0.1:9', '--key', key, '--listen', '127.0.0.1:0'], { timeout: 20_000 });
    const out = r.stdout.toString() + r.stderr.toString();
    expect(out).not.toMatch(/ambiguous/);
    expect(out).toMatch(/ZKS_ERR_RELAY_UNREACHABLE|cannot reach relay/);
    expect(out).not.toContain(key);
  });
});
