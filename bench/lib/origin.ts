// The loopback origin, run as its own child process so its CPU never mixes with the bench client's.
// Raw TCP servers on 127.0.0.1: `download` streams bytes forever (with backpressure), `upload` counts what it
// receives and every REPORT_MS sends a 16-byte report (u64 BE bytes so far, f64 BE origin ms), `echo` echoes
// (connect latency, churn, idle streams), `greet` sends one byte on accept, before the client says anything
// (the server-speaks-first check: SSH, SMTP and MySQL servers talk first).

import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { spawnProc, type Proc } from './procs';

export const REPORT_BYTES = 16;
const REPORT_MS = 100;
const BLOCK = 64 * 1024;

export interface OriginPorts {
  download: number;
  upload: number;
  echo: number;
  greet: number;
}

function quiet(socket: Socket): void {
  socket.on('error', () => {}); // resets from the tunnel are normal at the end of each sample
  socket.setNoDelay(true);
}

function downloadServer(): Server {
  const block = randomBytes(BLOCK);
  return createServer((socket) => {
    quiet(socket);
    socket.on('data', () => {});
    const pump = () => {
      for (let n = 0; !socket.destroyed; n++) {
        if (n === 16) return void setImmediate(pump);
        if (!socket.write(block)) return;
      }
    };
    socket.on('drain', () => setImmediate(pump)); // drain can fire from a nextTick chain: yield first
    pump();
  });
}

function uploadServer(): Server {
  return createServer((socket) => {
    quiet(socket);
    let count = 0;
    const report = () => {
      const r = Buffer.allocUnsafe(REPORT_BYTES);
      r.writeBigUInt64BE(BigInt(count), 0);
      r.writeDoubleBE(performance.now(), 8);
      if (!socket.destroyed) socket.write(r);
    };
    socket.on('data', (chunk: Buffer) => {
      count += chunk.length;
    });
    const timer = setInterval(report, REPORT_MS);
    report();
    socket.on('close', () => clearInterval(timer));
  });
}

function echoServer(): Server {
  return createServer((socket) => {
    quiet(socket);
    socket.pipe(socket);
  });
}

function greetServer(): Server {
  return createServer((socket) => {
    quiet(socket);
    socket.write(Buffer.from([0x2a]));
    socket.on('data', () => {});
    socket.on('end', () => socket.end());
  });
}

function listen(server: Server): Promise<number> {
  server.maxConnections = 20_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', 4096, () => resolve((server.address() as { port: number }).port));
  });
}

/** Spawns the origin process; resolves with its ports. */
export async function startOrigin(): Promise<{ proc: Proc; ports: OriginPorts }> {
  const self = new URL(import.meta.url).pathname;
  const { proc, match } = await spawnProc('origin', process.execPath, ['--import', 'tsx', self], /^origin ready (\{.*\})$/);
  return { proc, ports: JSON.parse(match[1]) as OriginPorts };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const ports: OriginPorts = {
    download: await listen(downloadServer()),
    upload: await listen(uploadServer()),
    echo: await listen(echoServer()),
    greet: await listen(greetServer()),
  };
  console.log(`origin ready ${JSON.stringify(ports)}`);
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(0), 1_000).unref(); // orphaned: the bench died
}
