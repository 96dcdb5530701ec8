// AEAD throughput for 64 KiB records (the record layer's largest record), seal and open, per backend and suite.
// Each row runs a bounded loop for ~opts.seconds; the node AES-256-GCM row is the baseline the others are read
// against (same process, same run). Run directly: node --import tsx bench/aead.ts [seconds-per-row]
import { pathToFileURL } from 'node:url';
import { nodeCrypto } from '../src/crypto/node';
import { webCrypto } from '../src/crypto/webcrypto';
import type { Aead, CipherSuite, CryptoBackend } from '../src/crypto/types';

const RECORD = 64 * 1024;
const MAX_ITERATIONS = 200_000; // bound the loop even if the clock misbehaves

interface Row {
  name: string;
  mbPerSec: number;
}

/**
 * MB/s of `op` over ~`seconds`: a time-boxed warm-up (JIT, key schedules, CPU clock), then the median of five
 * equal windows, so one descheduled window on a busy machine does not become the row's figure.
 */
async function measure(seconds: number, op: () => Promise<unknown>): Promise<number> {
  const WINDOWS = 5;
  const windowNs = BigInt(Math.round((seconds * 1e9) / (WINDOWS + 1)));
  const run = async (budgetNs: bigint): Promise<number> => {
    const start = process.hrtime.bigint();
    let n = 0;
    while (n < MAX_ITERATIONS) {
      await op();
      n++;
      if ((n & 3) === 0 && process.hrtime.bigint() - start >= budgetNs) break;
    }
    return (n * RECORD) / 1e6 / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  await run(windowNs); // warm-up, not counted
  const rates: number[] = [];
  for (let w = 0; w < WINDOWS; w++) rates.push(await run(windowNs));
  return rates.sort((a, b) => a - b)[WINDOWS >> 1];
}

const CASES: Array<{ label: string; backend: CryptoBackend; suite: CipherSuite }> = [
  { label: 'node aes-256-gcm', backend: nodeCrypto, suite: 'aes-256-gcm' },
  { label: 'node chacha20-poly1305', backend: nodeCrypto, suite: 'chacha20-poly1305' },
  { label: 'webcrypto aes-256-gcm', backend: webCrypto, suite: 'aes-256-gcm' },
  { label: 'noble chacha20-poly1305', backend: webCrypto, suite: 'chacha20-poly1305' },
];

export async function runAeadBench(opts: { seconds?: number } = {}): Promise<Row[]> {
  const perOp = (opts.seconds ?? 0.5) / 2;
  const rows: Row[] = [];
  const key = nodeCrypto.randomBytes(32);
  const nonce = nodeCrypto.randomBytes(12);
  const plaintext = nodeCrypto.randomBytes(RECORD);
  // The process's first seconds are slow (tiering up, heap growth): run the baseline row once, uncounted.
  const first = await CASES[0].backend.createAead(CASES[0].suite, key);
  await measure(perOp, () => first.seal(nonce, plaintext));
  for (const c of CASES) {
    const aead: Aead = await c.backend.createAead(c.suite, key);
    const sealed = await aead.seal(nonce, plaintext);
    rows.push({ name: `${c.label} seal`, mbPerSec: await measure(perOp, () => aead.seal(nonce, plaintext)) });
    rows.push({ name: `${c.label} open`, mbPerSec: await measure(perOp, () => aead.open(nonce, sealed)) });
  }
  return rows;
}

export function formatAeadTable(rows: Row[]): string {
  const base = rows[0]?.mbPerSec ?? 1;
  const width = Math.max(...rows.map((r) => r.name.length));
  const lines = [`${'64 KiB records'.padEnd(width)}    MB/s   vs node aes seal`];
  for (const r of rows) {
    lines.push(`${r.name.padEnd(width)}  ${r.mbPerSec.toFixed(0).padStart(6)}   ${(r.mbPerSec / base).toFixed(2)}x`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 1);
  console.log(`node ${process.version}, ${seconds}s per row`);
  console.log(formatAeadTable(await runAeadBench({ seconds })));
}
