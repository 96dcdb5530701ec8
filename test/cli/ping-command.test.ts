// `zks ping` flags and loop. The loop runs against the exit's real Pinger on loopback (the same echo() a
// TunnelPool offers through the tunnel): replies over ICMP and TCP, the summary, Ctrl-C, a refused target.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseArgs } from 'node:util';
import { ZksError } from '../../src/errors/zks-error';
import { Pinger } from '../../src/exit/pinger';
import { PING_OPTIONS, pingSettings, runPing, type PingSettings } from '../../src/cli/ping-command';
import { freePort } from '../net-helpers';

const settingsOf = (args: string[]) => {
  const { values, positionals } = parseArgs({ args, options: PING_OPTIONS, allowPositionals: true, strict: true });
  return pingSettings(values, positionals);
};

describe('pingSettings', () => {
  it('defaults as ping(8): until Ctrl-C, every second, 56 bytes, ICMP', () => {
    expect(settingsOf(['example.org'])).toEqual({ host: 'example.org', count: Infinity, intervalMs: 1000, timeoutMs: 10_000, payloadSize: 56, tcpPort: undefined });
  });

  it('-c -i -W -s --tcp', () => {
    expect(settingsOf(['-c', '3', '-i', '0.5', '-W', '2', '-s', '0', '--tcp', '80', '2001:db8::1']))
      .toEqual({ host: '2001:db8::1', count: 3, intervalMs: 500, timeoutMs: 2000, payloadSize: 0, tcpPort: 80 });
  });

  it('a timeout below a millisecond still waits 1 ms (never 0: that would time out before sending)', () => {
    expect(settingsOf(['-W', '0.0001', 'h']).timeoutMs).toBe(1);
  });

  it.each([
    [[], /no host to ping/],
    [['a', 'b'], /one host only, not "a b"/],
    [['-c', '0', 'h'], /-c "0": a whole number of requests/],
    [['-c', '1.5', 'h'], /-c "1.5"/],
    [['-c', '', 'h'], /-c ""/],
    [['-i', '0.1', 'h'], /-i "0.1": seconds between requests, 0.2 to 3600/],
    [['-i', 'soon', 'h'], /-i "soon"/],
    [['-W', '0', 'h'], /-W "0"/],
    [['-s', '1473', 'h'], /-s "1473": data bytes per request, 0 to 1472/],
    [['--tcp', '0', 'h'], /--tcp "0": a TCP port/],
    [['--tcp', '65536', 'h'], /--tcp "65536"/],
  ])('%j → ZKS_ERR_CONFIG', (args, message) => {
    let err: unknown;
    try {
      settingsOf(args);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_CONFIG');
    expect((err as ZksError).message).toMatch(message);
    expect((err as ZksError).message).toMatch(/usage: zks ping HOST/);
  });
});

describe('pingSettings: any flag text', () => {
  it('gives settings within the documented bounds or ZKS_ERR_CONFIG, nothing else', () => {
    const text = fc.oneof(fc.string({ maxLength: 12 }), fc.double().map(String), fc.integer({ min: -10, max: 70_000 }).map(String));
    fc.assert(fc.property(fc.record({ count: text, interval: text, timeout: text, size: text, tcp: text }, { requiredKeys: [] }),
      fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), (values, positionals) => {
        let s;
        try {
          s = pingSettings(values, positionals);
        } catch (e) {
          expect(e).toBeInstanceOf(ZksError);
          expect((e as ZksError).code).toBe('ZKS_ERR_CONFIG');
          return;
        }
        expect(s.count === Infinity || (Number.isInteger(s.count) && s.count >= 1)).toBe(true);
        expect(s.intervalMs).toBeGreaterThanOrEqual(200);
        expect(s.timeoutMs).toBeGreaterThan(0);
        expect(Number.isInteger(s.payloadSize) && s.payloadSize >= 0 && s.payloadSize <= 1472).toBe(true);
        expect(s.tcpPort === undefined || (Number.isInteger(s.tcpPort) && s.tcpPort >= 1 && s.tcpPort <= 65535)).toBe(true);
      }), { numRuns: 2000 });
  });
});

describe('runPing against the exit pinger (loopback)', () => {
  const pingers: Pinger[] = [];
  afterEach(() => {
    for (const p of pingers.splice(0)) p.close();
  });
  const pinger = (allowLan: boolean) => {
    const p = new Pinger({ allowLan });
    pingers.push(p);
    return p;
  };
  const settings = (extra: Partial<PingSettings>): PingSettings =>
    ({ host: '127.0.0.1', count: 3, intervalMs: 200, timeoutMs: 5_000, payloadSize: 56, tcpPort: undefined, ...extra });

  it('ICMP: the header, one line per reply, the summary; exit status 0', async () => {
    const lines: string[] = [];
    const code = await runPing(pinger(true), settings({}), (l) => lines.push(l));
    expect(code).toBe(0);
    expect(lines[0]).toBe('PING 127.0.0.1 56(84) bytes of data.');
    expect(lines.slice(1, 4)).toEqual([1, 2, 3].map((seq) => expect.stringMatching(
      new RegExp(`^64 bytes from 127\\.0\\.0\\.1: icmp_seq=${seq} ttl=64 time=\\d+\\.\\d+ ms \\(icmp\\)$`))));
    expect(lines.slice(4, 7)).toEqual(['', '--- 127.0.0.1 ping statistics ---', expect.stringMatching(/^3 packets transmitted, 3 received, 0% packet loss, time \d+ms$/)]);
    expect(lines[7]).toMatch(/^rtt min\/avg\/max\/mdev = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/);
  });

  it('--tcp PORT: connect times (a closed port answers with RST), marked tcp:PORT', async () => {
    const port = await freePort();
    const lines: string[] = [];
    expect(await runPing(pinger(true), settings({ count: 2, tcpPort: port }), (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toBe(`PING 127.0.0.1: TCP connect to port ${port} (tcp:${port}).`);
    expect(lines.slice(1, 3)).toEqual([1, 2].map((seq) => expect.stringMatching(
      new RegExp(`^from 127\\.0\\.0\\.1: icmp_seq=${seq} time=[\\d.]+ ms \\(tcp:${port}\\)$`))));
  });

  it('a target the exit refuses: one line, then the summary with the error; exit status 2', async () => {
    const lines: string[] = [];
    expect(await runPing(pinger(false), settings({ count: 5 }), (l) => lines.push(l))).toBe(2);
    expect(lines[1]).toMatch(/^icmp_seq=1 target is a loopback\/private.*--allow-lan$/);
    expect(lines[4]).toMatch(/^1 packets transmitted, 0 received, \+1 errors, 100% packet loss/);
  });

  it('Ctrl-C (abort) ends an endless ping with the summary of what was sent', async () => {
    const lines: string[] = [];
    const ctrlC = new AbortController();
    // The interval timer fires when the test says: after reply 1 (so request 2 goes out), never after reply 2.
    let next: (() => void) | undefined;
    const timers = { setTimeout: (fn: () => void) => (next = fn), clearTimeout: () => (next = undefined), now: () => performance.now() };
    const code = await runPing(pinger(true), settings({ count: Infinity }), (l) => {
      lines.push(l);
      if (l.includes('icmp_seq=1 ')) next?.();
      if (l.includes('icmp_seq=2 ')) ctrlC.abort();
    }, { signal: ctrlC.signal, timers });
    expect(code).toBe(0);
    expect(lines.at(-2)).toMatch(/^2 packets transmitted, 2 received, 0% packet loss/);
  });
});
