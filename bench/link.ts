// `node --import tsx bench/link.ts [--before DIR]`: CPU-seconds per GB of the record path alone (mux → batch →
// seal → socket → open → mux, both ends in this process, AES-256-GCM through node:crypto, no WebSocket, no
// kernel), in direct mode and in room mode (exit end framing the session id). With `--before DIR` (an older
// checkout) the same loop runs on its sources too, alternating rounds, so the two are compared moments apart.
// Knobs: BENCH_MB (per sample, default 512), BENCH_ROUNDS (default 4).

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MB = Number(process.env.BENCH_MB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CHUNK = 64 * 1024;
const beforeArg = process.argv.indexOf('--before');
const trees: Array<[string, string]> = [['after', fileURLToPath(new URL('../src', import.meta.url))]];
if (beforeArg >= 0) trees.unshift(['before', resolve(process.argv[beforeArg + 1], 'src')]);

async function load(src: string) {
  const [link, record, node, room] = await Promise.all([
    import(`${src}/link/secure-link.ts`),
    import(`${src}/crypto/record.ts`),
    import(`${src}/crypto/node.ts`),
    import(`${src}/protocol/room-wire.ts`),
  ]);
  return { SecureLink: link.SecureLink, createChannel: record.createChannel, nodeCrypto: node.nodeCrypto, room };
}
type Tree = Awaited<ReturnType<typeof load>>;

/** Moves `bytes` from one end to the other over a fresh pair of links; resolves with CPU seconds used. */
async function transfer(t: Tree, bytes: number, roomMode: boolean, upload: boolean): Promise<number> {
  const k1 = t.nodeCrypto.randomBytes(32);
  const k2 = t.nodeCrypto.randomBytes(32);
  const sessionId = new Uint8Array(32);
  const c = await t.createChannel(t.nodeCrypto, { suite: 'aes-256-gcm', sendKey: k1, recvKey: k2, sessionId });
  const s = await t.createChannel(t.nodeCrypto, { suite: 'aes-256-gcm', sendKey: k2, recvKey: k1, sessionId });
  let client: { receive(b: Uint8Array): void; mux: any };
  let server: { receive(b: Uint8Array): void; mux: any };
  // Messages cross in the next event-loop turn, like a WebSocket's.
  const deliver = (to: () => { receive(b: Uint8Array): void }, data: Uint8Array) => setImmediate(() => to().receive(data));
  const exitSocket = roomMode && t.room.sidHeadroomPayload
    ? {
        headroom: t.room.SID_HEADER_SIZE,
        send: (d: Uint8Array) => deliver(() => client, t.room.decodeSidMessage(t.room.encodeSidMessage(7, t.room.sidHeadroomPayload(d))).payload),
        close: () => {},
      }
    : roomMode
      ? { send: (d: Uint8Array) => deliver(() => client, t.room.decodeSidMessage(t.room.encodeSidMessage(7, d)).payload), close: () => {} }
      : { send: (d: Uint8Array) => deliver(() => client, d), close: () => {} };
  const done = new Promise<void>((resolveDone) => {
    let received = 0;
    const sink = (stream: any) => {
      stream.onData = (chunk: Uint8Array) => {
        received += chunk.length;
        stream.consume(chunk.length);
        if (received >= bytes) resolveDone();
      };
    };
    const source = (stream: any) => {
      const block = new Uint8Array(CHUNK).fill(0x5a);
      let sent = 0;
      const pump = () => {
        while (sent < bytes) {
          sent += CHUNK;
          if (!stream.write(block)) return;
        }
      };
      stream.onDrain = pump;
      pump();
    };
    server = new t.SecureLink(exitSocket, s.sealer, s.opener, {
      role: 'server',
      scheduleFlush: (fn: () => void) => void setImmediate(fn),
      onStream: (stream: any) => {
        stream.accept();
        (upload ? sink : source)(stream);
      },
    });
    client = new t.SecureLink({ send: (d: Uint8Array) => deliver(() => server, d), close: () => {} }, c.sealer, c.opener, {
      role: 'client',
      scheduleFlush: (fn: () => void) => void setImmediate(fn),
    });
    const stream = client.mux.openStream({ host: 'example.com', port: 443 });
    stream.onResult = () => (upload ? source : sink)(stream);
  });
  const before = process.cpuUsage();
  await done;
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

const loaded = await Promise.all(trees.map(async ([label, src]) => [label, await load(src)] as const));
const totals = new Map<string, number>();
for (const [, t] of loaded) await transfer(t, 64 * 2 ** 20, false, false); // warm-up (JIT)
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, t] of round % 2 ? [...loaded].reverse() : loaded) {
    for (const room of [false, true]) {
      for (const up of [false, true]) {
        const key = `${label}\t${room ? 'room' : 'direct'}\t${up ? 'client → exit' : 'exit → client'}`;
        totals.set(key, (totals.get(key) ?? 0) + (await transfer(t, MB * 1e6, room, up)));
      }
    }
  }
}
console.log('| tree | mode | direction | CPU-s/GB (both ends, one process) |');
console.log('|---|---|---|---|');
for (const [key, cpu] of totals) {
  const [tree, mode, dir] = key.split('\t');
  console.log(`| ${tree} | ${mode} | ${dir} | ${(cpu / ((ROUNDS * MB * 1e6) / 1e9)).toFixed(3)} |`);
}
