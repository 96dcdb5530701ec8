// zksd with two relays (`--relay` twice): the topology's `zks worker` on 10.79.0.1:8787 and a second one, on world's
// IPv6 address fd79::1:8788. zksd pins both relays' addresses; its links spread over them; the kill switch lets out
// nothing but those two endpoints. The second relay is stopped: zksd leaves it (status says why), every new
// connection goes through the first at once, and nothing leaks meanwhile; started again, the health check takes it
// back. Applications use no proxy: curl goes into the TUN and through our netstack.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, IFACES, PORTS, createTopology, expectedSha256, otherThan, withoutNeighbour, type Topology } from './topology';
import { startIn, type NsProcess } from './topology-proc';
import { startZksd, zksIn, type ZksdProcess } from './zksd-helpers';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ZKS = join(ROOT, 'bin/zks.js');
const MB = 1024 * 1024;
const T = ADDR.tunnelOnly;
const SECOND_PORT = 8788;
const second = () => `ws://[${ADDR.world6}]:${SECOND_PORT}`;
let topo: Topology;
let zksd: ZksdProcess;
let worker2: NsProcess | null = null;

const startSecond = async () => {
  worker2 = startIn(topo.ns.world, 'zks worker 2', [process.execPath, ZKS, 'worker', '--listen', `[${ADDR.world6}]:${SECOND_PORT}`, '--key', topo.key!, '--allow-private']);
  await worker2.waitLine(/zks worker ready on/, 30_000);
};

beforeAll(async () => {
  topo = await createTopology({ iperf: false, ssh: false });
  await startSecond();
  zksd = await startZksd(topo, ['--relay', second()]);
}, 90_000);
afterAll(async () => {
  await zksd?.stop();
  await worker2?.stop();
  await topo?.destroy();
});

interface Status { relays?: Array<{ url: string; up: boolean; error: string | null }>; relayEndpoints: string[]; connections: Array<{ relay?: string; resuming?: boolean }> }
const status = async (): Promise<Status> => JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as Status;

async function download(n: number): Promise<string> {
  const r = await topo.exec('client', 'curl', ['-sS', '--fail', '--max-time', '60', '-o', '-', topo.url(`/bytes/${n}`, T)], { timeoutMs: 70_000 });
  expect(r.code, r.stderr).toBe(0);
  return createHash('sha256').update(r.stdout).digest('hex');
}

describe('zksd with two relays', () => {
  it('pins both, links on both; with the second stopped every download goes through the first and nothing else leaves; it is taken back', async () => {
    const first = topo.relayUrl!;
    const st = await status();
    expect(st.relays?.map((r) => [r.url, r.up])).toEqual([[first, true], [second(), true]]);
    expect(st.relayEndpoints).toEqual([`${ADDR.world}:${PORTS.worker}`, `[${ADDR.world6}]:${SECOND_PORT}`]);
    // One link per relay from the start (the pool opens one on each: a dead relay must not delay it).
    expect(new Set(st.connections.map((c) => c.relay))).toEqual(new Set([first, second()]));
    expect(await download(8 * MB)).toBe(expectedSha256(8 * MB));
    const text = (await zksIn(topo, zksd, ['status'])).stdout.toString();
    expect(text).toContain(`${first} up, ${second()} up`);

    const cap = await topo.capture('client', IFACES.clientToWorld);
    await worker2!.stop();
    worker2 = null;
    await zksd.proc.waitStderr(new RegExp(`relay ${second().replace(/[[\]]/g, '\\$&')} left:`), 30_000);
    for (let i = 0; i < 4; i++) expect(await download(4 * MB)).toBe(expectedSha256(4 * MB));
    const left = await status();
    expect(left.relays?.map((r) => r.up)).toEqual([true, false]);
    expect(left.relays?.[1]?.error).toMatch(/./);
    // Links still resuming on the stopped relay may be listed (their sessions live there); every other is on the first.
    expect(left.connections.filter((c) => !c.resuming).every((c) => c.relay === first)).toBe(true);
    const { packets } = await cap.stop();
    expect(otherThan(withoutNeighbour(packets), [{ host: ADDR.world, port: PORTS.worker }, { host: ADDR.world6, port: SECOND_PORT }])).toEqual([]);

    await startSecond();
    await zksd.proc.waitStderr(new RegExp(`relay ${second().replace(/[[\]]/g, '\\$&')} is back`), 60_000);
    expect((await status()).relays?.map((r) => r.up)).toEqual([true, true]);
    expect(await download(4 * MB)).toBe(expectedSha256(4 * MB));
  }, 180_000);
});
