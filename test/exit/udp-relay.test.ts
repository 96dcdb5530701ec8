// UDP flows and echoes end to end: a TunnelPool client → the real Worker in workerd → its room → a real
// `ExitPeer` (UdpNat + Pinger) → kernel UDP sockets and ICMP on loopback. And the direct path: a Worker relays
// no UDP (a clear ZKS_ERR_UNSUPPORTED) and answers an echo only as a timed TCP connect.
import { describe, expect, it } from 'vitest';
import { useRelayStack } from './relay-stack';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ExitPeer, type ExitPeerOptions } from '../../src/exit/index';
import { TunnelPool } from '../../src/client/pool';
import { ZksError } from '../../src/errors/zks-error';
import { EchoFailure, type DatagramFlow, type Target } from '../../src/protocol/index';

const stack = useRelayStack();

/** A UDP server on 127.0.0.1 that answers "echo:<data>" from its port and "side:<data>" from a second socket. */
async function udpEcho(): Promise<{ port: number; sidePort: number; got: string[] }> {
  const bind = (s: Socket) => new Promise<number>((resolve) => s.bind(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
  const main = createSocket('udp4');
  const side = createSocket('udp4');
  const got: string[] = [];
  main.on('message', (msg, from) => {
    got.push(msg.toString());
    main.send(Buffer.from(`echo:${msg}`), from.port, from.address);
    side.send(Buffer.from(`side:${msg}`), from.port, from.address);
  });
  const port = await bind(main);
  const sidePort = await bind(side);
  stack.defer(() => { main.close(); side.close(); });
  return { port, sidePort, got };
}

const relayPair = (exitOpts: Partial<ExitPeerOptions> = {}) => stack.relay(exitOpts);

/** Collects a flow's datagrams; next() waits for the next one (bounded). */
function collect(flow: DatagramFlow) {
  const got: Array<{ src: Target; data: string }> = [];
  let wake: (() => void) | null = null;
  let closed: ZksError | null | undefined;
  flow.onDatagram = (src, data) => { got.push({ src, data: Buffer.from(data).toString() }); wake?.(); };
  flow.onClose = (err) => { closed = err; wake?.(); };
  return {
    got,
    get closed() { return closed; },
    async until(pred: () => boolean, what: string): Promise<void> {
      const deadline = Date.now() + 10_000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(got)}`);
        await new Promise<void>((r) => { wake = r; setTimeout(r, 200); });
      }
    },
  };
}

async function openFlow(pool: TunnelPool): Promise<DatagramFlow> {
  const flow = await pool.openDatagramFlow();
  if (flow instanceof ZksError) throw flow;
  return flow;
}

describe('relay mode: UDP through the room to the exit peer', () => {
  it('datagrams reach a UDP server and every reply comes back with its source (endpoint-independent filtering)', async () => {
    const server = await udpEcho();
    const { pool, exit } = await relayPair();
    const flow = await openFlow(pool);
    const c = collect(flow);
    for (let i = 0; i < 5; i++) expect(flow.send({ host: '127.0.0.1', port: server.port }, Buffer.from(`m${i}`))).toBe(true);
    await c.until(() => c.got.length === 10, '10 replies');
    expect(server.got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    const fromMain = c.got.filter((g) => g.src.port === server.port).map((g) => g.data);
    const fromSide = c.got.filter((g) => g.src.port === server.sidePort).map((g) => g.data);
    expect(fromMain).toEqual(['echo:m0', 'echo:m1', 'echo:m2', 'echo:m3', 'echo:m4']);
    expect(fromSide).toEqual(['side:m0', 'side:m1', 'side:m2', 'side:m3', 'side:m4']);
    expect(c.got.every((g) => g.src.host === '127.0.0.1')).toBe(true);
    expect(exit.datagrams.stats()).toMatchObject({ flows: 1, flowsOpened: 1, datagramsOut: 5, datagramsIn: 10 });
    flow.close();
    await c.until(() => exit.datagrams.stats().flows === 0, 'the exit to free the flow');
  });

  it('a LAN target at an exit without --allow-lan ends the flow with FORBIDDEN; the session goes on', async () => {
    const server = await udpEcho();
    const { pool } = await relayPair({ allowLan: false });
    const flow = await openFlow(pool);
    const c = collect(flow);
    flow.send({ host: '127.0.0.1', port: server.port }, Buffer.from('x'));
    await c.until(() => c.closed !== undefined, 'the flow to close');
    expect(c.closed).toBeInstanceOf(ZksError);
    expect(c.closed!.code).toBe('ZKS_ERR_UDP');
    expect(c.closed!.message).toMatch(/forbidden.*--allow-lan/);
    expect(server.got).toEqual([]);
    const again = await openFlow(pool); // the link is fine: a second flow opens
    expect(again.closed).toBe(false);
  });

  it('an exit started with --no-udp announces no UDP: the client fails clearly, before sending anything', async () => {
    const { pool } = await relayPair({ udp: false });
    const flow = await pool.openDatagramFlow();
    expect(flow).toBeInstanceOf(ZksError);
    expect((flow as ZksError).code).toBe('ZKS_ERR_UNSUPPORTED');
  });

  it('echo: the exit sends a real ICMP echo to 127.0.0.1 and says so', async () => {
    const { pool } = await relayPair();
    const r = await pool.echo({ host: '127.0.0.1', seq: 1, timeoutMs: 3000, payload: Buffer.from('zks') });
    expect(r).toMatchObject({ ok: true, method: 'icmp', address: '127.0.0.1' });
    if (r.ok) {
      expect(Buffer.from(r.payload).toString()).toBe('zks');
      expect(r.ttl).toBeGreaterThan(0);
      expect(r.rttMs).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('direct mode: the Worker relays no UDP', () => {
  it('openDatagramFlow is ZKS_ERR_UNSUPPORTED naming relay mode; an echo is a timed TCP connect (tcp:PORT)', async () => {
    const pool = stack.direct();
    const flow = await pool.openDatagramFlow();
    expect(flow).toBeInstanceOf(ZksError);
    expect((flow as ZksError).code).toBe('ZKS_ERR_UNSUPPORTED');
    expect((flow as ZksError).message).toMatch(/exit peer/);

    const tcp: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    stack.defer(() => new Promise((r) => tcp.close(r)));
    const port = (tcp.address() as AddressInfo).port;
    const r = await pool.echo({ host: '127.0.0.1', seq: 1, timeoutMs: 5000, tcpPort: port });
    expect(r).toMatchObject({ ok: true, method: 'tcp', tcpPort: port, ttl: 0 });

    const closedPort = port; // after close(), nothing listens there
    await new Promise((r) => tcp.close(r));
    // workerd reports an unreachable address as "refused" too, so through the Worker a refusal is no answer.
    const refused = await pool.echo({ host: '127.0.0.1', seq: 2, timeoutMs: 5000, tcpPort: closedPort });
    expect(refused).toMatchObject({ ok: false, code: EchoFailure.UNREACHABLE });
  });
});
