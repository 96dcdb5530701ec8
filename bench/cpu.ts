// `node --import tsx bench/cpu.ts [--before DIR]`: only the CPU-seconds per GB of the zks processes (client in
// direct mode, p2p-client and exit peer in relay mode) on single-stream downloads and uploads, the figure a
// hot-path change moves. With `--before DIR` (a checkout of an older commit with its node_modules) both trees
// run side by side and rounds alternate between them, so before and after are measured moments apart on the
// same noisy machine.
// Every process started here is killed at the end (procs.ts). Knobs: BENCH_SECONDS, BENCH_ROUNDS, BENCH_KINDS
// (down,up), BENCH_CONFIGS (zks,relay).

import { resolve } from 'node:path';
import { startOrigin } from './lib/origin';
import { cpuSeconds, killAll } from './lib/procs';
import { startZks, startZksRelay, zksKeygen, type Transport } from './lib/transports';
import { download, sleep, upload } from './lib/measure';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_MS = 500;
const KINDS = (process.env.BENCH_KINDS ?? 'down,up').split(',') as Array<'down' | 'up'>;
const CONFIGS = (process.env.BENCH_CONFIGS ?? 'zks,relay').split(',');
const beforeArg = process.argv.indexOf('--before');
const BEFORE = beforeArg >= 0 ? resolve(process.argv[beforeArg + 1]) : null;

interface Tree { label: string; stacks: Transport[] }
type Totals = Map<string, { down: number; downBytes: number; up: number; upBytes: number }>;

async function startTree(label: string, key: string, room: string, zks?: string): Promise<Tree> {
  const [direct, relay] = await Promise.all([
    CONFIGS.includes('zks') ? startZks(key, zks) : null,
    CONFIGS.includes('relay') ? startZksRelay(key, room, zks) : null,
  ]);
  return { label, stacks: [direct?.transport, relay?.transport].filter((t): t is Transport => t !== undefined) };
}

async function measure(t: Transport, totals: Totals, tree: string, ports: { download: number; upload: number }): Promise<void> {
  const procs = Object.entries(t.pids).filter(([name]) => name.startsWith('zks'));
  for (const kind of KINDS) {
    const before = procs.map(([, pid]) => cpuSeconds(pid));
    const s = kind === 'down'
      ? await download(t, ports.download, 1, SECONDS, WARMUP_MS)
      : await upload(t, ports.upload, 1, SECONDS, WARMUP_MS);
    procs.forEach(([name, pid], i) => {
      const key = `${tree}\t${t.name}\t${name}`;
      const c = totals.get(key) ?? { down: 0, downBytes: 0, up: 0, upBytes: 0 };
      const used = cpuSeconds(pid) - before[i];
      if (kind === 'down') (c.down += used), (c.downBytes += s.totalBytes);
      else (c.up += used), (c.upBytes += s.totalBytes);
      totals.set(key, c);
    });
    await sleep(200);
  }
}

try {
  const [key, room] = await Promise.all([zksKeygen(), zksKeygen()]);
  const origin = await startOrigin();
  const trees = [await startTree('after', key, room, process.env.BENCH_ZKS)]; // BENCH_ZKS: another entry (a profiling wrapper)
  if (BEFORE) trees.unshift(await startTree('before', key, room, `${BEFORE}/bin/zks.js`));
  const totals: Totals = new Map();
  for (const tree of trees) for (const t of tree.stacks) await download(t, origin.ports.download, 1, 0.5, 200); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const tree of round % 2 ? [...trees].reverse() : trees) {
      for (const t of tree.stacks) {
        console.error(`[bench:cpu] round ${round + 1}/${ROUNDS} ${tree.label} ${t.name}`);
        await measure(t, totals, tree.label, origin.ports);
      }
    }
  }
  console.log('| tree | config | process | CPU-s/GB down | CPU-s/GB up | MB moved down / up |');
  console.log('|---|---|---|---|---|---|');
  for (const [k, c] of totals) {
    const [tree, config, proc] = k.split('\t');
    const perGB = (cpu: number, bytes: number) => (cpu / (bytes / 1e9)).toFixed(2);
    console.log(`| ${tree} | ${config} | ${proc} | ${perGB(c.down, c.downBytes)} | ${perGB(c.up, c.upBytes)} | ${(c.downBytes / 1e6).toFixed(0)} / ${(c.upBytes / 1e6).toFixed(0)} |`);
  }
} catch (err) {
  console.error('bench:cpu failed:', err);
  process.exitCode = 1;
} finally {
  await killAll();
}
