// DnsForwarder through the real tunnel (real pool, real Worker in workerd, a DNS-over-TCP server on loopback):
// ids restored, pipelining, SERVFAIL when the upstream is unreachable, and a property test — arbitrary datagrams
// either are refused (not a query) or get exactly one answer carrying the asker's id; nothing throws.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsForwarder, servfail } from '../../src/client/dns-forwarder';
import { startTcpDns } from '../fixtures/tcp-dns';
import { freePort, startStack } from '../integration/harness';

let stack: Awaited<ReturnType<typeof startStack>>;
let dns: Awaited<ReturnType<typeof startTcpDns>>;
beforeAll(async () => {
  [stack, dns] = await Promise.all([startStack(), startTcpDns()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([stack?.close(), dns?.close()]);
});

function query(id: number, name = 'test.zks'): Uint8Array {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Uint8Array.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

function forwarder(port: number, timeoutMs = 5_000) {
  const answers: Array<{ msg: Uint8Array; to: unknown }> = [];
  const f = new DnsForwarder({
    dialer: stack.socks.pool,
    upstream: { host: '127.0.0.1', port },
    timeoutMs,
    answer: (msg, to) => answers.push({ msg, to }),
  });
  const settled = async (n: number) => {
    const deadline = Date.now() + 30_000; // only a failure deadline
    while (answers.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return answers;
  };
  return { f, answers, settled };
}

describe('DnsForwarder', () => {
  it('answers 50 pipelined queries with the askers\' own ids, on one tunnel stream', async () => {
    const { f, settled } = forwarder(dns.port);
    for (let i = 0; i < 50; i++) expect(f.query(query(7), `asker-${i}`)).toBe(true); // everyone uses id 7
    const got = await settled(50);
    expect(got).toHaveLength(50);
    expect(new Set(got.map((a) => a.to)).size).toBe(50);
    for (const a of got) expect([a.msg[0], a.msg[1], a.msg[3] & 0x0f]).toEqual([0, 7, 0]);
    expect(f.stats).toMatchObject({ queries: 50, answers: 50, servfail: 0, streamsOpened: 1 });
    f.stop();
  });

  it('restores the asker\'s id when the query is a Buffer (whose slice() is a view, not a copy)', async () => {
    const { f, settled } = forwarder(dns.port);
    const q = Buffer.from(query(0x0abc));
    f.query(q.subarray(0), 'buffer');
    const [a] = await settled(1);
    expect([a!.msg[0], a!.msg[1]]).toEqual([0x0a, 0xbc]);
    expect([q[0], q[1]]).toEqual([0x0a, 0xbc]); // the caller's bytes untouched
    f.stop();
  });

  it('answers SERVFAIL at once when the upstream cannot be reached', async () => {
    const { f, settled } = forwarder(await freePort());
    f.query(query(0x1234), 'x');
    const [a] = await settled(1);
    expect([a!.msg[0], a!.msg[1], a!.msg[2] & 0x80, a!.msg[3] & 0x0f]).toEqual([0x12, 0x34, 0x80, 2]);
    expect(f.stats.servfail).toBe(1);
    f.stop();
  });

  it('servfail() keeps header and first question only, flags a response', () => {
    const q = Buffer.concat([Buffer.from(query(9)), Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0])]); // + EDNS OPT
    q[11] = 1; // ARCOUNT
    const r = servfail(q);
    expect(r.length).toBe(query(9).length);
    expect([r[2] & 0x80, r[3] & 0x0f, r[5], r[11]]).toEqual([0x80, 2, 1, 0]);
  });

  it('property: any datagram is refused or answered once with its own id; nothing throws', async () => {
    const { f, answers, settled } = forwarder(dns.port);
    let taken = 0;
    await fc.assert(fc.asyncProperty(fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.tuple(fc.nat(0xffff), fc.uint8Array({ maxLength: 64 })).map(([id, tail]) => Uint8Array.from([...query(id), ...tail])),
    ), async (bytes) => {
      const before = answers.length;
      const ok = f.query(bytes, bytes);
      if (!ok) {
        expect(bytes.length < 12 || (bytes[2]! & 0x80) !== 0).toBe(true);
        return;
      }
      taken++;
      const got = await settled(before + 1);
      const mine = got.filter((a) => a.to === bytes);
      expect(mine).toHaveLength(1);
      expect([mine[0]!.msg[0], mine[0]!.msg[1]]).toEqual([bytes[0], bytes[1]]);
    }), { numRuns: 150 });
    expect(taken).toBeGreaterThan(50);
    f.stop();
  });
});
