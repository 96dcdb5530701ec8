// `npm run fuzz [-- --cases N] [--target NAME,…] [--seed S] [--max-minutes M]`: every target of fuzz/targets.ts
// with N cases (default 1 000 000) each, one after the other; a table of cases run, seconds and cases per second.
// A finding stops that target: its shrunk counterexample is printed and written to fuzz/findings/ (a regression
// test is then made from it), and the run exits 1. Bounded: a target stops at --max-minutes (default 20) with the
// cases it ran so far, reported as such.
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TARGETS } from './targets';

const { values } = parseArgs({
  options: { cases: { type: 'string' }, target: { type: 'string' }, seed: { type: 'string' }, 'max-minutes': { type: 'string' } },
});
const cases = Number(values.cases ?? 1_000_000);
const maxMs = Number(values['max-minutes'] ?? 20) * 60_000;
const seed = values.seed === undefined ? Date.now() ^ (Math.random() * 2 ** 31) : Number(values.seed);
const wanted = values.target?.split(',');
if (!Number.isInteger(cases) || cases < 1 || !(maxMs > 0) || !Number.isInteger(seed)) {
  console.error('usage: npm run fuzz -- [--cases N] [--target NAME,…] [--seed S] [--max-minutes M]');
  process.exit(2);
}
const targets = TARGETS.filter((t) => !wanted || wanted.includes(t.name));
if (targets.length === 0) {
  console.error(`no such target; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.exit(2);
}

const rows: string[] = [];
let findings = 0;
for (const t of targets) {
  const started = performance.now();
  let ran = 0;
  const deadline = started + maxMs;
  // interruptAfterTimeLimit bounds the run; `ran` counts what fast-check actually executed.
  const result = await fc.check(t.property() as fc.IAsyncProperty<[Uint8Array]>, {
    numRuns: cases, seed, interruptAfterTimeLimit: maxMs, markInterruptAsFailure: false,
    reporter: undefined,
  });
  ran = result.numRuns;
  const seconds = (performance.now() - started) / 1000;
  const status = result.failed ? 'FINDING' : performance.now() >= deadline || result.interrupted ? `stopped at ${values['max-minutes'] ?? 20} min` : 'ok';
  rows.push(`| ${t.name} | ${ran.toLocaleString('en-US')} | ${seconds.toFixed(1)} | ${Math.round(ran / seconds).toLocaleString('en-US')} | ${status} | ${t.what} |`);
  console.error(`[fuzz] ${t.name}: ${ran} cases in ${seconds.toFixed(1)} s — ${status}`);
  if (result.failed) {
    findings++;
    const example = result.counterexample?.[0];
    const text = { target: t.name, seed, path: result.counterexamplePath, input: example instanceof Uint8Array ? Buffer.from(example).toString('hex') : String(example), error: String(result.errorInstance) };
    console.error(JSON.stringify(text, null, 1));
    mkdirSync(new URL('./findings/', import.meta.url), { recursive: true });
    writeFileSync(new URL(`./findings/${t.name}-${seed}.json`, import.meta.url), `${JSON.stringify(text, null, 1)}\n`);
  }
}
console.log(`\n### npm run fuzz (seed ${seed})\n\n| target | cases | s | cases/s | result | one case |\n|---|---|---|---|---|---|\n${rows.join('\n')}`);
process.exit(findings ? 1 : 0);
