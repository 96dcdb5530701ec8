// `npm run bench -- expose`: HTTP tunnels (issue 12) in ONE run, on one `zks worker` (one workerd) shared by both
// paths: nginx serves the files, a sink in this process counts uploads. Rows:
// - small requests: wrk straight at nginx vs wrk through /tunnel/<id> (requests/s, p50/p99), and one client doing
//   sequential requests on one kept-alive connection: straight, through the forward path (zks socks5 → the Worker
//   in direct mode → nginx) and through the tunnel — the tunnel's p50 against the forward path's is the goal;
// - 1 GB download and upload with curl: tunnel vs forward path, MB/s and CPU-s/GB of workerd and the zks process
//   of each path (agent / socks5);
// - memory: workerd and agent RSS per idle exposed tunnel, and per request held in flight.
// Everything listens on 127.0.0.1; every loop is bounded; every process is killed at the end.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx, type Nginx } from '../test/fixtures/nginx';
import { percentile, sleep } from './lib/measure';
import { cpuSeconds, findDescendant, rssBytes, spawnProc } from './lib/procs';
import { socks5Connect } from './lib/socks-client';
import { zksKeygen } from './lib/transports';

const ZKS = fileURLToPath(new URL('../bin/zks.js', import.meta.url));
const MB = 1e6;

export interface ExposeSettings {
  bytes: number;
  samples: number;
  wrkSeconds: number;
  latencyCount: number;
  idleTunnels: number;
  heldRequests: number;
}

export interface ExposeBenchResults {
  wrk: Array<{ name: string; rps: number; p50ms: number; p99ms: number }>;
  latency: Array<{ name: string; p50ms: number; p99ms: number }>;
  transfer: Array<{ name: string; downMBs: number; upMBs: number; workerdCpuPerGB: number; zksCpuPerGB: number }>;
  memory: { workerdPerIdleTunnelKB: number; agentRssMB: number; workerdPerRequestKB: number; agentPerRequestKB: number };
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} failed: ${err.message} ${stderr}`)) : resolve(stdout));
  });
}

/** wrk's "Requests/sec" and its 50 % / 99 % latency lines, in ms. */
async function wrk(url: string, seconds: number): Promise<{ rps: number; p50ms: number; p99ms: number }> {
  const out = await run('wrk', ['-t2', '-c16', `-d${seconds}s`, '--latency', url], (seconds + 30) * 1000);
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    if (!m) throw new Error(`wrk printed no ${label}% line:\n${out}`);
    return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1);
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) throw new Error(`wrk printed no rate:\n${out}`);
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  return { rps: Number(rps[1]), p50ms: ms('50'), p99ms: ms('99') };
}

/** `count` sequential GETs on one kept-alive connection; each response read whole (Content-Length). */
async function keepAliveLatency(socket: Socket, host: string, path: string, count: number): Promise<number[]> {
  const times: number[] = [];
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    wake?.();
  });
  socket.resume(); // socks5Connect hands its socket over paused
  const more = () => new Promise<void>((r) => (wake = r));
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    let end = -1;
    while ((end = buf.indexOf('\r\n\r\n')) < 0) await more();
    const head = buf.subarray(0, end).toString();
    if (!/^HTTP\/1\.1 200/.test(head)) throw new Error(`latency probe got: ${head.split('\r\n')[0]}`);
    const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isFinite(length)) throw new Error('latency probe: no Content-Length');
    while (buf.length < end + 4 + length) await more();
    buf = buf.subarray(end + 4 + length);
    times.push(performance.now() - t0);
  }
  socket.destroy();
  return times;
}

const tcp = (port: number) => new Promise<Socket>((resolve, reject) => {
  const s = connect(port, '127.0.0.1', () => resolve(s));
  s.once('error', reject);
});

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = randomBytes(4 * 1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!out.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => out.end((e?: Error) => (e ? j(e) : r())));
}

export async function runExposeBench(s: ExposeSettings, log: (line: string) => void): Promise<ExposeBenchResults> {
  const dir = mkdtempSync(join(tmpdir(), 'zks-bench-expose-'));
  const held: ServerResponse[] = [];
  const sink = createServer((req, res) => {
    if (req.url === '/hold') return void held.push(res);
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(String(n)));
  });
  let nginx: Nginx | null = null;
  const stopNginx = () => {
    nginx?.stop();
    nginx = null;
  };
  try {
    log('writing the 1 GB file, starting nginx, the Worker, zks socks5 and the agents');
    await writeRandomFile(join(dir, 'big.bin'), s.bytes);
    const web = await startNginx({ 'small.txt': 'x'.repeat(100) });
    nginx = web;
    process.once('exit', stopNginx); // the watchdog exits without running this function's finally
    await run('ln', ['-s', join(dir, 'big.bin'), join(web.root, 'big.bin')], 5000);
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const sinkPort = (sink.address() as { port: number }).port;
    const key = await zksKeygen();
    const secret = await zksKeygen();
    const worker = await spawnProc('zks worker', process.execPath, [ZKS, 'worker', '--listen', '127.0.0.1:0', `--key=${key}`, '--allow-private'],
      /zks worker ready on (ws:\/\/127\.0\.0\.1:(\d+))/);
    const relay = worker.match[1];
    const workerPort = Number(worker.match[2]);
    const workerd = findDescendant(worker.proc.pid, 'workerd') ?? worker.proc.pid;
    const socks = await spawnProc('zks socks5', process.execPath, [ZKS, 'socks5', '--relay', relay, `--key=${key}`, '--listen', '127.0.0.1:0', '--quiet'],
      /zks socks5 ready on 127\.0\.0\.1:(\d+)/);
    const socksPort = Number(socks.match[1]);
    const expose = (target: string, id: string, extra: string[] = []) => spawnProc(`zks expose ${id}`, process.execPath,
      [ZKS, 'expose', target, '--id', id, `--secret=${secret}`, '--public', '--relay', relay, `--key=${key}`, '--quiet', '--max-concurrent', '10000', '--rate', '100000', ...extra],
      /zks expose ready/);
    const site = await expose(`http://127.0.0.1:${web.port}`, 'site');
    const upl = await expose(`http://127.0.0.1:${sinkPort}`, 'sink');
    const tunnelUrl = (id: string, path: string) => `http://127.0.0.1:${workerPort}/tunnel/${id}${path}`;

    log('small requests: wrk');
    const wrkRows: ExposeBenchResults['wrk'] = [];
    await wrk(tunnelUrl('site', '/small.txt'), 1); // warm-up
    for (const [name, url] of [['nginx directly', `http://127.0.0.1:${web.port}/small.txt`], ['through the tunnel', tunnelUrl('site', '/small.txt')]] as const) {
      wrkRows.push({ name, ...(await wrk(url, s.wrkSeconds)) });
    }

    log('small requests: sequential latency on one connection');
    const latency: ExposeBenchResults['latency'] = [];
    const probes: Array<[string, () => Promise<Socket>, number, string]> = [
      ['nginx directly', () => tcp(web.port), web.port, '/small.txt'],
      ['forward path (SOCKS5 → Worker → nginx)', () => socks5Connect(socksPort, '127.0.0.1', web.port), web.port, '/small.txt'],
      ['through the tunnel', () => tcp(workerPort), workerPort, '/tunnel/site/small.txt'],
    ];
    for (const [name, open, port, path] of probes) {
      log(`  ${name}`);
      const times = await keepAliveLatency(await open(), `127.0.0.1:${port}`, path, s.latencyCount);
      latency.push({ name, p50ms: percentile(times, 50), p99ms: percentile(times, 99) });
    }

    log(`1 GB transfers (${s.samples} rounds)`);
    const rows = { tunnel: { down: [] as number[], up: [] as number[], wcpu: 0, zcpu: 0 }, forward: { down: [] as number[], up: [] as number[], wcpu: 0, zcpu: 0 } };
    const timed = async (row: typeof rows.tunnel, zksPid: number, dir2: 'down' | 'up', args: string[]) => {
      const w0 = cpuSeconds(workerd);
      const z0 = cpuSeconds(zksPid);
      const out = await run('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{speed_download} %{speed_upload}', ...args], 600_000);
      row.wcpu += cpuSeconds(workerd) - w0;
      row.zcpu += cpuSeconds(zksPid) - z0;
      const [down, up] = out.trim().split(' ').map(Number);
      row[dir2].push((dir2 === 'down' ? down : up) / MB);
    };
    const file = `@${join(dir, 'big.bin')}`;
    for (let i = 0; i < s.samples; i++) {
      await timed(rows.tunnel, site.proc.pid, 'down', [tunnelUrl('site', '/big.bin')]);
      await timed(rows.forward, socks.proc.pid, 'down', ['--socks5', `127.0.0.1:${socksPort}`, `http://127.0.0.1:${web.port}/big.bin`]);
      await timed(rows.tunnel, upl.proc.pid, 'up', ['--data-binary', file, tunnelUrl('sink', '/')]);
      await timed(rows.forward, socks.proc.pid, 'up', ['--socks5', `127.0.0.1:${socksPort}`, '--data-binary', file, `http://127.0.0.1:${sinkPort}/`]);
    }
    const gb = (s.bytes * s.samples * 2) / 1e9;
    const med = (v: number[]) => percentile(v, 50);
    const transfer = (Object.entries(rows) as Array<[string, typeof rows.tunnel]>).map(([name, r]) => ({
      name: name === 'tunnel' ? 'through the tunnel (curl)' : 'forward path, SOCKS5 (curl)',
      downMBs: med(r.down), upMBs: med(r.up), workerdCpuPerGB: r.wcpu / gb, zksCpuPerGB: r.zcpu / gb,
    }));

    log(`memory: ${s.idleTunnels} idle tunnels, ${s.heldRequests} requests in flight`);
    await sleep(500); // let the transfers' buffers go before the baseline
    const w0 = rssBytes(workerd);
    const idle = [];
    for (let i = 0; i < s.idleTunnels; i++) idle.push(await expose(`http://127.0.0.1:${sinkPort}`, `idle-${i}`));
    const w1 = rssBytes(workerd);
    const agentRss = rssBytes(idle[0].proc.pid);
    const a0 = rssBytes(upl.proc.pid);
    const sockets: Socket[] = [];
    for (let i = 0; i < s.heldRequests; i++) {
      const so = await tcp(workerPort);
      so.on('error', () => {});
      so.write(`GET /tunnel/sink/hold HTTP/1.1\r\nHost: x\r\n\r\n`);
      sockets.push(so);
    }
    const deadline = Date.now() + 60_000;
    while (held.length < s.heldRequests && Date.now() < deadline) await sleep(20);
    if (held.length < s.heldRequests) throw new Error(`only ${held.length} of ${s.heldRequests} requests reached the sink`);
    const w2 = rssBytes(workerd);
    const a1 = rssBytes(upl.proc.pid);
    for (const r of held) r.end('ok');
    for (const so of sockets) so.destroy();
    return {
      wrk: wrkRows,
      latency,
      transfer,
      memory: {
        workerdPerIdleTunnelKB: (w1 - w0) / s.idleTunnels / 1024,
        agentRssMB: agentRss / MB,
        workerdPerRequestKB: (w2 - w1) / s.heldRequests / 1024,
        agentPerRequestKB: (a1 - a0) / s.heldRequests / 1024,
      },
    };
  } finally {
    stopNginx(); // not one of spawnProc's children: stopped here (or on exit, above)
    process.removeListener('exit', stopNginx);
    sink.close();
    for (const r of held) r.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—');

export function formatExpose(r: ExposeBenchResults): string {
  const direct = r.wrk[0];
  const lines = [
    '### HTTP tunnels (`npm run bench -- expose`)',
    '',
    '| small requests, wrk -t2 -c16 | requests/s | ÷ nginx directly | p50 ms | p99 ms |',
    '|---|---|---|---|---|',
    ...r.wrk.map((w) => `| ${w.name} | ${w.rps.toFixed(0)} | ${f2(w.rps / direct.rps)} | ${f2(w.p50ms)} | ${f2(w.p99ms)} |`),
    '',
    '| one client, sequential requests on one connection | p50 ms | p99 ms | p50 − forward path |',
    '|---|---|---|---|',
    ...r.latency.map((l) => `| ${l.name} | ${f2(l.p50ms)} | ${f2(l.p99ms)} | ${f2(l.p50ms - r.latency[1].p50ms)} |`),
    '',
    '| 1 GB with curl | down MB/s | up MB/s | ÷ forward (down / up) | workerd CPU-s/GB | zks process CPU-s/GB |',
    '|---|---|---|---|---|---|',
    ...r.transfer.map((t) => `| ${t.name} | ${f1(t.downMBs)} | ${f1(t.upMBs)} | ${f2(t.downMBs / r.transfer[1].downMBs)} / ${f2(t.upMBs / r.transfer[1].upMBs)} | ${f2(t.workerdCpuPerGB)} | ${f2(t.zksCpuPerGB)} |`),
    '',
    `Memory: workerd ${f1(r.memory.workerdPerIdleTunnelKB)} KB per idle exposed tunnel (an agent process: ${f1(r.memory.agentRssMB)} MB RSS); ` +
      `per request in flight: workerd ${f1(r.memory.workerdPerRequestKB)} KB, agent ${f1(r.memory.agentPerRequestKB)} KB.`,
  ];
  return lines.join('\n');
}
