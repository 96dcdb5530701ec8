// zksd with the Worker and an exit peer at once (`--room SECRET --via worker`): applications use no proxy. TCP goes
// through the Worker first; what a Worker cannot reach (port 25 here; Cloudflare's own addresses on the edge) and
// every UDP datagram go to the room's exit peer (exit-router.ts). The flow table says which way each flow took.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ADDR, createTopology, expectedSha256, type Topology } from './topology';
import { startIn, type NsProcess } from './topology-proc';
import { startZksd, zksIn, type ZksdProcess } from './zksd-helpers';

const MB = 1024 * 1024;
const T = ADDR.tunnelOnly;
let topo: Topology;
let zksd: ZksdProcess;
let smtp: NsProcess;
let udpEcho: NsProcess;

beforeAll(async () => {
  topo = await createTopology({ exitPeer: true, iperf: false, ssh: false });
  // A mail server's greeting on the tunnel-only address's port 25, which no Worker may connect() to.
  smtp = startIn(topo.ns.world, 'smtp greeter', [process.execPath, '-e',
    `require('node:net').createServer((s) => s.end('220 zks test\\r\\n')).listen(25, '${T}', () => console.log('listening'))`]);
  await smtp.waitLine(/listening/, 15_000);
  // And a UDP echo on the tunnel-only address (world's DNS server is on the relay's address, which stays outside).
  udpEcho = startIn(topo.ns.world, 'udp echo', [process.execPath, '-e',
    `const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(7777, '${T}', () => console.log('listening'))`]);
  await udpEcho.waitLine(/listening/, 15_000);
  zksd = await startZksd(topo, ['--room', topo.roomSecret!, '--via', 'worker']);
}, 90_000);
afterAll(async () => {
  await zksd?.stop();
  await smtp?.stop();
  await udpEcho?.stop();
  await topo?.destroy();
});

interface FlowRow { path: string; protocol: string; destination: string; bytesDown: number }
let lastFlows: FlowRow[] = [];
const flows = async (): Promise<FlowRow[]> => (lastFlows = JSON.parse((await zksIn(topo, zksd, ['flows', '--closed', '--json'])).stdout.toString()) as FlowRow[]);

describe('zksd --via worker: the Worker and an exit peer at once', () => {
  it('HTTP through the Worker, port 25 and UDP through the exit peer; status says so', async () => {
    onTestFailed(() => console.error(`--- zksd:\n${zksd.proc.stderr()}\n--- flows:\n${JSON.stringify(lastFlows)}`));
    const down = await topo.exec('client', 'curl', ['-sS', '--fail', '--max-time', '60', '-o', '-', topo.url(`/bytes/${8 * MB}`, T)], { timeoutMs: 70_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(createHash('sha256').update(down.stdout).digest('hex')).toBe(expectedSha256(8 * MB));

    const mail = await topo.exec('client', 'bash', ['-c', `exec 3<>/dev/tcp/${T}/25 && head -1 <&3`]);
    expect(mail.stdout.toString().trim(), mail.stderr).toBe('220 zks test');

    await flows();
    const udp = await topo.exec('client', process.execPath, ['-e', `const s = require('node:dgram').createSocket('udp4');
      s.on('message', (m) => { console.log(m.toString()); process.exit(0); });
      s.send('via the exit peer', 7777, '${T}'); setTimeout(() => process.exit(3), 20000);`], { timeoutMs: 30_000 });
    expect(udp.stdout.toString().trim(), udp.stderr).toBe('via the exit peer');

    const rows = await flows();
    expect(rows.some((f) => f.destination === `${T}:80` && f.path === 'worker' && f.bytesDown >= 8 * MB)).toBe(true);
    expect(rows.some((f) => f.destination === `${T}:25` && f.path === 'exit')).toBe(true);
    expect(rows.some((f) => f.protocol === 'udp' && f.destination === `${T}:7777` && f.path === 'exit')).toBe(true);

    const st = JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as { mode: string; via?: string; exitPeer: boolean };
    expect(st).toMatchObject({ mode: 'relay', via: 'worker', exitPeer: true });
    expect((await zksIn(topo, zksd, ['status'])).stdout.toString()).toContain('TCP through the Worker first');
  }, 120_000);

  it('--via is checked: worker needs a room, anything else is refused', async () => {
    const noRoom = await zksIn(topo, zksd, ['up', '--foreground', '--relay', topo.relayUrl!, '--key', topo.key!, '--via', 'worker'], 'zksd');
    expect(noRoom.code).toBe(1);
    expect(noRoom.stderr + noRoom.stdout.toString()).toMatch(/--via worker .* needs --room/);
    const bad = await zksIn(topo, zksd, ['up', '--foreground', '--relay', topo.relayUrl!, '--key', topo.key!, '--room', topo.roomSecret!, '--via', 'both'], 'zksd');
    expect(bad.code).toBe(1);
    expect(bad.stderr + bad.stdout.toString()).toMatch(/--via must be worker or exit, got "both"/);
  });
});
