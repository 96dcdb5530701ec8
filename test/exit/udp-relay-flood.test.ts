// A flood of new UDP flows through the real room at an exit with a small --udp-max-flows: every flow past the cap
// ends at once with a clear error (ZKS_ERR_UDP "too many flows ... --udp-max-flows"), the exit counts them all and
// logs only a few lines, and nothing else is hurt: the flows under the cap and a TCP stream on the same session work.
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { generateKey } from '../../src/cli/args';
import { startDevWorker, type DevWorker } from '../../src/cli/dev-worker';
import { TunnelPool } from '../../src/client/pool';
import { encodeBase64Url } from '../../src/crypto/handshake';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys } from '../../src/crypto/room';
import { ZksError } from '../../src/errors/zks-error';
import { ExitPeer } from '../../src/exit/index';
import type { DatagramFlow } from '../../src/protocol/index';
import { UdpEcho } from './udp-peers';

const key = new Uint8Array(randomBytes(32));
const CAP = 8;
const FLOOD = 40;
let worker: DevWorker;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  worker = await startDevWorker({ key: encodeBase64Url(key), host: '127.0.0.1', port: 0, allowPrivateTargets: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await worker?.dispose();
});

/** Flow events, awaited as they happen. */
class FlowWatch {
  readonly replies: string[] = [];
  closed: ZksError | null | undefined;
  private wake: Array<() => void> = [];
  constructor(readonly flow: DatagramFlow) {
    flow.onDatagram = (_src, data) => {
      this.replies.push(Buffer.from(data).toString());
      this.poke();
    };
    flow.onClose = (err) => {
      this.closed = err;
      this.poke();
    };
  }
  private poke(): void {
    for (const w of this.wake.splice(0)) w();
  }
  async until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise<void>((resolve) => this.wake.push(resolve));
  }
}

async function tcpEcho(): Promise<number> {
  // The exit resets its side when the session ends: an ECONNRESET here is the expected end, not a failure.
  const server: Server = createServer((s) => s.on('error', () => s.destroy()).pipe(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

it(`${FLOOD} flows past a cap of ${CAP}: each ends with LIMIT, the rest of the session is unhurt`, async () => {
  const echo = await UdpEcho.start('127.0.0.1', { alsoFrom: '127.0.0.2' });
  cleanups.push(() => echo.close());
  const tcpPort = await tcpEcho();
  const secret = generateKey();
  const logs: string[] = [];
  const exit = await ExitPeer.start({ relay: worker.url, key, roomSecret: secret, allowLan: true, udpMaxFlows: CAP, log: (l) => logs.push(l) });
  cleanups.push(() => exit.close());
  const pool = new TunnelPool({ url: worker.url, key, room: await deriveRoomKeys(nodeCrypto, secret) });
  cleanups.push(() => pool.stop());

  const open = async (): Promise<FlowWatch> => {
    const flow = await pool.openDatagramFlow();
    if (flow instanceof ZksError) throw flow;
    return new FlowWatch(flow);
  };
  const kept = await Promise.all(Array.from({ length: CAP }, open));
  kept.forEach((w, i) => w.flow.send(echo.target, Buffer.from(`keep${i}`)));
  await Promise.all(kept.map((w) => w.until(() => w.replies.length === 2)));

  const flood = await Promise.all(Array.from({ length: FLOOD }, open));
  flood.forEach((w, i) => w.flow.send(echo.target, Buffer.from(`flood${i}`)));
  await Promise.all(flood.map((w) => w.until(() => w.closed !== undefined)));
  for (const w of flood) {
    expect(w.closed).toBeInstanceOf(ZksError);
    expect(w.closed!.code).toBe('ZKS_ERR_UDP');
    expect(w.closed!.message).toMatch(/^UDP flow too many flows: the exit peer relays at most 8 UDP flows per session \(--udp-max-flows\)/);
    expect(w.replies).toEqual([]);
  }
  expect(echo.received.map((r) => r.payload.toString()).filter((t) => t.startsWith('flood'))).toEqual([]);

  // Nothing else hurt: the flows under the cap still relay, both ways, and a TCP stream opens on the same session.
  kept.forEach((w, i) => w.flow.send(echo.target, Buffer.from(`again${i}`)));
  await Promise.all(kept.map((w) => w.until(() => w.replies.length === 4)));
  kept.forEach((w, i) => expect(w.replies.sort()).toEqual([`again${i}`, `keep${i}`, `other:again${i}`, `other:keep${i}`]));
  const opened = await pool.open({ host: '127.0.0.1', port: tcpPort });
  if (!opened.ok) throw new Error(`CONNECT failed: ${JSON.stringify(opened)}`);
  const stream = opened.stream;
  let echoed = '';
  const gotEcho = new Promise<void>((resolve) => {
    stream.onData = (chunk) => {
      echoed += Buffer.from(chunk).toString();
      stream.consume(chunk.byteLength);
      if (echoed === 'tcp still fine') resolve();
    };
  });
  stream.write(Buffer.from('tcp still fine'));
  await gotEcho;
  stream.end();

  expect(exit.datagrams.stats()).toMatchObject({ flows: CAP, flowsOpened: CAP, refused: FLOOD });
  // 40 refusals, logged at the 1st, 2nd, 4th, 8th, 16th and 32nd.
  expect(logs.filter((l) => l.includes('refused'))).toHaveLength(6);
});
