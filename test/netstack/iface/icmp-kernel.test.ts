// The Interface's ICMP and reassembly against the Linux stack: a TUN in a throwaway namespace (10.79.0.1/24,
// fd00:79::1/64). iputils `ping` (v4 and v6) gets its replies from sendEchoReply; a connected UDP socket gets
// ECONNREFUSED from sendPortUnreachable (v4 and v6, so the kernel accepted the quote and both checksums); 4 000-byte
// UDP datagrams and 3 000-byte IPv6 pings the kernel fragments at MTU 1500 are reassembled and answered whole. Skipped without root.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { configureTun, openTun, type TunDevice } from '../../../src/daemon/tun/index';
import { Interface } from '../../../src/netstack/iface';
import { createNetns, deleteAllNetns, randomIfName, run, type Netns } from '../../daemon/tun/netns';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0 && existsSync('/usr/bin/python3');

/** Kernel side, as one python3 run: refused UDP (v4, v6), then a 4 000-byte echo on port 7. */
const CLIENT = `
import socket
def refused(fam, host):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(20); s.connect((host, 443)); s.send(b'quic?')
    try:
        s.recv(100); return 'answered'
    except ConnectionRefusedError:
        return 'ECONNREFUSED'
    except Exception as e:
        return type(e).__name__
print('v4', refused(socket.AF_INET, '10.79.0.2'), flush=True)
print('v6', refused(socket.AF_INET6, 'fd00:79::2'), flush=True)
data = bytes((i * 7) & 255 for i in range(4000))
for fam, host in ((socket.AF_INET, '10.79.0.2'), (socket.AF_INET6, 'fd00:79::2')):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(20)
    s.sendto(data, (host, 7))
    got = s.recvfrom(65535)[0]
    print('echo', len(got), got == data, flush=True)
`;

class Responder {
  readonly iface: Interface;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly dev: TunDevice) {
    this.iface = new Interface({
      mtu: 1500,
      onEcho: (e) => this.iface.sendEchoReply(e),
      onUdp: (d) => {
        if (d.dstPort === 7) this.iface.sendUdp(d.dst, 7, d.src, d.srcPort, d.payload.slice());
        else this.iface.sendPortUnreachable(d.packet, performance.now());
        return true;
      },
    });
    dev.onPackets((batch) => {
      const now = performance.now();
      for (const p of batch) this.iface.receive(p, now);
      this.poll(now);
    });
  }

  private poll(now: number): void {
    const out: Uint8Array[] = [];
    const next = this.iface.poll(now, (p) => out.push(p.slice()));
    if (out.length > 0) this.dev.write(out);
    if (this.timer) clearTimeout(this.timer);
    this.timer = next === null ? null : setTimeout(() => this.poll(performance.now()), Math.max(0, next - now));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

afterAll(deleteAllNetns);

async function tunIn(ns: Netns): Promise<TunDevice> {
  const dev = openTun({ name: randomIfName() });
  const mv = await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
  if (mv.code !== 0) throw new Error(`moving ${dev.name}: ${mv.stderr}`);
  await configureTun(dev.name, { address: '10.79.0.1/24', mtu: 1500, netns: ns.name });
  await ns.ip('addr', 'add', 'fd00:79::1/64', 'dev', dev.name, 'nodad');
  return dev;
}

describe.skipIf(!runnable && !process.env.CI)('Interface ICMP against the Linux stack', () => {
  it('ping gets real replies, UDP gets ECONNREFUSED, a fragmented datagram comes back whole', async () => {
    const ns = await createNetns();
    let dev: TunDevice | undefined;
    let r: Responder | undefined;
    try {
      dev = await tunIn(ns);
      r = new Responder(dev);
      const ping4 = await run('ip', ['netns', 'exec', ns.name, 'ping', '-n', '-c', '3', '-i', '0.2', '-s', '1000', '10.79.0.2'], 30_000);
      expect(ping4.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
      // 3 000 bytes of data: the kernel sends each request in fragments (MTU 1500), reassembled before onEcho.
      const ping6 = await run('ip', ['netns', 'exec', ns.name, 'ping', '-6', '-n', '-c', '2', '-i', '0.2', '-s', '3000', 'fd00:79::2'], 30_000);
      expect(ping6.stdout).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);

      const py = await run('ip', ['netns', 'exec', ns.name, '/usr/bin/python3', '-c', CLIENT], 60_000);
      expect(py.stderr).toBe('');
      expect(py.stdout.trim().split('\n')).toEqual(['v4 ECONNREFUSED', 'v6 ECONNREFUSED', 'echo 4000 True', 'echo 4000 True']);
      expect(r.iface.stats).toMatchObject({ badChecksum: 0, malformed: 0, echoRequests: 5, echoReplies: 5, unreachableSent: 2 });
      expect(r.iface.reassembly.stats).toMatchObject({ reassembled: 4, overlapDropped: 0, invalid: 0 }); // 2 pings, 2 datagrams
    } finally {
      r?.stop();
      dev?.close();
      await ns.del();
    }
  });
});
