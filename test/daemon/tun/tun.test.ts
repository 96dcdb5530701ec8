// The TUN binding against the real kernel: every device lives in a namespace the test creates (opened here, then
// moved in with `ip link set … netns`, which keeps the fd attached; or opened inside by a child via
// `ip netns exec`). Only 10.77.0.0/24 inside that namespace is used; namespaces are deleted even on failure.
import { existsSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  configureTun, openTun, PacketBatch, TunError, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4,
  type TunDevice,
} from '../../../src/daemon/tun/index';
import { bundleForNobody } from '../../fixtures/as-nobody';
import { createNetns, deleteAllNetns, randomIfName, run, spawnNode, type Netns } from './netns';
import { summarize, tcp4, TCP_ACK, TCP_RST, TCP_SYN, udp4 } from './packets';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0;
const CHILD = ['--import', 'tsx', 'test/daemon/tun/fixtures/tun-child.ts'];

// A script for `node -e` inside the namespace: sends `count` UDP datagrams of `size` bytes from 10.77.0.1 to
// 10.77.0.2:9000 (routed into the TUN), each payload starting with its 4-byte sequence number.
const SEND_UDP = `
const dgram = require('node:dgram');
const [count, size] = process.argv.slice(1).map(Number);
const s = dgram.createSocket('udp4');
s.bind(0, '10.77.0.1', async () => {
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(size, i & 0xff); b.writeUInt32BE(i, 0);
    await new Promise((r) => s.send(b, 9000, '10.77.0.2', r));
  }
  console.log('sent ' + count); s.close();
});`;

// Listens on 10.77.0.1:<port> inside the namespace and prints each datagram as "got <from> <payload>".
const LISTEN_UDP = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => console.log('got ' + r.address + ':' + r.port + ' ' + m.toString()));
s.bind(Number(process.argv[1]), '10.77.0.1', () => console.log('bound'));
setTimeout(() => process.exit(0), 15000);`;

const until = async (cond: () => boolean, timeoutMs: number, what: string): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

interface Rig {
  ns: Netns;
  dev: TunDevice;
  batches: PacketBatch[];
  /** performance.now() of the latest batch. */
  lastBatchAt: number;
}

let rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs) {
    r.dev.close();
    await r.ns.del();
  }
  rigs = [];
});
afterAll(deleteAllNetns);

/** A TUN (plain or offload) moved into a fresh namespace as 10.77.0.1/24, recording every batch. */
async function rig(offload: boolean, opts: { maxBatchPackets?: number } = {}): Promise<Rig> {
  const ns = await createNetns();
  let dev: TunDevice | undefined;
  try {
    dev = openTun({ name: randomIfName(), offload, ...opts });
    const r: Rig = { ns, dev, batches: [], lastBatchAt: 0 };
    rigs.push(r);
    await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]).then((x) => {
      if (x.code !== 0) throw new Error(`moving ${dev!.name} into ${ns.name}: ${x.stderr}`);
    });
    // No IPv6 on this link: keeps router solicitations and MLD reports out of the counts.
    await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', `net.ipv6.conf.${dev.name}.disable_ipv6=1`]);
    await configureTun(dev.name, { address: '10.77.0.1/24', netns: ns.name });
    await ns.ip('link', 'set', 'dev', dev.name, 'txqueuelen', '10000');
    dev.onPackets((b) => {
      r.batches.push(b);
      r.lastBatchAt = performance.now();
    });
    return r;
  } catch (e) {
    dev?.close();
    await ns.del();
    throw e;
  }
}

const packetsOf = (r: Rig) => r.batches.flatMap((b) => Array.from({ length: b.count }, (_, i) => ({ b, i, p: b.packet(i) })));
const udpTo9000 = (r: Rig) => packetsOf(r).filter(({ p }) => summarize(p).proto === 17 && summarize(p).dport === 9000);

describe.skipIf(!runnable && !process.env.CI)('TUN device (real kernel, in a test namespace)', () => {
  for (const offload of [false, true]) {
    const mode = offload ? 'offload' : 'plain';

    it(`${mode}: UDP sent inside the namespace arrives as whole IPv4 packets`, async () => {
      const r = await rig(offload);
      expect(r.dev.offload).toBe(offload);
      const sender = r.ns.node(SEND_UDP, ['20', '300']);
      await sender.waitLine(/^sent 20$/);
      await until(() => udpTo9000(r).length >= 20, 5000, '20 UDP packets');
      const got = udpTo9000(r);
      expect(got).toHaveLength(20);
      got.forEach(({ b, i, p }, k) => {
        const s = summarize(p);
        expect(s).toMatchObject({ version: 4, totalLength: p.length, src: '10.77.0.1', dst: '10.77.0.2' });
        expect(p.length).toBe(20 + 8 + 300); // boundaries: exactly one datagram per packet
        expect(new DataView(p.buffer, p.byteOffset + 28).getUint32(0)).toBe(k);
        const h = b.vnetHeader(i);
        if (offload) {
          // The kernel leaves the UDP checksum to us: partial checksum at the UDP header.
          expect(h.flags & VNET_HDR_F_NEEDS_CSUM).toBe(VNET_HDR_F_NEEDS_CSUM);
          expect(h).toMatchObject({ gsoType: VNET_HDR_GSO_NONE, csumStart: 20, csumOffset: 6 });
        } else {
          expect(h).toEqual({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
        }
      });
    });

    it(`${mode}: a crafted IPv4/UDP packet written to the TUN reaches a socket in the namespace`, async () => {
      const r = await rig(offload);
      const listener = r.ns.node(LISTEN_UDP, ['7000']);
      await listener.waitLine(/^bound$/);
      const payload = new TextEncoder().encode(`hello-${mode}`);
      const packets = [udp4('10.77.0.2', 5555, '10.77.0.1', 7000, payload)];
      expect(r.dev.write(packets)).toBe(1);
      await listener.waitLine(new RegExp(`^got 10\\.77\\.0\\.2:5555 hello-${mode}$`));
      if (offload) {
        // Partial checksum + NEEDS_CSUM in the vnet header: the kernel accepts it as the NIC would.
        const partial = udp4('10.77.0.2', 5556, '10.77.0.1', 7000, new TextEncoder().encode('partial'), { checksum: 'partial' });
        const hdr = { flags: VNET_HDR_F_NEEDS_CSUM, gsoType: VNET_HDR_GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 6 };
        expect(r.dev.write([partial], [hdr])).toBe(1);
        await listener.waitLine(/^got 10\.77\.0\.2:5556 partial$/);
      }
    });

    it(`${mode}: a burst of 2000 packets arrives in batches`, async () => {
      const r = await rig(offload);
      r.dev.pause(); // let the kernel queue the whole burst, so batching is deterministic
      const sender = r.ns.node(SEND_UDP, ['2000', '64']);
      await sender.waitLine(/^sent 2000$/, 20_000);
      const t0 = performance.now();
      r.dev.resume();
      await until(() => udpTo9000(r).length >= 2000, 10_000, '2000 UDP packets');
      const ms = r.lastBatchAt - t0;
      const got = udpTo9000(r);
      expect(got.map(({ p }) => new DataView(p.buffer, p.byteOffset + 28).getUint32(0))).toEqual([...Array(2000).keys()]);
      expect(r.batches.length).toBeLessThan(2000 / 10);
      expect(Math.max(...r.batches.map((b) => b.count))).toBe(64);
      console.log(`${mode}: 2000 packets in ${r.batches.length} batches, ${ms.toFixed(1)} ms (${Math.round(2000 / ms * 1000)} packets/s from resume() to the last batch, 64-byte payloads)`);
    });
  }

  it('offload: the kernel hands over TCP super-packets larger than the MTU (TSO) with a GSO header', async () => {
    const r = await rig(true);
    const conn = r.ns.node(`
      const s = require('node:net').connect({ host: '10.77.0.2', port: 80, localAddress: '10.77.0.1' }, () => {
        s.write(Buffer.alloc(200000, 7)); console.log('connected');
      });
      s.on('error', () => {}); setTimeout(() => process.exit(0), 15000);`);
    await until(() => packetsOf(r).some(({ p }) => summarize(p).proto === 6), 5000, 'SYN');
    const syn = packetsOf(r).find(({ p }) => summarize(p).proto === 6)!.p;
    const s = summarize(syn);
    const dv = new DataView(syn.buffer, syn.byteOffset);
    expect(syn[s.l4 + 13]).toBe(TCP_SYN);
    const clientSeq = dv.getUint32(s.l4 + 4);
    const synAck = tcp4('10.77.0.2', 80, '10.77.0.1', s.sport, { seq: 1000, ack: clientSeq + 1, flags: TCP_SYN | TCP_ACK, window: 65535, mss: 1460 });
    expect(r.dev.write([synAck])).toBe(1);
    await conn.waitLine(/^connected$/);
    const isData = ({ p }: { p: Uint8Array }) => { const x = summarize(p); return x.proto === 6 && x.totalLength > x.l4 + 20; };
    const isBig = (x: { p: Uint8Array; b: PacketBatch; i: number }) => isData(x) && x.b.gsoType(x.i) === VNET_HDR_GSO_TCPV4;
    await until(() => packetsOf(r).some(isBig), 30_000, 'a TCP super-packet with a GSO header');
    const big = packetsOf(r).find(isBig);
    const h = big!.b.vnetHeader(big!.i);
    expect(big!.p.length).toBeGreaterThan(1500);
    expect(h.gsoSize).toBe(1460);
    expect(h.hdrLen).toBe(40);
    expect(h.flags & VNET_HDR_F_NEEDS_CSUM).toBe(VNET_HDR_F_NEEDS_CSUM);
    expect(h.csumStart).toBe(20);
    expect(h.csumOffset).toBe(16);
    // Tear the connection down so the child's kernel socket does not retransmit into a deleted device.
    r.dev.write([tcp4('10.77.0.2', 80, '10.77.0.1', s.sport, { seq: 1001, ack: 0, flags: TCP_RST, window: 0 })]);
  });

  it('plain: TCP segments never exceed the MTU (no vnet header, no GSO)', async () => {
    const r = await rig(false);
    const conn = r.ns.node(`
      const s = require('node:net').connect({ host: '10.77.0.2', port: 80, localAddress: '10.77.0.1' }, () => {
        s.write(Buffer.alloc(50000, 7)); console.log('connected');
      });
      s.on('error', () => {}); setTimeout(() => process.exit(0), 15000);`);
    await until(() => packetsOf(r).some(({ p }) => summarize(p).proto === 6), 5000, 'SYN');
    const syn = packetsOf(r).find(({ p }) => summarize(p).proto === 6)!.p;
    const s = summarize(syn);
    const clientSeq = new DataView(syn.buffer, syn.byteOffset).getUint32(s.l4 + 4);
    r.dev.write([tcp4('10.77.0.2', 80, '10.77.0.1', s.sport, { seq: 1000, ack: clientSeq + 1, flags: TCP_SYN | TCP_ACK, window: 65535, mss: 1460 })]);
    await conn.waitLine(/^connected$/);
    await until(() => packetsOf(r).filter(({ p }) => summarize(p).proto === 6).length > 3, 5000, 'TCP data');
    for (const { p } of packetsOf(r)) expect(p.length).toBeLessThanOrEqual(1500);
  });

  it('an exception thrown in the packet callback surfaces as an uncaught exception', async () => {
    const ns = await createNetns();
    try {
      const child = spawnNode(['ip', 'netns', 'exec', ns.name, process.execPath, ...CHILD, 'throw', randomIfName()]);
      const code = await child.exited(15_000);
      expect(child.lines).not.toContain('callback never threw');
      expect(code).not.toBe(0);
      expect(child.stderr()).toContain('boom from onPackets');
    } finally {
      await ns.del();
    }
  });

  const expectPermissionError = (r: { stdout: string; stderr: string }): void => {
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim());
    expect(out).toMatchObject({ ok: false, isTunError: true, reason: 'permission', code: 'ZKS_ERR_TUN' });
    expect(out.message).toContain('opening a TUN device needs root (CAP_NET_ADMIN)');
  };

  it('a clear error without CAP_NET_ADMIN (root with every capability dropped: TUNSETIFF fails with EPERM)', async () => {
    const r = await run('setpriv', ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', process.execPath, ...CHILD, 'open'], 20_000);
    expectPermissionError(r);
  });

  // `nobody` may not be able to read the checkout (a clone under a 0700 mktemp folder): the child runs from a
  // bundle in a world-readable temp dir, with a copy of the addon.
  it('a clear error when not root (user nobody: opening /dev/net/tun fails with EACCES)', async () => {
    const child = await bundleForNobody('test/daemon/tun/fixtures/tun-child.ts');
    try {
      expectPermissionError(await child.run(['open']));
    } finally {
      child.cleanup();
    }
  });

  it('a clear error when /dev/net/tun is missing (private mount namespace hides it)', async () => {
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      `mount -t tmpfs none /dev/net && exec "${process.execPath}" ${CHILD.join(' ')} open`], 20_000);
    const out = JSON.parse(r.stdout.trim());
    expect(out).toMatchObject({ ok: false, reason: 'no-device', code: 'ZKS_ERR_TUN' });
    expect(out.message).toContain('/dev/net/tun is missing');
  });

  it('close is idempotent and write after close throws TunError; bad names are refused', async () => {
    const r = await rig(false);
    r.dev.close();
    r.dev.close();
    expect(r.dev.closed).toBe(true);
    expect(() => r.dev.write([new Uint8Array(20)])).toThrow(TunError);
    expect(() => openTun({ name: 'x'.repeat(16) })).toThrow(expect.objectContaining({ reason: 'invalid' }) as Error);
    expect(() => openTun({ mtu: 20 })).toThrow(expect.objectContaining({ reason: 'invalid' }) as Error);
  });

  it("a name another process's TUN holds gives reason 'busy'", async () => {
    const ns = await createNetns();
    try {
      const name = randomIfName();
      const child = spawnNode(['ip', 'netns', 'exec', ns.name, process.execPath, ...CHILD, 'open-twice', name]);
      expect(await child.exited(15_000)).toBe(0);
      expect(JSON.parse(child.lines[0]!)).toMatchObject({ ok: false, reason: 'busy', code: 'ZKS_ERR_TUN' });
    } finally {
      await ns.del();
    }
  });
});
