// TEMPORARY diagnostic: heap snapshot diff of zks p2p-client at n vs 2n SOCKS5 UDP associations.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKey } from '../src/cli/args';
import { createTopology } from '../test/daemon/topology';
import { startIn } from '../test/daemon/topology-proc';

const ZKS = join(fileURLToPath(new URL('../', import.meta.url)), 'bin/zks.js');
const src = (await import('node:fs')).readFileSync('bench/udp.ts', 'utf8');
const ECHO_PORT = 7777; const SOCKS_PORT = 1080; const T = '10.79.1.1';
const HOLD_SOCKS = eval(src.slice(src.indexOf('const HOLD_SOCKS = `') + 'const HOLD_SOCKS = '.length, src.indexOf('`;', src.indexOf('const HOLD_SOCKS = `')) + 1));
const topo = await createTopology({ exitPeer: false, iperf: false, ssh: false });
const n = 2000;
try {
  const room = generateKey();
  const exit = startIn(topo.ns.world, 'exit', [process.execPath, ZKS, 'exit-peer', '--relay', topo.relayUrl!, '--key', topo.key!, '--room', room, '--allow-lan', '--udp-max-flows', '8000', '--quiet']);
  await exit.waitLine(/ready/, 30_000);
  const echo = startIn(topo.ns.world, 'echo', [process.execPath, '-e', `const d=require('dgram');const s=d.createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(7777,'10.79.1.1');console.log('echo ready')`]);
  await echo.waitLine(/echo ready/, 10_000);
  const client = startIn(topo.ns.world, 'client', [process.execPath, '--heapsnapshot-signal=SIGUSR1', ZKS, 'p2p-client', '--relay', topo.relayUrl!, '--key', topo.key!, '--room', room, '--listen', '127.0.0.1:1080', '--quiet'], { ...process.env, XDG_RUNTIME_DIR: topo.dir });
  await client.waitLine(/ready/, 30_000);
  const snap = async () => { const before = readdirSync('.').filter((f) => f.endsWith('.heapsnapshot')).length; process.kill(client.pid, 'SIGUSR2'); await client.waitLine(/^memory after GC:/, 30_000, client.lines.length); console.log(client.lines.at(-1)); process.kill(client.pid, 'SIGUSR1'); for (let i = 0; i < 600 && readdirSync('.').filter((f) => f.endsWith('.heapsnapshot')).length === before; i++) await new Promise((r) => setTimeout(r, 100)); await new Promise((r) => setTimeout(r, 2000)); };
  const h1 = startIn(topo.ns.world, 'h1', [process.execPath, '-e', HOLD_SOCKS, String(n)]);
  console.log(await h1.waitLine(/^held/, 120_000));
  await new Promise((r) => setTimeout(r, 6000));
  await snap();
  const h2 = startIn(topo.ns.world, 'h2', [process.execPath, '-e', HOLD_SOCKS, String(n)]);
  console.log(await h2.waitLine(/^held/, 120_000));
  await new Promise((r) => setTimeout(r, 6000));
  await snap();
  for (const p of [h1, h2, client, echo, exit]) await p.stop();
} finally {
  await topo.destroy();
}
