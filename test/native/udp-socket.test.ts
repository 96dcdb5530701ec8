// The data path addon's batched UDP socket (addon/udp.cc behind src/native/udp-socket.ts) on real kernel sockets:
// whatever mix of sizes and destinations one turn queues arrives exactly, in order, at every receiver (GSO runs,
// shorter last segments, empty datagrams, IPv6); reads come back with their sources; a datagram the kernel refuses
// is reported with its destination and the rest still go; and, in a namespace made here, a path MTU smaller than
// the datagrams (GSO refused, each one fragmented) and a full send buffer (a rate-limited qdisc: EAGAIN, wait for
// writable) lose nothing. Under CI the addon must be built (test/native/datapath.test.ts checks it).
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datapathAddon } from '../../src/native/datapath';
import { encodeDestination, openBatchedUdpSocket, type BatchedUdpHandler, type UdpSendFailure } from '../../src/native/udp-socket';
import { execIn } from '../daemon/topology-proc';
import { openFds } from '../exit/udp-peers';

const available = datapathAddon() !== null;
const PROBE = fileURLToPath(new URL('./fixtures/udp-batch-probe.ts', import.meta.url));

/** A node:dgram receiver with room for a few MB, recording every datagram it gets. */
class Receiver {
  readonly got: Buffer[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly sock: Socket, readonly host: string) {
    sock.on('message', (m) => {
      this.got.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async open(host: string): Promise<Receiver> {
    const sock = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve) => sock.bind(0, host, resolve));
    return new Receiver(sock, host);
  }
  get port(): number {
    return this.sock.address().port;
  }
  dest(): Uint8Array {
    const b = this.host.includes(':') ? new Uint8Array([...new Uint8Array(15), 1]) : new Uint8Array(this.host.split('.').map(Number));
    return encodeDestination(b, this.port);
  }
  /** Resolves once `n` datagrams are in; rejects after 10 s so a lost one fails the test instead of hanging it. */
  until(n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.got.length >= n) {
          clearTimeout(guard);
          resolve();
        } else this.waiters.push(check);
      };
      const guard = setTimeout(() => reject(new Error(`${this.got.length} of ${n} datagrams arrived`)), 10_000);
      check();
    });
  }
}

function handler(failures: UdpSendFailure[] = [], received: Array<{ payload: Buffer; host: string; port: number }> = []): BatchedUdpHandler<null> {
  return {
    received: (_c, payload, host, port) => received.push({ payload: Buffer.from(payload), host, port }),
    sendFailed: (_c, f) => failures.push(f),
    failed: (_c, err) => {
      throw err;
    },
  };
}

const datagram = (seq: number, size: number): Buffer => {
  const b = Buffer.alloc(size, seq & 0xff);
  if (size >= 4) b.writeUInt32BE(seq, 0);
  return b;
};

it('encodeDestination: views into shared slabs, each keeps its own address and port across slab boundaries', () => {
  const made = Array.from({ length: 50 }, (_, i) => {
    const v6 = i % 3 === 0;
    const address = v6 ? new Uint8Array(16).fill(i) : new Uint8Array([10, 0, i, 1]);
    return { address, port: 1000 + i, dest: encodeDestination(address, 1000 + i) };
  });
  for (const { address, port, dest } of made) {
    expect(dest.byteLength).toBe(18);
    expect([...dest.subarray(0, 16)]).toEqual([...address, ...new Uint8Array(16 - address.length)]);
    expect((dest[16] << 8) | dest[17]).toBe(port);
  }
});

describe.skipIf(!available)('BatchedUdpSocket', () => {
  let receivers: Receiver[];
  beforeAll(async () => {
    receivers = [await Receiver.open('127.0.0.1'), await Receiver.open('127.0.0.1'), await Receiver.open('127.0.0.2')];
  });
  afterAll(() => {
    for (const r of receivers ?? []) r.sock.close();
  });

  it('delivers any mix of sizes and destinations queued in one turn exactly and in order (property)', async () => {
    const run = fc.record({
      to: fc.nat(2),
      size: fc.oneof(fc.constantFrom(0, 1, 4, 1200, 1472, 1473), fc.integer({ min: 0, max: 2000 })),
      repeat: fc.integer({ min: 1, max: 40 }),
      shorterLast: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(run, { minLength: 1, maxLength: 8 }), async (runs) => {
        for (const r of receivers) r.got.length = 0;
        const expected: Buffer[][] = receivers.map(() => []);
        const sock = openBatchedUdpSocket(false, handler(), null)!;
        const dests = receivers.map((r) => r.dest());
        let seq = 0;
        for (const r of runs) {
          for (let i = 0; i < r.repeat; i++) {
            const size = r.shorterLast && i === r.repeat - 1 ? Math.floor(r.size / 2) : r.size;
            const d = datagram(seq++, size);
            expected[r.to].push(d);
            sock.queue(d, dests[r.to]);
          }
        }
        await Promise.all(receivers.map((r, i) => r.until(expected[i].length)));
        for (let i = 0; i < receivers.length; i++) expect(receivers[i].got).toEqual(expected[i]);
        sock.close();
      }),
      { numRuns: 40 },
    );
  });

  it('sends over IPv6 (::1): a GSO run with a shorter last datagram', async () => {
    const r = await Receiver.open('::1');
    const sock = openBatchedUdpSocket(true, handler(), null)!;
    const sent = Array.from({ length: 100 }, (_, i) => datagram(i, i === 99 ? 300 : 1400));
    for (const d of sent) sock.queue(d, r.dest());
    await r.until(100);
    expect(r.got).toEqual(sent);
    sock.close();
    r.sock.close();
  });

  it('reads in batches: every datagram with its source address and port, in order', async () => {
    const received: Array<{ payload: Buffer; host: string; port: number }> = [];
    const sock = openBatchedUdpSocket(false, handler([], received), null)!;
    const a = await Receiver.open('127.0.0.1');
    const b = await Receiver.open('127.0.0.2');
    const sent: Array<{ payload: Buffer; host: string; port: number }> = [];
    for (let i = 0; i < 200; i++) {
      const from = i % 3 === 0 ? b : a;
      const payload = datagram(i, 64 + (i % 50));
      sent.push({ payload, host: from.host, port: from.port });
      from.sock.send(payload, sock.port, '127.0.0.1');
    }
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`${received.length} of 200 read`)), 10_000);
      const check = () => (received.length >= 200 ? (clearTimeout(guard), resolve()) : setImmediate(check));
      check();
    });
    // Two senders: each one's datagrams keep their order; together they are all there.
    for (const from of [a, b]) {
      expect(received.filter((m) => m.port === from.port)).toEqual(sent.filter((m) => m.port === from.port));
    }
    sock.close();
    a.sock.close();
    b.sock.close();
  });

  it('a datagram the kernel refuses is reported with its destination; the ones after it still go', async () => {
    const r = receivers[0];
    r.got.length = 0;
    const failures: UdpSendFailure[] = [];
    const sock = openBatchedUdpSocket(false, handler(failures), null)!;
    const portZero = encodeDestination(new Uint8Array([127, 0, 0, 1]), 0);
    sock.queue(datagram(0, 100), r.dest());
    sock.queue(datagram(1, 100), portZero);
    sock.queue(datagram(2, 100), portZero);
    sock.queue(datagram(3, 100), r.dest());
    await r.until(2);
    expect(r.got.map((d) => d.readUInt32BE(0))).toEqual([0, 3]);
    // Both refused (reported as one or two failures), each naming port 0 and the kernel's reason.
    expect(failures.reduce((n, f) => n + f.count, 0)).toBe(2);
    for (const f of failures) expect(f).toMatchObject({ address: new Uint8Array([127, 0, 0, 1]), port: 0, code: 'EINVAL' });
    sock.close();
  });

  it('close() frees the fd; datagrams queued afterwards are ignored', async () => {
    const before = openFds();
    const failures: UdpSendFailure[] = [];
    const sock = openBatchedUdpSocket(false, handler(failures), null)!;
    expect(openFds()).toBe(before + 1);
    sock.queue(datagram(0, 10), receivers[0].dest());
    sock.close();
    sock.queue(datagram(1, 10), receivers[0].dest());
    expect(sock.closed).toBe(true);
    expect(openFds()).toBe(before);
    expect(failures).toEqual([]);
  });
});

describe.skipIf(!available || process.getuid?.() !== 0)('BatchedUdpSocket in a namespace of its own', () => {
  const ns = `zks-udpb-${randomBytes(3).toString('hex')}`;
  const ip = (...args: string[]) => {
    const r = spawnSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  const probe = async (count: number, size: number, v6 = false) => {
    const r = await execIn(ns, process.execPath, ['--import', 'tsx', PROBE, JSON.stringify({ count, size, v6 })], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`probe failed: ${r.stderr}`);
    return JSON.parse(r.stdout.toString().trim().split('\n').pop()!) as { received: number; inOrder: boolean; intact: boolean; stalls: number; failures: unknown[] };
  };
  beforeAll(() => {
    const r = spawnSync('ip', ['netns', 'add', ns]);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    ip('link', 'set', 'lo', 'up');
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });

  it('datagrams larger than the path MTU allows as GSO segments go one by one (fragmented), all of them', async () => {
    ip('link', 'set', 'lo', 'mtu', '1280');
    try {
      expect(await probe(300, 1400)).toEqual({ received: 300, inOrder: true, intact: true, stalls: 0, failures: [] });
      expect(await probe(300, 1400, true)).toEqual({ received: 300, inOrder: true, intact: true, stalls: 0, failures: [] });
    } finally {
      ip('link', 'set', 'lo', 'mtu', '65536');
    }
  });

  it('a full send buffer (rate-limited qdisc) makes the queue wait for writable: nothing lost, order kept', async () => {
    spawnSync('tc', ['-n', ns, 'qdisc', 'del', 'dev', 'lo', 'root']);
    const tc = spawnSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '200mbit', 'burst', '64kb', 'limit', '16mb'], { encoding: 'utf8' });
    if (tc.status !== 0) throw new Error(`tc: ${tc.stderr}`);
    const r = await probe(1000, 1200);
    expect(r).toMatchObject({ received: 1000, inOrder: true, intact: true, failures: [] });
    expect(r.stalls).toBeGreaterThan(0); // the EAGAIN path really ran
  });
});
