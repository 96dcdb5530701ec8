// The four configurations under test, each behind one `dial(port)` that resolves with a Duplex once the
// path is usable: direct = TCP connected; bare pipe = WebSocket open (fixture Worker); zks (direct mode) and
// zks relay = SOCKS5 reply received. Also starts the processes behind them (fixture Worker, `zks worker`,
// `zks socks5`, `zks exit-peer`, `zks p2p-client`), every one on 127.0.0.1 and registered in procs.ts so it
// is killed at the end.

import { connect } from 'node:net';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';
import { findDescendant, spawnProc, type Proc } from './procs';
import { socks5Connect } from './socks-client';

export type ConfigName = 'direct' | 'bare pipe' | 'zks' | 'zks relay' | 'zks relay, direct path' | 'zks relay, direct WebRTC';

export interface Transport {
  name: ConfigName;
  dial(port: number, timeoutMs?: number): Promise<Duplex>;
  /** Processes whose RSS/CPU belong to this configuration (label → pid). */
  pids: Record<string, number>;
  /** The SOCKS5 port applications use (zks, zks relay). */
  socksPort?: number;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ZKS = `${ROOT}bin/zks.js`;

export function directTransport(): Transport {
  return {
    name: 'direct',
    pids: {},
    dial: (port, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port });
        s.setNoDelay(true);
        const timer = setTimeout(() => (s.destroy(), reject(new Error('connect timed out'))), timeoutMs);
        s.once('error', (err) => (clearTimeout(timer), reject(err)));
        s.once('connect', () => (clearTimeout(timer), s.on('error', () => {}), resolve(s)));
      }),
  };
}

function wsDial(url: string, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const duplex = createWebSocketStream(ws);
    duplex.on('error', () => {}); // resets at the end of a sample are expected; failures surface below
    const fail = (err: Error) => (duplex.destroy(), reject(err));
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode} instead of a WebSocket`)));
    ws.once('open', () => {
      ws.removeListener('error', fail);
      resolve(duplex);
    });
  });
}

export async function startBarePipe(): Promise<{ transport: Transport; procs: Proc[] }> {
  const { proc, match } = await spawnProc(
    'bare-pipe worker',
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./serve-fixture.ts', import.meta.url))],
    /fixture ready on (ws:\/\/127\.0\.0\.1:\d+)/,
  );
  const url = match[1];
  const workerd = findDescendant(proc.pid, 'workerd');
  return {
    procs: [proc],
    transport: {
      name: 'bare pipe',
      pids: { workerd: workerd ?? NaN, 'miniflare host': proc.pid },
      dial: (port, timeoutMs = 10_000) => wsDial(`${url}/?host=127.0.0.1&port=${port}`, timeoutMs),
    },
  };
}

export function zksKeygen(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [ZKS, 'keygen'], { timeout: 20_000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim()),
    );
  });
}

function startWorker(name: string, key: string, zks = ZKS) {
  return spawnProc(
    name,
    process.execPath,
    [zks, 'worker', '--listen', '127.0.0.1:0', `--key=${key}`, '--allow-private'],
    /zks worker ready on (ws:\/\/127\.0\.0\.1:\d+)/,
  );
}

function socksDial(proxyPort: number): Transport['dial'] {
  return async (port, timeoutMs) => {
    const s = await socks5Connect(proxyPort, '127.0.0.1', port, timeoutMs);
    s.on('error', () => {});
    return s;
  };
}

/** `zks` is the CLI entry to run (bench/cpu.ts passes an older checkout's to compare in one run). */
export async function startZks(key: string, zks = ZKS): Promise<{ transport: Transport; procs: Proc[] }> {
  const worker = await startWorker('zks worker', key, zks);
  let socks: Awaited<ReturnType<typeof spawnProc>>;
  try {
    socks = await spawnProc(
      'zks socks5',
      process.execPath,
      // --resume-grace 0: the stateless Worker, as deployed by default (ZKS_DIRECT_RESUME off); sessions the Worker
      // keeps are measured against it by bench:resume. (An older checkout ignores the flag in direct mode.)
      [zks, 'socks5', '--relay', worker.match[1], `--key=${key}`, '--listen', '127.0.0.1:0', '--quiet', '--resume-grace', '0'],
      /zks socks5 ready on 127\.0\.0\.1:(\d+)/,
    );
  } catch (err) {
    await worker.proc.kill();
    throw err;
  }
  const workerd = findDescendant(worker.proc.pid, 'workerd');
  return {
    procs: [worker.proc, socks.proc],
    transport: {
      name: 'zks',
      pids: { 'zks socks5': socks.proc.pid, workerd: workerd ?? NaN, 'miniflare host': worker.proc.pid },
      socksPort: Number(socks.match[1]),
      dial: socksDial(Number(socks.match[1])),
    },
  };
}

/**
 * Relay mode on its own `zks worker` (its own workerd, so RSS and CPU per config stay apart and a fault in
 * the room cannot disturb the direct-mode figures): the exit peer attaches to the room first, then the
 * p2p-client joins it. Both are started with `--key=`/`--room=` because keys may start with '-'.
 */
/**
 * Worker + exit peer + p2p-client. `directPath`: client and exit set up a direct path on 127.0.0.1 — TCP when
 * they can (an older checkout: WebRTC), or WebRTC only ('webrtc'); otherwise every record crosses the Worker's room.
 */
export async function startZksRelay(key: string, roomSecret: string, zks = ZKS, directPath: boolean | 'webrtc' = false): Promise<{ transport: Transport; procs: Proc[] }> {
  // The relay is on loopback: the direct path is off unless --direct-bind asks for it (an older checkout has none).
  const direct = directPath ? ['--direct-bind', '127.0.0.1', ...(directPath === 'webrtc' ? ['--no-direct-tcp'] : [])] : [];
  const worker = await startWorker('relay worker', key, zks);
  const started: Proc[] = [worker.proc];
  try {
    const relay = worker.match[1];
    const exit = await spawnProc(
      'zks exit-peer',
      process.execPath,
      [zks, 'exit-peer', '--relay', relay, `--key=${key}`, `--room=${roomSecret}`, '--allow-lan', ...direct],
      /zks exit-peer ready/,
    );
    started.push(exit.proc);
    const client = await spawnProc(
      'zks p2p-client',
      process.execPath,
      [zks, 'p2p-client', '--relay', relay, `--key=${key}`, `--room=${roomSecret}`, '--listen', '127.0.0.1:0', '--quiet', ...direct],
      /zks p2p-client ready on 127\.0\.0\.1:(\d+)/,
    );
    started.push(client.proc);
    const workerd = findDescendant(worker.proc.pid, 'workerd');
    return {
      procs: started,
      transport: {
        name: directPath === 'webrtc' ? 'zks relay, direct WebRTC' : directPath ? 'zks relay, direct path' : 'zks relay',
        pids: {
          'zks p2p-client': client.proc.pid, 'zks exit-peer': exit.proc.pid, workerd: workerd ?? NaN,
          'miniflare host': worker.proc.pid,
        },
        socksPort: Number(client.match[1]),
        dial: socksDial(Number(client.match[1])),
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.kill()));
    throw err;
  }
}
