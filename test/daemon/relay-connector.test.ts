// zksd's relay connector on loopback (root: SO_MARK needs CAP_NET_ADMIN): the socket carries zksd's mark as the
// kernel sees it (`ss -e` shows fwmark), and when an endpoint refuses the next one is tried in the same call.
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { relayConnector } from '../../src/daemon/relay-connector';
import { ZKSD_SOCKET_MARK } from '../../src/daemon/system/killswitch';
import { freePort } from '../net-helpers';

const asRoot = process.getuid?.() === 0 || !!process.env.CI;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function listener(): Promise<number> {
  const server: Server = createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

const ss = (port: number): Promise<string> => new Promise((resolve) =>
  execFile('ss', ['-tnHe', 'state', 'established', 'dst', `127.0.0.1:${port}`], (_e, out) => resolve(String(out))));

describe.skipIf(!asRoot)('relayConnector', () => {
  it('connects with zksd\'s mark on the socket', async () => {
    const port = await listener();
    const socket: Socket = await relayConnector([{ address: '127.0.0.1', port }])('relay.example', port);
    cleanups.push(() => socket.destroy());
    expect(await ss(port)).toContain(`fwmark:0x${ZKSD_SOCKET_MARK.toString(16)}`);
  });

  it('an endpoint that refuses is skipped in the same call; all refusing is one error naming each', async () => {
    const [closed, open] = [await freePort(), await listener()];
    const connect = relayConnector([{ address: '127.0.0.1', port: closed }, { address: '127.0.0.1', port: open }]);
    const socket = await connect('relay.example', 443);
    cleanups.push(() => socket.destroy());
    expect(socket.remotePort).toBe(open);
    const none = relayConnector([{ address: '127.0.0.1', port: closed }, { address: '::1', port: closed }]);
    await expect(none('relay.example', 443)).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${closed} .*ECONNREFUSED.*; \\[::1\\]:${closed} `));
  });
});
