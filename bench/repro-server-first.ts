// Regression probe: bytes a target sends the instant it accepts (SSH/SMTP/MySQL banners) must reach the SOCKS5
// client. Opens `n` streams, 50 at a time, through a fresh `zks worker` + `zks socks5` to a loopback server that
// writes one byte on accept, with an optional delay; prints delivered/lost per delay. Exit code 1 when any is lost.
// Usage: node --import tsx bench/repro-server-first.ts [n=300]

import { createServer, type AddressInfo } from 'node:net';
import { churn } from './lib/measure';
import { killAll } from './lib/procs';
import { startZks, zksKeygen } from './lib/transports';

const n = Math.min(Number(process.argv[2] ?? 300) || 300, 5_000);
let lost = 0;
try {
  const zks = await startZks(await zksKeygen());
  for (const delayMs of [0, 20]) {
    const server = createServer((s) => {
      s.on('error', () => {});
      setTimeout(() => s.write('x'), delayMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const r = await churn(zks.transport, port, n, 50, 60_000, { probe: false, firstByteTimeoutMs: 2_000 });
    console.log(`greeting after ${delayMs} ms: delivered ${r.completed}, lost ${r.errors.length}${r.errors[0] ? ` (${r.errors[0]})` : ''}`);
    lost += r.errors.length;
    await new Promise<void>((r) => server.close(() => r()));
  }
} finally {
  await killAll();
}
process.exitCode = lost > 0 ? 1 : 0;
