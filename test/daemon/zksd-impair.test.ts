// Loss and reordering between the application and zksd's netstack: the app namespace reaches the world through
// the client namespace, where a userspace impairment line (test/fixtures/impair-line.ts, a helper TUN — this
// kernel has no sch_netem) drops 1 % of packets and reorders 1 %, both directions, before they enter zks0 and
// after they leave it. Our TCP (retransmission, out-of-order queue, fast retransmit) must still deliver intact.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, createTopology, destroyAllTopologies, expectedSha256, type Topology } from './topology';
import { startZksd, type ZksdProcess } from './zksd-helpers';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0 && existsSync('/usr/sbin/nft');
const MB = 1_000_000;

afterAll(destroyAllTopologies);

describe.skipIf(!runnable && !process.env.CI)('zksd through a lossy, reordering line', () => {
  let topo: Topology;
  let zksd: ZksdProcess;

  beforeAll(async () => {
    topo = await createTopology({ impair: { loss: 0.01, reorder: 0.01, delayMs: 1, seed: 7 }, iperf: false, ssh: false });
    zksd = await startZksd(topo, []);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await topo?.destroy();
  });

  it('20 MB down and 8 MB up arrive intact while packets are dropped and reordered', async () => {
    const before = await topo.impairCounters();
    const down = await topo.exec('app', 'curl', ['-sS', '--max-time', '90', '-o', '-', topo.url(`/bytes/${20 * MB}`, ADDR.tunnelOnly)], { timeoutMs: 100_000 });
    expect(down.stderr).toBe('');
    expect(createHash('sha256').update(down.stdout).digest('hex')).toBe(expectedSha256(20 * MB));
    const body = down.stdout.subarray(0, 8 * MB);
    const up = await topo.exec('app', 'curl', ['-sS', '--max-time', '90', '--data-binary', '@-', topo.url('/sha256', ADDR.tunnelOnly)], { input: body, timeoutMs: 100_000 });
    expect(up.stdout.toString().trim()).toBe(createHash('sha256').update(body).digest('hex'));
    const after = await topo.impairCounters();
    expect(after.dropped - before.dropped).toBeGreaterThan(50);
    expect(after.reordered - before.reordered).toBeGreaterThan(50);
  });
});
