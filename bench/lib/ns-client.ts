// The kernel side of the netstack bench, run inside the bench namespace (`ip netns exec NS node --import tsx …`):
// ordinary Linux TCP sockets, so every figure compares our stack with the kernel's. Modes print one JSON line:
//   serve                      kernel sink/source/echo on 127.0.0.1:5001/5002/5003 (the kernel-to-kernel baseline)
//   up HOST PORT S WARMUP_MS   write zeros for S seconds; the rate comes from the sink's byte-count reports
//   down HOST PORT S WARMUP_MS read for S seconds, counted here
//   churn HOST PORT N CONC     N connections, CONC at a time: connect → 1 byte → echo → FIN → close
//   idle HOST PORT N CONC      N connections proven by an echoed byte, held until this process is killed
// Reports from a sink are 16 bytes every 100 ms: u64 BE bytes received so far, f64 BE sink ms. Bounded loops only.

import { createServer, connect, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';

export const PORTS = { sink: 5001, source: 5002, echo: 5003 } as const;
export const REPORT_BYTES = 16;
const REPORT_MS = 100;
const BLOCK = Buffer.alloc(256 * 1024);

const out = (o: unknown) => console.log(JSON.stringify(o));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function dial(host: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => (s.destroy(), reject(new Error('connect timed out'))), timeoutMs);
    s.once('error', (e) => (clearTimeout(timer), reject(e)));
    s.once('connect', () => (clearTimeout(timer), s.removeAllListeners('error'), s.on('error', () => {}), resolve(s)));
  });
}

function serve(): void {
  const opts = { noDelay: true };
  createServer(opts, (s) => {
    s.on('error', () => {});
    let count = 0;
    s.on('data', (d: Buffer) => { count += d.length; });
    const report = () => {
      const r = Buffer.allocUnsafe(REPORT_BYTES);
      r.writeBigUInt64BE(BigInt(count), 0);
      r.writeDoubleBE(performance.now(), 8);
      if (!s.destroyed) s.write(r);
    };
    const timer = setInterval(report, REPORT_MS);
    report();
    s.on('close', () => clearInterval(timer));
  }).listen(PORTS.sink, '127.0.0.1');
  createServer(opts, (s) => {
    s.on('error', () => {});
    s.on('data', () => {});
    const pump = () => {
      for (let n = 0; !s.destroyed; n++) {
        if (n === 16) return void setImmediate(pump);
        if (!s.write(BLOCK)) return;
      }
    };
    s.on('drain', () => setImmediate(pump));
    pump();
  }).listen(PORTS.source, '127.0.0.1');
  createServer(opts, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  }).listen(PORTS.echo, '127.0.0.1', 4096, () => out({ ready: true }));
}

async function up(host: string, port: number, seconds: number, warmupMs: number): Promise<void> {
  const s = await dial(host, port);
  const reports: Array<{ count: number; at: number }> = [];
  let pending: Buffer = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    while (pending.length >= REPORT_BYTES) {
      reports.push({ count: Number(pending.readBigUInt64BE(0)), at: pending.readDoubleBE(8) });
      pending = pending.subarray(REPORT_BYTES);
    }
  });
  let writing = true;
  const pump = () => {
    for (let n = 0; writing && !s.destroyed; n++) {
      if (n === 16) return void setImmediate(pump);
      if (!s.write(BLOCK)) return;
    }
  };
  s.on('drain', () => setImmediate(pump));
  pump();
  await sleep(warmupMs);
  const from = reports.length;
  await sleep(seconds * 1000);
  writing = false;
  const w = reports.slice(Math.max(0, from - 1));
  const first = w[0];
  const last = w[w.length - 1];
  const ok = w.length >= 2 && !s.destroyed;
  s.destroy();
  out(ok ? { mbPerSec: (last.count - first.count) / 1e6 / ((last.at - first.at) / 1000), bytes: last.count } : { error: `upload: ${w.length} reports, socket ${s.destroyed ? 'closed early' : 'open'}` });
}

async function down(host: string, port: number, seconds: number, warmupMs: number): Promise<void> {
  const s = await dial(host, port);
  let total = 0;
  s.on('data', (d: Buffer) => { total += d.length; });
  await sleep(warmupMs);
  const t0 = performance.now();
  const b0 = total;
  await sleep(seconds * 1000);
  const bytes = total - b0;
  const ms = performance.now() - t0;
  const ok = !s.destroyed;
  s.destroy();
  out(ok ? { mbPerSec: bytes / 1e6 / (ms / 1000), bytes: total } : { error: 'download: socket closed early' });
}

/** connect → one byte → its echo → our FIN → the peer's FIN (close). */
async function oneFlow(host: string, port: number): Promise<void> {
  const s = await dial(host, port, 5_000);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => (s.destroy(), reject(new Error('flow timed out'))), 5_000);
    s.once('data', () => s.end());
    s.once('close', () => (clearTimeout(timer), resolve()));
    s.write(Buffer.of(0x3f));
    s.resume();
  });
}

async function churn(host: string, port: number, n: number, conc: number): Promise<void> {
  let next = 0;
  let done = 0;
  const errors: string[] = [];
  const t0 = performance.now();
  const deadline = t0 + 60_000;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n && performance.now() < deadline) {
      next++;
      try {
        await oneFlow(host, port);
        done++;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  }));
  const ms = performance.now() - t0;
  out({ perSec: done / (ms / 1000), done, errors: errors.length, firstError: errors[0] ?? null });
}

async function idle(host: string, port: number, n: number, conc: number): Promise<void> {
  const sockets: Socket[] = [];
  let next = 0;
  let errors = 0;
  const deadline = performance.now() + 60_000;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n && performance.now() < deadline) {
      next++;
      try {
        const s = await dial(host, port);
        sockets.push(s);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('echo timed out')), 10_000);
          s.once('data', () => (clearTimeout(timer), resolve()));
          s.write(Buffer.of(0x3f));
        });
      } catch {
        errors++;
      }
    }
  }));
  out({ open: sockets.filter((s) => !s.destroyed).length, errors });
  setInterval(() => {}, 60_000); // held open until the bench kills us (the kernel then closes every socket)
}

async function main(): Promise<void> {
  const [mode, host = '127.0.0.1', p = '0', a = '0', b = '0'] = process.argv.slice(2);
  const port = Number(p);
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(0), 1_000).unref(); // orphaned: the bench died
  try {
    switch (mode) {
      case 'serve': serve(); break;
      case 'up': await up(host, port, Number(a), Number(b)); process.exit(0); break;
      case 'down': await down(host, port, Number(a), Number(b)); process.exit(0); break;
      case 'churn': await churn(host, port, Number(a), Number(b)); process.exit(0); break;
      case 'idle': await idle(host, port, Number(a), Number(b)); break;
      default: out({ error: `unknown mode ${mode}` }); process.exit(2);
    }
  } catch (e) {
    out({ error: (e as Error).message });
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
