// Direct-mode resume through zksd (PROTOCOL.md §11.8): applications use no proxy — curl's TCP connections go into the
// TUN, through our netstack and a direct-mode link to the topology's `zks worker`, which keeps each direct-mode
// session in a Durable Object. During a 200 MB download and a 200 MB upload, zksd's WebSockets to the Worker are
// killed in the kernel (`ss -K` in the client namespace: both ends see the TCP connection die, as when a network
// drops it). The applications' TCP connections stall instead of being reset, the Worker keeps the target
// connections, and both transfers complete with the right sha256. curl is held back while the links are down, so
// the cut lands mid-transfer on any machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, PORTS, createTopology, expectedSha256, type Topology } from './topology';
import { heldDownload, heldUpload } from '../fixtures/held-transfer';
import { startZksd, type ZksdProcess } from './zksd-helpers';

const MB = 1024 * 1024;
const T = ADDR.tunnelOnly;
let topo: Topology;
let zksd: ZksdProcess;

beforeAll(async () => {
  topo = await createTopology({ iperf: false, ssh: false });
  zksd = await startZksd(topo, []);
}, 90_000);
afterAll(async () => {
  await zksd?.stop();
  await topo?.destroy();
});

const curl = (args: string[]): ChildProcess => spawn('ip', ['netns', 'exec', topo.ns.client, 'curl', '-sS', '--fail', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
const resumedLines = () => (zksd.proc.stderr().match(/session resumed after \d+ ms/g) ?? []).length;

/** While curl is held: zksd's WebSockets to the Worker die, and it resumes its session(s) on new ones. */
async function cutRelayLinks(): Promise<void> {
  const before = resumedLines();
  const killed = await topo.exec('client', 'ss', ['-K', '-t', '-n', 'dst', ADDR.world, 'dport', '=', `:${PORTS.worker}`]);
  expect(killed.stdout.toString()).toMatch(/ESTAB/);
  await zksd.proc.waitStderr(new RegExp(`(?:session resumed after \\d+ ms[\\s\\S]*){${before + 1}}`), 60_000);
}

describe('zksd: direct-mode resume across lost WebSockets', () => {
  it('200 MB down and 200 MB up with no proxy: the relay links killed in the middle of each, both intact', async () => {
    const down = await heldDownload(curl([topo.url(`/bytes/${200 * MB}`, T)]), 20 * MB, cutRelayLinks);
    expect(down.code, down.stderr).toBe(0);
    expect(down.bytes).toBe(200 * MB);
    expect(down.sha256).toBe(expectedSha256(200 * MB));

    const up = await heldUpload(curl(['-X', 'POST', '-T', '-', topo.url('/sha256', T)]), 200 * MB, 20 * MB, cutRelayLinks);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe(expectedSha256(200 * MB));
    expect(zksd.proc.stderr()).not.toMatch(/could not resume|streams were reset/);
  }, 240_000);
});
