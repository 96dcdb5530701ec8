// wrangler.toml is ready for `wrangler deploy`: a dry run bundles the very Worker the tests run, with no key
// and no dev-only switch in the configuration.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './harness';

describe('wrangler deploy', () => {
  it('bundles src/relay-worker offline (--dry-run) without secrets or dev switches', async () => {
    const out = mkdtempSync(join(tmpdir(), 'zks-deploy-'));
    try {
      const r = await run('env', [
        'WRANGLER_SEND_METRICS=false', 'WRANGLER_SEND_ERROR_REPORTS=false', 'CLOUDFLARE_CF_FETCH_ENABLED=false',
        'WRANGLER_HIDE_BANNER=true', 'CI=true', 'npx', 'wrangler', 'deploy', '--dry-run', '--outdir', out,
      ], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const out_ = r.stdout.toString();
      expect(out_).toContain('ZKS_MAX_STREAMS');
      expect(out_).not.toContain('ZKS_ALLOW_PRIVATE_TARGETS');
      expect(out_).not.toContain('ZKS_KEY');
      const bundle = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.js'))!), 'utf8');
      expect(bundle).toContain('zks1');
      expect(bundle).not.toMatch(/from ["']node:/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
