// `zks ping`'s loop (src/cli/ping-command.ts) through the real tunnel: a TunnelPool → the Worker in workerd → a room →
// a real ExitPeer whose Pinger sends ICMP on loopback (relay mode), and the Worker alone timing a TCP connect
// (direct mode). What a user would read: ping(8) lines marked (icmp) or (tcp:PORT), and the summary.
import { describe, expect, it } from 'vitest';
import { useRelayStack } from '../exit/relay-stack';
import { encodeBase64Url } from '../../src/crypto/handshake';
import { ExitPeer } from '../../src/exit/index';
import { TunnelPool } from '../../src/client/pool';
import { runPing, type PingSettings } from '../../src/cli/ping-command';
import { freePort } from '../net-helpers';
import { createServer, type AddressInfo } from 'node:net';

const stack = useRelayStack();

const relayPool = async (allowLan: boolean): Promise<TunnelPool> => (await stack.relay({ allowLan })).pool;

const settings = (extra: Partial<PingSettings> = {}): PingSettings =>
  ({ host: '127.0.0.1', count: 3, intervalMs: 200, timeoutMs: 5_000, payloadSize: 56, tcpPort: undefined, ...extra });

async function ping(pool: TunnelPool, s: PingSettings): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runPing(pool, s, (l) => lines.push(l));
  return { code, lines };
}

describe('zks ping through the tunnel', () => {
  it('relay mode: the exit pings for real; every line says (icmp), with the TTL it saw', async () => {
    const { code, lines } = await ping(await relayPool(true), settings());
    expect(code).toBe(0);
    expect(lines.slice(1, 4)).toEqual([1, 2, 3].map((seq) => expect.stringMatching(
      new RegExp(`^64 bytes from 127\\.0\\.0\\.1: icmp_seq=${seq} ttl=64 time=[\\d.]+ ms \\(icmp\\)$`))));
    expect(lines[6]).toMatch(/^3 packets transmitted, 3 received, 0% packet loss, time \d+ms$/);
    expect(lines[7]).toMatch(/^rtt min\/avg\/max\/mdev = /);
  });

  it('relay mode, an exit without --allow-lan: its refusal, once, and exit status 2', async () => {
    const { code, lines } = await ping(await relayPool(false), settings({ count: 4 }));
    expect(code).toBe(2);
    expect(lines[1]).toMatch(/^icmp_seq=1 target is a loopback\/private\/link-local\/multicast address; the exit peer allows it only with --allow-lan$/);
    expect(lines[4]).toMatch(/^1 packets transmitted, 0 received, \+1 errors, 100% packet loss/);
  });

  it('direct mode: the Worker can only time a TCP connect; every line says (tcp:PORT)', async () => {
    const pool = stack.direct();
    const server = createServer((sock) => sock.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    stack.defer(() => new Promise((r) => server.close(r)));
    const port = (server.address() as AddressInfo).port;
    const { code, lines } = await ping(pool, settings({ count: 2, tcpPort: port }));
    expect(code).toBe(0);
    expect(lines.slice(1, 3)).toEqual([1, 2].map((seq) => expect.stringMatching(
      new RegExp(`^from 127\\.0\\.0\\.1: icmp_seq=${seq} time=[\\d.]+ ms \\(tcp:${port}\\)$`))));
    // Nothing listening: workerd says "refused" for unreachable addresses too, so that is no answer (100 % loss).
    const closed = await freePort();
    const none = await ping(pool, settings({ count: 2, tcpPort: closed }));
    expect(none.code).not.toBe(0);
    expect(none.lines.join('\n')).toMatch(/2 packets transmitted, 0 received/);
  });
});

describe('the `zks ping` command', () => {
  it('bin/zks.js ping HOST -c 2 --room: ping(8) output through the room, exit status 0; a bad flag is ZKS_ERR_CONFIG', async () => {
    const { execFile } = await import('node:child_process');
    const { secret } = await stack.relay();
    const zks = (args: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, ['bin/zks.js', 'ping', ...args, '--relay', stack.url, '--key', encodeBase64Url(stack.key), '--room', secret, '--quiet'],
        { timeout: 60_000, env: { ...process.env, XDG_CONFIG_HOME: '/nonexistent' } },
        (err, out, errOut) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: errOut }));
    });
    const ok = await zks(['127.0.0.1', '-c', '2', '-i', '0.2']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^64 bytes from 127\.0\.0\.1: icmp_seq=1 ttl=64 time=[\d.]+ ms \(icmp\)$/m);
    expect(ok.out).toMatch(/^2 packets transmitted, 2 received, 0% packet loss/m);
    const bad = await zks(['127.0.0.1', '-c', 'x']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/ZKS_ERR_CONFIG|-c "x"/);
  }, 90_000);
});
