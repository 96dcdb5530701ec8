// The proxy's own control socket (`zks socks5` / `p2p-client`): a real client against the real Worker, its flows
// over the control protocol with bytes and rates, flow.close resetting the application's connection, zksd-only
// commands refused, the socket private to the user, a second client on the same path standing aside, and
// `zks status` / `zks flows` falling back to it when zksd is not running.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSocksClient, type SocksClient } from '../../src/proxy/socks-client';
import { ControlClient } from '../../src/control/client';
import { parseKey } from '../../src/cli/args';
import { socksConnect, startOrigin, startStack, type Origin } from '../integration/harness';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const runtime = mkdtempSync(join(tmpdir(), 'zks-xdg-'));
const path = join(runtime, `zks-${process.getuid?.() ?? 0}`, 'client.sock');
let stack: Awaited<ReturnType<typeof startStack>>;
let origin: Origin;
let client: SocksClient;
const logs: string[] = [];

beforeAll(async () => {
  [stack, origin] = await Promise.all([startStack(), startOrigin(8 * 1024 * 1024)]);
  client = await startSocksClient({ relay: stack.worker.url, key: parseKey(stack.key), listenPort: 0, control: path, log: (l) => logs.push(l) });
}, 60_000);
afterAll(async () => {
  await client?.close();
  await Promise.all([stack?.close(), origin?.close()]);
  rmSync(runtime, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, XDG_RUNTIME_DIR: runtime, ZKS_RUN_DIR: join(runtime, 'no-zksd') };
  return new Promise((resolve) => execFile(process.execPath, [join(ROOT, 'bin/zks.js'), ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
    resolve({ code: err ? 1 : 0, stdout: String(stdout), stderr: String(stderr) });
  }));
}

describe('zks socks5 control socket', () => {
  it('is private to the user: socket 0600 in a 0700 directory', () => {
    expect(client.controlPath).toBe(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
  });

  it('shows a live connection with bytes and a rate; flow.close resets it', async () => {
    const { socket, rep } = await socksConnect(client.port, '127.0.0.1', origin.port);
    expect(rep).toBe(0);
    socket.resume();
    let received = 0;
    socket.on('data', (d: Buffer) => { received += d.length; socket.pause(); setTimeout(() => socket.resume(), 50); });
    const closedByPeer = new Promise<string>((r) => { socket.on('error', (e) => r(e.message)); socket.on('close', () => r('closed')); });
    socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    const c = await ControlClient.connect(path);
    let flow: { id: number; destination: string; bytesDown: number; rateDown: number; path: string } | undefined;
    const deadline = Date.now() + 30_000; // only a failure deadline; rates are sampled every 250 ms
    while (!(flow && flow.rateDown > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const flows = await c.request<Array<NonNullable<typeof flow>>>('flows');
      flow = flows.find((f) => f.destination === `127.0.0.1:${origin.port}`);
    }
    expect(flow).toMatchObject({ path: 'worker' });
    expect(flow!.bytesDown).toBeGreaterThan(0);
    expect(flow!.rateDown).toBeGreaterThan(0);
    const status = await c.request<Record<string, unknown>>('status');
    expect(status).toMatchObject({ mode: 'socks5', killSwitch: null, flows: 1, udp: { associations: 0, active: 0, dnsOverTcp: 0, refusedNoUdp: 0, droppedForeignSource: 0 } });
    await c.request('flow.close', { id: flow!.id });
    // The proxy sent its RST before answering. A socket paused by our pacing does not always notice it on the read
    // side (seen: kernel socket gone, Node's still flowing); a write meets the reset at once, as an application's would.
    socket.write('after the reset');
    expect(await closedByPeer).toMatch(/closed|ECONNRESET|EPIPE/);
    expect(received).toBeLessThan(origin.big.length);
    const refused = await c.request('route.add', { cidr: '10.0.0.0/8' }).catch((e: Error) => e.message);
    expect(refused).toMatch(/not available in socks5 mode/);
    c.close();
  });

  it('a second client on the same path stands aside instead of stealing the socket', async () => {
    const other: string[] = [];
    const second = await startSocksClient({ relay: stack.worker.url, key: parseKey(stack.key), listenPort: 0, control: path, log: (l) => other.push(l) });
    try {
      expect(second.controlPath).toBeNull();
      expect(other.join('\n')).toMatch(/belongs to another running zks client/);
      const c = await ControlClient.connect(path);
      expect((await c.request<{ pid: number }>('status')).pid).toBe(process.pid);
      c.close();
    } finally {
      await second.close();
    }
  });

  it('zks status and zks flows fall back to the proxy when zksd is not running', async () => {
    const st = await cli(['status']);
    expect(st.stdout).toMatch(/mode\s+socks5 \(proxy on 127\.0\.0\.1:\d+; zksd is not running\)/);
    const json = JSON.parse((await cli(['status', '--json'])).stdout) as { mode: string };
    expect(json.mode).toBe('socks5');
    const fl = await cli(['flows', '--closed']);
    expect(fl.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${origin.port}`));
  });
});
