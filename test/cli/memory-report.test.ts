// `kill -USR2` on a zks process: one stdout line with its memory after a full GC, and the process lives on. A
// real process holding ~16 MB of live objects beside ~100 MB of garbage it made just before: the report counts
// the first and not the second, and a second signal gets a second line.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../dist/cli/memory-report.js', import.meta.url));

const SCRIPT = `
import { reportMemoryOnSigusr2 } from ${JSON.stringify(MODULE)};
reportMemoryOnSigusr2();
globalThis.live = Array.from({ length: 16 }, (_, i) => new Array(128 * 1024).fill(i + 0.5)); // 16 × 1 MiB of doubles
for (let i = 0; i < 100; i++) new Array(128 * 1024).fill(i + 0.5); // garbage, not collected yet
console.log('ready ' + process.memoryUsage().heapUsed);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`;

it('SIGUSR2 prints memory after a GC (live objects counted, garbage not) and the process keeps running', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    const parts = (partial + c).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = async (n: number): Promise<string> => {
    while (lines.length < n) {
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited.then(() => { throw new Error(`exited after ${lines.join(' | ')}`); })]);
    }
    return lines[n - 1];
  };
  try {
    const before = Number((await line(1)).split(' ')[1]);
    child.kill('SIGUSR2');
    const report = await line(2);
    expect(report).toMatch(/^memory after GC: rss=\d+ heapUsed=\d+ heapTotal=\d+ external=\d+ arrayBuffers=\d+ young=\d+ old=\d+$/);
    const field = (k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(report)![1]);
    expect(field('heapUsed')).toBeGreaterThan(16 * 1024 * 1024);
    expect(field('heapUsed')).toBeLessThan(before);
    expect(field('rss')).toBeGreaterThan(field('heapUsed'));
    child.kill('SIGUSR2');
    expect(await line(3)).toMatch(/^memory after GC: /);
    child.stdin!.end();
    expect(await exited).toBe(0);
  } finally {
    child.kill('SIGKILL');
  }
});
