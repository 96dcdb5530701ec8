// zksd's relay connector on loopback (root: SO_MARK needs CAP_NET_ADMIN): the socket carries zksd's mark as the
// kernel sees it (`ss -e` shows fwmark), and when an endpoint refuses the next one is tried in the same call.
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { relayConnector, relayKey, relaysConnector } from '../../src/daemon/relay-connector';
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

describe.skipIf(!asRoot)('relaysConnector (zksd with several relays)', () => {
  it("each relay's URL host and port reach its own pinned endpoints; a host zksd did not pin is refused", async () => {
    const [a, b] = [await listener(), await listener()];
    const connect = relaysConnector(new Map([
      [relayKey('relay-a.example', 443), [{ address: '127.0.0.1', port: a }]],
      [relayKey('[fd79::1]', 8788), [{ address: '127.0.0.1', port: b }]],
    ]));
    const sa = await connect('RELAY-A.example', 443);
    cleanups.push(() => sa.destroy());
    expect(sa.remotePort).toBe(a);
    const sb = await connect('fd79::1', 8788);
    cleanups.push(() => sb.destroy());
    expect(sb.remotePort).toBe(b);
    await expect(connect('relay-a.example', 8443)).rejects.toThrow(/relay-a\.example:8443 is not one of the relays zksd pinned at start/);
    await expect(connect('elsewhere.example', 443)).rejects.toMatchObject({ code: 'ZKS_ERR_RELAY_UNREACHABLE' });
  });
});
