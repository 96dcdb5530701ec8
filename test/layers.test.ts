// The layer order as a check (.dependency-cruiser.cjs): src/ has no cycle, no import from a lower layer into a
// higher one, react/ink only in src/tui/, no Node built-in in src/protocol/ or src/relay-worker/. The same rules
// run on a tiny fixture tree with deliberate bad imports, so this test is known to fail when they are broken.
// (dependency-cruiser's CLI refuses Node 20; its API, used here, runs on it.)
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseConfig from 'dependency-cruiser/config-utl/extract-depcruise-config';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/layers/', import.meta.url));

/** Violations as "rule: from → to" lines (a cycle lists its modules). */
async function violations(baseDir: string): Promise<string[]> {
  const ruleSet = await extractDepcruiseConfig(`${ROOT}.dependency-cruiser.cjs`);
  const result = await cruise(['src'], { ...ruleSet.options, ruleSet, validate: true, baseDir, outputType: 'json' }, {}, {
    tsConfig: extractTSConfig(`${ROOT}tsconfig.json`),
  });
  const out = (typeof result.output === 'string' ? JSON.parse(result.output) : result.output) as ICruiseResult;
  return out.summary.violations.map((v: IViolation) => {
    const cycle = v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' → ')})` : '';
    return `${v.rule.name}: ${v.from} → ${v.to}${cycle}`;
  }).sort();
}

describe('layers', () => {
  it('src/ keeps the layer order: no violation', async () => {
    expect(await violations(ROOT)).toEqual([]);
  }, 120_000);

  it('the rules catch each kind of bad import (fixture tree)', async () => {
    const found = await violations(FIXTURE);
    const has = (rule: string, from: string, to: string | RegExp) =>
      found.some((line) => line.startsWith(`${rule}: ${from} → `) && (typeof to === 'string' ? line.includes(`→ ${to}`) : to.test(line)));
    expect(has('layer-protocol', 'src/protocol/frames.ts', 'src/cli/main.ts'), found.join('\n')).toBe(true);
    expect(has('no-node-in-worker-code', 'src/protocol/frames.ts', 'fs'), found.join('\n')).toBe(true);
    expect(has('no-circular', 'src/control/a.ts', 'src/control/b.ts') || has('no-circular', 'src/control/b.ts', 'src/control/a.ts'), found.join('\n')).toBe(true);
    expect(has('layer-client', 'src/client/pool.ts', 'src/control/a.ts'), found.join('\n')).toBe(true);
    expect(has('relay-worker-layers', 'src/relay-worker/index.ts', 'src/client/pool.ts'), found.join('\n')).toBe(true);
    expect(has('react-ink-only-in-tui', 'src/daemon/view.ts', /node_modules\/react\//), found.join('\n')).toBe(true);
    // The allowed imports are not reported: cli → protocol, tui → react.
    expect(found.filter((l) => l.includes(': src/cli/') || l.includes(': src/tui/')), found.join('\n')).toEqual([]);
  }, 120_000);
});
