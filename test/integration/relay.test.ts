// Relay mode end to end: curl → p2p-client (SOCKS5) → Worker room (Durable Object in workerd) → exit peer →
// origin. The room must be blind (a tap on its WebSockets never sees plaintext), rooms isolated, and faults
// (exit gone, exit back) visible to applications as errors, never as silent truncation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deflateRawSync } from 'node:zlib';
import { curlViaSocks, idPayload, sha256, socksConnect, startCapture, startOrigin, startStack, type Origin, retryConnect, tunnelBytesIn, until } from './harness';
import type { LocalStack } from '../../src/cli/start';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { startLocalResolver } from '../../src/cli/local-resolver';
import { startSocksClient, type SocksClient } from '../../src/proxy/socks-client';
import { ExitPeer } from '../../src/exit';
import { deriveRoomKeys } from '../../src/crypto/room';
import { nodeCrypto } from '../../src/crypto/node';
import { generateKey, parseKey } from '../../src/cli/args';
import { ConnectResult } from '../../src/protocol/constants';

let stack: LocalStack & { logs: string[] };
let origin: Origin;

beforeAll(async () => {
  [stack, origin] = await Promise.all([startStack({ mode: 'relay' }), startOrigin()]);
});
afterAll(async () => {
  await stack?.close();
  await origin?.close();
});

describe('transfers through a room and an exit peer', () => {
  it('downloads and uploads 100 MB intact', async () => {
    const down = await curlViaSocks(stack.socks.port, `http://127.0.0.1:${origin.port}/big`, [], { timeoutMs: 90_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(sha256(down.stdout)).toBe(origin.bigSha);
    const up = await curlViaSocks(stack.socks.port, `http://127.0.0.1:${origin.port}/`, ['--data-binary', '@-', '-H', 'Expect:'], {
      timeoutMs: 90_000,
      input: origin.big,
    });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.toString()).toBe(origin.bigSha);
  });

  it('carries 50 concurrent streams with distinct payloads', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => i + 100);
    const results = await Promise.all(ids.map((id) => curlViaSocks(stack.socks.port, `http://127.0.0.1:${origin.port}/id/${id}`)));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(sha256(r.stdout)).toBe(sha256(idPayload(ids[i])));
    });
  });
});

/** A private relay set-up whose WebSockets pass through taps, with exits we can stop and start. */
async function tappedRelay() {
  const key = generateKey();
  const resolver = await startLocalResolver({ hostsOnly: true });
  const worker: DevWorker = await startDevWorker({ key, port: 0, allowPrivateTargets: true, dohUrl: resolver.url });
  const exitTap = await startCapture(worker.port);
  const clientTap = await startCapture(worker.port);
  return {
    key, worker, exitTap, clientTap,
    exitUrl: `ws://127.0.0.1:${exitTap.port}`,
    clientUrl: `ws://127.0.0.1:${clientTap.port}`,
    close: async () => {
      await exitTap.close();
      await clientTap.close();
      await worker.dispose();
      await resolver.close();
    },
  };
}

async function p2pClient(relay: string, key: string, secret: string): Promise<SocksClient> {
  return startSocksClient({ relay, key: parseKey(key), room: await deriveRoomKeys(nodeCrypto, secret), listenPort: 0 });
}

describe('the room is blind', () => {
  it('never sees the plaintext in either direction, and repeated plaintext does not repeat on the wire', async () => {
    const r = await tappedRelay();
    const secret = generateKey();
    const exit = await ExitPeer.start({ relay: r.exitUrl, key: parseKey(r.key), roomSecret: secret, allowLan: true });
    const client = await p2pClient(r.clientUrl, r.key, secret);
    try {
      const marker = 'ZKS-BLINDNESS-MARKER-7f3a9c';
      const body = Buffer.from(marker.repeat(40_000)); // ~1 MB of one repeated phrase
      const up = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/`, ['--data-binary', '@-', '-H', 'Expect:'], { input: body });
      expect(up.stdout.toString()).toBe(sha256(body));
      const down = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/7`);
      expect(sha256(down.stdout)).toBe(sha256(idPayload(7)));
      const toExit = r.exitTap.fromUpstream(); // what the room forwarded to the exit (client's upload)
      const toClient = r.clientTap.fromUpstream(); // what the room forwarded to the client (the download)
      expect(toExit.length).toBeGreaterThan(body.length);
      expect(toExit.includes(marker)).toBe(false);
      expect(toExit.includes('POST / HTTP')).toBe(false);
      expect(toClient.includes(idPayload(7).subarray(0, 64))).toBe(false);
      expect(toClient.includes('HTTP/1.1 200')).toBe(false);
      // ~1 MB of one phrase compresses ~1000x as plaintext; as ciphertext it must not compress at all.
      expect(deflateRawSync(toExit).length / toExit.length).toBeGreaterThan(0.95);
    } finally {
      await client.close();
      await exit.close();
      await r.close();
    }
  });
});

describe('rooms are isolated', () => {
  it("a client of room A reaches only A's exit; a wrong secret reaches nobody", async () => {
    const r = await tappedRelay();
    const [secretA, secretB] = [generateKey(), generateKey()];
    // Only A's exit may reach this machine (--allow-lan): the origin is reachable through A alone.
    const exitA = await ExitPeer.start({ relay: r.exitUrl, key: parseKey(r.key), roomSecret: secretA, allowLan: true });
    const exitB = await ExitPeer.start({ relay: r.exitUrl, key: parseKey(r.key), roomSecret: secretB, allowLan: false });
    const [clientA, clientB] = [await p2pClient(r.clientUrl, r.key, secretA), await p2pClient(r.clientUrl, r.key, secretB)];
    try {
      const a = await socksConnect(clientA.port, '127.0.0.1', origin.port);
      const b = await socksConnect(clientB.port, '127.0.0.1', origin.port);
      a.socket.destroy();
      b.socket.destroy();
      expect(a.rep).toBe(ConnectResult.OK);
      expect(b.rep).toBe(ConnectResult.FORBIDDEN); // B's exit decided, with B's policy
      expect(exitA.sessions).toBeGreaterThan(0);
      await expect(p2pClient(r.clientUrl, r.key, generateKey())).rejects.toMatchObject({ code: 'ZKS_ERR_EXIT_OFFLINE' });
    } finally {
      await clientA.close();
      await clientB.close();
      await exitA.close();
      await exitB.close();
      await r.close();
    }
  });
});

describe('faults', () => {
  it('exit killed mid-transfer: the transfer fails, clients get a clear error while it is away, and work after it returns', async () => {
    const r = await tappedRelay();
    const secret = generateKey();
    let exit = await ExitPeer.start({ relay: r.exitUrl, key: parseKey(r.key), roomSecret: secret, allowLan: true });
    const logs: string[] = [];
    const client = await startSocksClient({
      relay: r.clientUrl, key: parseKey(r.key), room: await deriveRoomKeys(nodeCrypto, secret), listenPort: 0, log: (l) => logs.push(l),
    });
    try {
      const pending = curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/big`, ['--limit-rate', '20M']);
      await until(() => tunnelBytesIn(client.pool) > 2 * 1024 * 1024, 'the download under way');
      await exit.close();
      const killed = await pending;
      expect(killed.code).not.toBe(0);
      expect(killed.stdout.length).toBeLessThan(origin.big.length);

      const away = await socksConnect(client.port, '127.0.0.1', origin.port);
      away.socket.destroy();
      expect(away.rep).toBe(ConnectResult.GENERAL_FAILURE);
      expect(logs.join('\n')).toMatch(/exit peer/); // the room said so: not a timeout

      exit = await ExitPeer.start({ relay: r.exitUrl, key: parseKey(r.key), roomSecret: secret, allowLan: true });
      expect(await retryConnect(client.port, '127.0.0.1', origin.port)).toBe(0);
      const next = await curlViaSocks(client.port, `http://127.0.0.1:${origin.port}/id/9`);
      expect(sha256(next.stdout)).toBe(sha256(idPayload(9)));
    } finally {
      await client.close();
      await exit.close();
      await r.close();
    }
  });
});
