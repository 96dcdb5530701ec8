// The kill switch on the wire: from the "host" namespace, TCP to a non-relay address, a UDP DNS query and IPv6 to
// the gateway must not reach veth0 (a tcpdump there sees none of them) while zksd's marked link socket reaches the
// relay endpoint and bypass prefixes connect; any other process to the relay address:port is refused, and DHCP
// gets out only as broadcast from the uplink. Switching it off lets the same probes out, which proves the capture
// would have seen them.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostNetwork } from '../../../src/daemon/system/index';
import { createRig, deleteAllRigs, sh, start, TUN, type Child, type Rig } from './rig';

// Under CI it runs even when it cannot, so that a missing tool fails loudly instead of skipping.
const runnable = (process.getuid?.() === 0 && existsSync('/usr/sbin/nft') &&
  ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'].some((p) => existsSync(p)) && existsSync('/usr/bin/dig')) || !!process.env.CI;

const RELAY_PORT = 7443;
const OTHER_PORT = 7080;
const MARK_PORT = 7999;

// Peer side: accepts on every local address (dual stack) on both ports and closes each connection.
const LISTEN = `
const net = require('node:net');
let n = 0;
for (const port of [${RELAY_PORT}, ${OTHER_PORT}]) {
  net.createServer((s) => s.end()).listen({ port, host: '::' }, () => { if (++n === 2) console.log('listening'); });
}
setTimeout(() => process.exit(0), 60000);`;

// Host side: connects to each "host:port" argument in turn and prints "<target> <connected|ERRCODE|timeout>".
const PROBE = `
const net = require('node:net');
(async () => {
  for (const t of process.argv.slice(1)) {
    const i = t.lastIndexOf(':');
    const host = t.slice(0, i).replace(/^\\[|\\]$/g, ''), port = Number(t.slice(i + 1));
    const r = await new Promise((res) => {
      const s = net.connect({ host, port });
      const timer = setTimeout(() => { s.destroy(); res('timeout'); }, 1500);
      s.on('connect', () => { clearTimeout(timer); s.destroy(); res('connected'); });
      s.on('error', (e) => { clearTimeout(timer); res(e.code); });
    });
    console.log(t + ' ' + r);
  }
})();`;

let rig: Rig;
let dir: string;
let host: HostNetwork | undefined;
let children: Child[] = [];

beforeEach(async () => {
  if (!runnable) return;
  rig = await createRig();
  dir = await mkdtemp(join(tmpdir(), 'zkssys-'));
  const listener = start('ip', ['netns', 'exec', rig.peer, process.execPath, '-e', LISTEN]);
  children.push(listener);
  await listener.waitFor(/listening/);
  host = await HostNetwork.up({
    tun: TUN,
    relayEndpoints: [{ address: '10.80.9.9', port: RELAY_PORT }, { address: 'fd80:9::9', port: RELAY_PORT }],
    bypass: ['10.80.7.0/24', 'fd80:7::/64'],
    killSwitch: true,
    ipv6: 'carry',
    statePath: join(dir, 'state.json'),
    netns: rig.ns,
  });
});
afterEach(async () => {
  if (!runnable) return;
  for (const c of children) await c.stop();
  children = [];
  await host?.down().catch(() => {});
  host = undefined;
  await rig.del();
  await rm(dir, { recursive: true, force: true });
});
afterAll(deleteAllRigs);

async function probe(...targets: string[]): Promise<Record<string, string>> {
  return probeWith([process.execPath, '-e', PROBE], targets);
}

/** As probe, but through zksd's own relay connector (a socket with zksd's mark). */
async function markedProbe(...targets: string[]): Promise<Record<string, string>> {
  return probeWith([process.execPath, '--import', 'tsx', 'test/daemon/system/fixtures/marked-probe.ts'], targets);
}

async function probeWith(argv: string[], targets: string[]): Promise<Record<string, string>> {
  const c = start('ip', ['netns', 'exec', rig.ns, ...argv, ...targets]);
  children.push(c);
  await c.waitFor(new RegExp(`^${targets.at(-1)!.replace(/[[\].]/g, '\\$&')} `), 20_000);
  return Object.fromEntries(c.out.map((l) => l.split(' ') as [string, string]));
}

/** Runs `fn` while tcpdump listens on veth0; returns the packet summary lines it printed. */
async function captured(fn: () => Promise<void>): Promise<string[]> {
  const cap = start('ip', ['netns', 'exec', rig.ns, 'tcpdump', '-i', 'veth0', '-n', '-l', '-U', 'not arp']);
  children.push(cap);
  await cap.waitFor(/listening on/, 10_000, 'err');
  await fn();
  // A marker datagram from the gateway, sent after everything fn sent: once tcpdump prints it, it has printed
  // those too. The marker (and an ICMP unreachable the host may answer it with) is left out of the lines.
  const mark = `require('node:dgram').createSocket('udp4').bind(0, '10.80.0.1', function () {
    this.send('zks-mark', ${MARK_PORT}, '10.80.0.2', () => this.close()); });`;
  const sent = await sh('ip', ['netns', 'exec', rig.peer, process.execPath, '-e', mark]);
  if (sent.code !== 0) throw new Error(`marker not sent: ${sent.stderr}`);
  const marker = new RegExp(`10\\.80\\.0\\.1\\.\\d+ > 10\\.80\\.0\\.2\\.${MARK_PORT}: UDP|udp port ${MARK_PORT} unreachable`);
  await cap.waitFor(marker, 30_000);
  await cap.stop('SIGINT');
  // Only the marker's own lines: a bare "7999" could also be part of a timestamp or another packet.
  return cap.out.filter((l) => !marker.test(l));
}

const dig = (server: string, ...extra: string[]) =>
  rig.exec('dig', [`@${server}`, '+time=1', '+tries=1', ...extra, 'example.com', 'A']);

const sawTo = (lines: string[], dst: string): boolean => lines.some((l) => l.includes(`> ${dst}:`));

describe.skipIf(!runnable)('kill switch on the wire', () => {
  it('blocks TCP, DNS and IPv6 to anything but the relay and bypass prefixes; nothing reaches veth0', async () => {
    let r: Record<string, string> = {};
    let digOut = { code: 0, stdout: '' };
    const lines = await captured(async () => {
      r = await probe(
        `10.80.0.1:${OTHER_PORT}`, `[fd80::1]:${OTHER_PORT}`, `10.80.9.9:${OTHER_PORT}`, // not the relay port
        `10.80.7.7:${OTHER_PORT}`, `[fd80:7::7]:${OTHER_PORT}`, // bypass prefixes
      );
      Object.assign(r, await markedProbe(`10.80.9.9:${RELAY_PORT}`, `[fd80:9::9]:${RELAY_PORT}`)); // zksd's link
      digOut = await dig('10.80.0.1');
      await dig('10.80.0.1', '+tcp');
      await dig('fd80::1');
    });
    // Rejected locally (tcp reset), so apps fail at once instead of timing out.
    expect(r[`10.80.0.1:${OTHER_PORT}`]).toBe('ECONNREFUSED');
    expect(r[`[fd80::1]:${OTHER_PORT}`]).toBe('ECONNREFUSED');
    expect(r[`10.80.9.9:${OTHER_PORT}`]).toBe('ECONNREFUSED');
    expect(r[`10.80.9.9:${RELAY_PORT}`]).toBe('connected');
    expect(r[`[fd80:9::9]:${RELAY_PORT}`]).toBe('connected');
    expect(r[`10.80.7.7:${OTHER_PORT}`]).toBe('connected');
    expect(r[`[fd80:7::7]:${OTHER_PORT}`]).toBe('connected');
    expect(digOut.code).not.toBe(0);
    expect(digOut.stdout).not.toMatch(/ANSWER SECTION/);

    expect(sawTo(lines, `10.80.9.9.${RELAY_PORT}`)).toBe(true); // the capture works
    expect(sawTo(lines, `fd80:7::7.${OTHER_PORT}`)).toBe(true);
    for (const dst of [`10.80.0.1.${OTHER_PORT}`, `fd80::1.${OTHER_PORT}`, `10.80.9.9.${OTHER_PORT}`, '10.80.0.1.53', 'fd80::1.53']) {
      expect(sawTo(lines, dst), `${dst} leaked:\n${lines.join('\n')}`).toBe(false);
    }
  });

  it('relay address exempt for every process: another process to the relay address:port is refused, zksd\'s link is not', async () => {
    let other: Record<string, string> = {};
    let link: Record<string, string> = {};
    const lines = await captured(async () => {
      other = await probe(`10.80.9.9:${RELAY_PORT}`, `[fd80:9::9]:${RELAY_PORT}`);
      link = await markedProbe(`10.80.9.9:${RELAY_PORT}`, `[fd80:9::9]:${RELAY_PORT}`);
    });
    // A relay address is often a shared anycast address (workers.dev): a browser reaching it would leak.
    expect(other).toEqual({ [`10.80.9.9:${RELAY_PORT}`]: 'ECONNREFUSED', [`[fd80:9::9]:${RELAY_PORT}`]: 'ECONNREFUSED' });
    expect(link).toEqual({ [`10.80.9.9:${RELAY_PORT}`]: 'connected', [`[fd80:9::9]:${RELAY_PORT}`]: 'connected' });
    // Exactly the marked connections' SYNs went out: one per endpoint (retransmissions would be the same port).
    const syns = lines.filter((l) => / > (10\.80\.9\.9|fd80:9::9)\.7443: Flags \[S\]/.test(l));
    expect(new Set(syns.map((l) => / > (\S+):/.exec(l)![1])).size).toBe(2);
    expect(new Set(syns.map((l) => / (\S+) > /.exec(l)![1])).size).toBe(2);
  });

  it('DHCP exempt to any address: a datagram from port 68 to a unicast host is dropped, a broadcast from the uplink passes', async () => {
    // The client side of DHCP from a plain UDP socket (as a unicast RENEW would be): bound to port 68 on the
    // uplink's address, so the limited broadcast leaves through veth0, not the TUN's /1 route.
    const send = `const d = require('node:dgram').createSocket('udp4');
      d.bind(68, '10.80.0.2', () => { d.setBroadcast(true); let left = process.argv.length - 1;
        for (const to of process.argv.slice(1)) d.send('zks-dhcp-probe', 67, to, (e) => {
          console.log(to + ' ' + (e ? e.code : 'sent')); if (--left === 0) d.close(); }); });`;
    const send6 = `const d = require('node:dgram').createSocket('udp6');
      d.bind(546, '::', () => { let left = process.argv.length - 1;
        for (const to of process.argv.slice(1)) d.send('zks-dhcp-probe', 547, to, (e) => {
          console.log(to + ' ' + (e ? e.code : 'sent')); if (--left === 0) d.close(); }); });`;
    const lines = await captured(async () => {
      for (const [script, targets] of [[send, ['10.80.0.1', '10.80.9.9', '255.255.255.255']], [send6, ['fd80::1', 'ff02::1:2%veth0']]] as const) {
        const r = await sh('ip', ['netns', 'exec', rig.ns, process.execPath, '-e', script, ...targets]);
        expect(r.code, r.stderr).toBe(0);
      }
    });
    expect(sawTo(lines, '255.255.255.255.67'), lines.join('\n')).toBe(true);
    expect(sawTo(lines, 'ff02::1:2.547'), lines.join('\n')).toBe(true);
    for (const dst of ['10.80.0.1.67', '10.80.9.9.67', 'fd80::1.547']) {
      expect(sawTo(lines, dst), `${dst} leaked:\n${lines.join('\n')}`).toBe(false);
    }
  });

  it('switched off, the same probes go out; switched back on, they stop again', async () => {
    await host!.setKillSwitch(false);
    let r: Record<string, string> = {};
    let lines = await captured(async () => {
      r = await probe(`10.80.0.1:${OTHER_PORT}`, `[fd80::1]:${OTHER_PORT}`);
      await dig('10.80.0.1');
    });
    expect(r).toEqual({ [`10.80.0.1:${OTHER_PORT}`]: 'connected', [`[fd80::1]:${OTHER_PORT}`]: 'connected' });
    expect(sawTo(lines, '10.80.0.1.53')).toBe(true);

    await host!.setKillSwitch(true);
    lines = await captured(async () => {
      r = await probe(`10.80.0.1:${OTHER_PORT}`, `[fd80::1]:${OTHER_PORT}`);
      await dig('10.80.0.1');
    });
    expect(r).toEqual({ [`10.80.0.1:${OTHER_PORT}`]: 'ECONNREFUSED', [`[fd80::1]:${OTHER_PORT}`]: 'ECONNREFUSED' });
    expect(lines.filter((l) => / > (10\.80\.0\.1|fd80::1)\.(53|7080):/.test(l))).toEqual([]);
  });

  it('a bypass added live gets out; deleted, its traffic goes into the TUN again', async () => {
    const target = `10.80.8.8:${OTHER_PORT}`;
    expect((await probe(target))[target]).toBe('timeout'); // routed into zks0, which nobody reads
    await host!.addBypass('10.80.8.0/24');
    expect((await probe(target))[target]).toBe('connected');
    await host!.delBypass('10.80.8.0/24');
    const lines = await captured(async () => {
      expect((await probe(target))[target]).toBe('timeout');
    });
    expect(sawTo(lines, `10.80.8.8.${OTHER_PORT}`)).toBe(false);
  });

  it('after a crash (TUN gone) the kill switch still holds until recover()', async () => {
    await rig.ip('link', 'del', TUN);
    const r = await probe(`10.80.5.5:${OTHER_PORT}`, `10.80.0.1:${OTHER_PORT}`);
    // With the /1 routes gone, 10.80.5.5 would take the default route out of veth0: the kill switch refuses it.
    expect(r[`10.80.5.5:${OTHER_PORT}`]).toBe('ECONNREFUSED');
    expect(r[`10.80.0.1:${OTHER_PORT}`]).toBe('ECONNREFUSED');
    const link = await markedProbe(`10.80.9.9:${RELAY_PORT}`);
    expect(link[`10.80.9.9:${RELAY_PORT}`]).toBe('connected'); // the daemon can reconnect to the relay
    host = undefined;
    expect(await HostNetwork.recover(join(dir, 'state.json'), rig.ns)).toBe(true);
    expect((await probe(`10.80.0.1:${OTHER_PORT}`))[`10.80.0.1:${OTHER_PORT}`]).toBe('connected');
  });
});
