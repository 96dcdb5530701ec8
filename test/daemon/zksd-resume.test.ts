// Resume through zksd (PROTOCOL.md §11.7): applications use no proxy — curl's TCP connections go into the TUN, through
// our netstack and a relay-mode link to the exit peer. `zks worker` (workerd) is stopped and started again during a
// 200 MB download and a 200 MB upload: every WebSocket and the room are gone for a while. The applications' TCP
// connections stall instead of being reset, and both transfers complete with the right sha256. The test holds curl
// back while the Worker is down, so the restart lands mid-transfer on any machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, createTopology, expectedSha256, type Topology } from './topology';
import { heldDownload, heldUpload } from '../fixtures/held-transfer';
import { startZksd, type ZksdProcess } from './zksd-helpers';

const MB = 1024 * 1024;
const T = ADDR.tunnelOnly;
let topo: Topology;
let zksd: ZksdProcess;

beforeAll(async () => {
  topo = await createTopology({ exitPeer: true, iperf: false, ssh: false });
  zksd = await startZksd(topo, ['--room', topo.roomSecret!]);
}, 90_000);
afterAll(async () => {
  await zksd?.stop();
  await topo?.destroy();
});

const curl = (args: string[]): ChildProcess => spawn('ip', ['netns', 'exec', topo.ns.client, 'curl', '-sS', '--fail', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
const resumedLines = () => (zksd.proc.stderr().match(/session resumed after \d+ ms/g) ?? []).length;

describe('zksd: resume across a Worker restart', () => {
  it('200 MB down and 200 MB up with no proxy: workerd restarted in the middle of each, both intact', async () => {
    const down = await heldDownload(curl([topo.url(`/bytes/${200 * MB}`, T)]), 20 * MB, () => topo.restartWorker());
    expect(down.code, down.stderr).toBe(0);
    expect(down.bytes).toBe(200 * MB);
    expect(down.sha256).toBe(expectedSha256(200 * MB));
    await zksd.proc.waitStderr(/session resumed after \d+ ms/, 60_000);
    const before = resumedLines();

    const up = await heldUpload(curl(['-X', 'POST', '-T', '-', topo.url('/sha256', T)]), 200 * MB, 20 * MB, () => topo.restartWorker());
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe(expectedSha256(200 * MB));
    expect(resumedLines()).toBeGreaterThan(before);
  }, 240_000);
});
