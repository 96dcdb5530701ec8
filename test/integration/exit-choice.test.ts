// Automatic exit choice with real parts: the Worker in workerd (it refuses 127.0.0.77 as it refuses Cloudflare's own
// addresses on the edge, via ZKS_BLOCKED_RANGES, and port 25 always), a real exit peer in a room, and one SOCKS5
// client that uses both. curl and raw SOCKS5 connections show which way each stream went and what an application
// sees without an exit peer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type AddressInfo } from 'node:net';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { startSocksClient, type SocksClient } from '../../src/proxy/socks-client';
import { ExitPeer } from '../../src/exit';
import { deriveRoomKeys } from '../../src/crypto/room';
import { nodeCrypto } from '../../src/crypto/node';
import { generateKey, parseKey } from '../../src/cli/args';
import { parseSavedRules, type ViaRule } from '../../src/client/exit-choice';
import type { TunnelPool } from '../../src/client/pool';
import { curlViaSocks, socksConnect, until } from './harness';

const BLOCKED = '127.0.0.77';
const NAME_BEHIND = 'behind-cloudflare.test'; // the Worker's resolver and the exit's lookup both say 127.0.0.77

let worker: DevWorker;
let doh: HttpServer;
let exit: ExitPeer;
let both: SocksClient;
let workerOnly: SocksClient;
const exitLogs: string[] = [];
const clientLogs: string[] = [];
const workerOnlyLogs: string[] = [];
let rules: ViaRule[] = [];
const workerKey = generateKey();
const roomSecret = generateKey();
const servers: Array<HttpServer | TcpServer> = [];
const ports: Record<string, number> = {};

async function httpServer(host: string, body: string): Promise<number> {
  const s = createHttpServer((_req, res) => res.end(body));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, r));
  return (s.address() as AddressInfo).port;
}

const streamsOn = (pool: TunnelPool | null) => (pool?.connections ?? []).reduce((n, c) => n + c.mux.streamsOpened, 0);

beforeAll(async () => {
  // A DoH JSON endpoint for the Worker (ZKS_RESOLVE=doh): the one name it knows resolves into the blocked range.
  doh = createHttpServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const known = u.searchParams.get('name') === NAME_BEHIND && u.searchParams.get('type') === 'A';
    res.setHeader('content-type', 'application/dns-json');
    res.end(JSON.stringify(known ? { Status: 0, Answer: [{ type: 1, data: BLOCKED }] } : { Status: 3 }));
  });
  await new Promise<void>((r) => doh.listen(0, '127.0.0.1', r));
  const key = workerKey;
  worker = await startDevWorker({
    key, port: 0, allowPrivateTargets: true, dohUrl: `http://127.0.0.1:${(doh.address() as AddressInfo).port}/dns-query`,
    bindings: { ZKS_BLOCKED_RANGES: `${BLOCKED}/32` },
  });
  ports.open = await httpServer('127.0.0.2', 'open');
  ports.blocked = await httpServer(BLOCKED, 'blocked');
  // Port 25 on a loopback address of its own (we are root): connect() is never allowed there.
  const smtp = createTcpServer((s) => s.end('220 smtp ready\r\n'));
  servers.push(smtp);
  await new Promise<void>((r) => smtp.listen(25, '127.0.0.25', r));

  const secret = roomSecret;
  exit = await ExitPeer.start({
    relay: worker.url, key: parseKey(key), roomSecret: secret, allowLan: true, log: (l) => exitLogs.push(l),
    lookup: async (host) => {
      if (host === NAME_BEHIND) return [{ address: BLOCKED, family: 4 }];
      throw Object.assign(new Error(`${host}: not found`), { code: 'ENOTFOUND' });
    },
  });
  const room = await deriveRoomKeys(nodeCrypto, secret);
  both = await startSocksClient({
    relay: worker.url, key: parseKey(key), room, defaultVia: 'worker', listenPort: 0, viaRules: () => rules,
    log: (l) => clientLogs.push(l),
  });
  workerOnly = await startSocksClient({ relay: worker.url, key: parseKey(key), listenPort: 0, log: (l) => workerOnlyLogs.push(l) });
});

afterAll(async () => {
  await both?.close();
  await workerOnly?.close();
  await exit?.close();
  await worker?.dispose();
  for (const s of servers) s.close();
  doh?.close();
});

/** Runs `fn` and returns how many streams it opened on the Worker's pool and on the exit peer's. */
async function counted(fn: () => Promise<void>): Promise<{ worker: number; exit: number }> {
  const w = streamsOn(both.router.worker);
  const e = streamsOn(both.router.exit);
  await fn();
  return { worker: streamsOn(both.router.worker) - w, exit: streamsOn(both.router.exit) - e };
}

async function curlOk(url: string, body: string): Promise<void> {
  const r = await curlViaSocks(both.port, url);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout.toString()).toBe(body);
}

describe('a client with the Worker and an exit peer', () => {
  it('sends ordinary targets through the Worker', async () => {
    expect(await counted(() => curlOk(`http://127.0.0.2:${ports.open}/`, 'open'))).toEqual({ worker: 1, exit: 0 });
  });

  it('port 25 goes straight to the exit peer (the Worker is never asked)', async () => {
    const n = await counted(async () => {
      const { socket, rep } = await socksConnect(both.port, '127.0.0.25', 25);
      expect(rep).toBe(0);
      socket.resume();
      const greeting = await new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('end', () => resolve(text));
      });
      socket.destroy();
      expect(greeting).toBe('220 smtp ready\r\n');
    });
    expect(n).toEqual({ worker: 0, exit: 1 });
  });

  it('an address the Worker refuses is carried by the exit peer, then goes there first', async () => {
    const first = await counted(() => curlOk(`http://${BLOCKED}:${ports.blocked}/`, 'blocked'));
    expect(first).toEqual({ worker: 1, exit: 1 }); // refused by the Worker, then opened at the exit
    expect(clientLogs.join('\n')).toMatch(/127\.0\.0\.77: the Worker cannot reach it \(not reachable from a Worker: 127\.0\.0\.77 is in 127\.0\.0\.77\/32, which this relay refuses/);
    const again = await counted(() => curlOk(`http://${BLOCKED}:${ports.blocked}/`, 'blocked'));
    expect(again).toEqual({ worker: 0, exit: 1 });
    const closed = both.flows.flows(true).filter((f) => f.target === `${BLOCKED}:${ports.blocked}`);
    expect(closed.map((f) => f.path)).toEqual(['exit', 'exit']);
  });

  it('a name that resolves into a refused range: the Worker says so, the exit peer carries it', async () => {
    const n = await counted(() => curlOk(`http://${NAME_BEHIND}:${ports.blocked}/`, 'blocked'));
    expect(n).toEqual({ worker: 1, exit: 1 });
    expect(clientLogs.join('\n')).toContain(`${NAME_BEHIND}: the Worker cannot reach it (not reachable from a Worker: ${NAME_BEHIND} → 127.0.0.77 is in 127.0.0.77/32`);
  });

  it('rules send a target the other way, live; the most specific wins', async () => {
    rules = parseSavedRules(['127.0.0.0/8 exit']);
    expect(await counted(() => curlOk(`http://127.0.0.2:${ports.open}/`, 'open'))).toEqual({ worker: 0, exit: 1 });
    rules = parseSavedRules(['127.0.0.0/8 exit', '127.0.0.2 worker']);
    expect(await counted(() => curlOk(`http://127.0.0.2:${ports.open}/`, 'open'))).toEqual({ worker: 1, exit: 0 });
    // A rule is the user's word: a target the Worker refuses is not retried at the exit.
    rules = parseSavedRules([`${BLOCKED} worker`]);
    const n = await counted(async () => {
      const { socket, rep } = await socksConnect(both.port, BLOCKED, ports.blocked);
      socket.destroy();
      expect(rep).toBe(2); // connection not allowed by ruleset
    });
    expect(n).toEqual({ worker: 1, exit: 0 });
    rules = [];
  });

  it('UDP goes to the exit peer: a datagram flow opens there', async () => {
    const flow = await both.router.exit!.openDatagramFlow();
    expect(flow).not.toBeInstanceOf(Error);
    if (!(flow instanceof Error)) flow.close();
  });
});

describe('what is not retried at the exit peer', () => {
  it('a closed port stays "connection refused" through the Worker: not FORBIDDEN, not retried', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createTcpServer().listen(0, '127.0.0.2', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const n = await counted(async () => {
      const { socket, rep } = await socksConnect(both.port, '127.0.0.2', closed);
      socket.destroy();
      expect(rep).toBe(5);
    });
    expect(n).toEqual({ worker: 1, exit: 0 });
  });

  it('a private address the Worker refuses by policy is not sent to the exit peer (which allows its LAN)', async () => {
    const strict = await startDevWorker({ key: workerKey, port: 0, hostsOnly: true });
    const client = await startSocksClient({
      relay: strict.url, key: parseKey(workerKey), room: await deriveRoomKeys(nodeCrypto, roomSecret), defaultVia: 'worker', listenPort: 0,
    });
    const otherExit = await ExitPeer.start({ relay: strict.url, key: parseKey(workerKey), roomSecret, allowLan: true });
    try {
      const exitStreams = () => (client.router.exit?.connections ?? []).reduce((k, c) => k + c.mux.streamsOpened, 0);
      const before = exitStreams();
      const { socket, rep } = await socksConnect(client.port, '127.0.0.2', ports.open!);
      socket.destroy();
      expect(rep).toBe(2);
      expect(exitStreams()).toBe(before);
    } finally {
      await client.close();
      await otherExit.close();
      await strict.dispose();
    }
  });

  it('a malformed ZKS_BLOCKED_RANGES refuses every direct connection, naming it; rooms still work', async () => {
    const broken = await startDevWorker({ key: workerKey, port: 0, allowPrivateTargets: true, bindings: { ZKS_BLOCKED_RANGES: '10.0.0.0/8; 192.0.2.0/24' } });
    const logs: string[] = [];
    const direct = await startSocksClient({ relay: broken.url, key: parseKey(workerKey), listenPort: 0, log: (l) => logs.push(l) });
    const secret = generateKey();
    const roomExit = await ExitPeer.start({ relay: broken.url, key: parseKey(workerKey), roomSecret: secret, allowLan: true });
    const relayed = await startSocksClient({ relay: broken.url, key: parseKey(workerKey), room: await deriveRoomKeys(nodeCrypto, secret), listenPort: 0 });
    try {
      const { socket, rep } = await socksConnect(direct.port, '127.0.0.2', ports.open!);
      socket.destroy();
      expect(rep).toBe(2);
      await until(() => logs.some((l) => /relay is misconfigured \(ZKS_BLOCKED_RANGES/.test(l)), 'the refusal naming the cause');
      const r = await curlViaSocks(relayed.port, `http://127.0.0.2:${ports.open}/`);
      expect(r.stdout.toString(), r.stderr).toBe('open');
    } finally {
      await relayed.close();
      await roomExit.close();
      await direct.close();
      await broken.dispose();
    }
  });
});

describe('a client with the Worker only', () => {
  it('a refused target fails at once with the cause and the cure', async () => {
    const { socket, rep } = await socksConnect(workerOnly.port, BLOCKED, ports.blocked);
    socket.destroy();
    expect(rep).toBe(2);
    await until(() => workerOnlyLogs.some((l) => l.includes(`connect ${BLOCKED}:${ports.blocked} failed`)), 'the log line');
    const line = workerOnlyLogs.find((l) => l.includes(`connect ${BLOCKED}:${ports.blocked} failed`))!;
    expect(line).toMatch(/which this relay refuses \(ZKS_BLOCKED_RANGES\) \(an exit peer can reach it: add --room SECRET/);
    const smtp = await socksConnect(workerOnly.port, '127.0.0.25', 25);
    smtp.socket.destroy();
    expect(smtp.rep).toBe(2);
    await until(() => workerOnlyLogs.some((l) => /connect 127\.0\.0\.25:25 failed: not reachable from a Worker: port 25 \(SMTP\) is closed to Workers/.test(l)), 'the port 25 line');
  });
});
