// Integration: the Worker-side crypto (webcrypto backend, handshake, records) bundled with esbuild and run in
// real workerd through Miniflare; the bundle must contain no node:* import and reproduce handshake.json.
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { describe, expect, it } from 'vitest';
import vector from '../vectors/handshake.json';

describe('webcrypto backend inside workerd', () => {
  it('reproduces the handshake vector, rekeys pipelined records and rejects a low-order point', async () => {
    const bundle = await build({
      entryPoints: [new URL('./fixtures/workerd-entry.ts', import.meta.url).pathname],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      write: false,
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0].text;
    expect(script).not.toMatch(/from\s*["']node:/);
    const mf = new Miniflare({ modules: true, script, compatibilityDate: '2025-01-01' });
    try {
      const res = await mf.dispatchFetch('http://zks.test/');
      const out = (await res.json()) as Record<string, unknown>;
      expect(out).toEqual({
        subtleX25519: true,
        hello: vector.expected.hello,
        reply: vector.expected.reply,
        kC2S: vector.expected.kC2S,
        kS2C: vector.expected.kS2C,
        opened: [0, 1, 2, 3, 4],
        lowOrder: 'ZKS_ERR_HANDSHAKE',
      });
    } finally {
      await mf.dispose();
    }
  }, 60_000);
});
