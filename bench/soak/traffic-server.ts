// The far end of every soak flow, its own process (on 127.0.0.1, or inside the zksd topology's world namespace):
// a TCP server answering pattern.ts requests (DOWN paced, UP hashed, ECHO) and a UDP echo server.
// Usage: node --import tsx bench/soak/traffic-server.ts '{"host":"127.0.0.1","tcpPort":0,"udpPort":0}'
// Prints one {"ready":true,"tcp":PORT,"udp":PORT} line; exits when stdin closes (the soak is gone) or on SIGTERM.
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { parseRequest, patternChunks, type Request } from './pattern';

const MAX_LINE = 128;

/** Writes stream `seed`'s n bytes at `rate` bytes/s (0: as fast as the socket drains), then ends. */
function sendDown(s: Socket, seed: number, n: number, rate: number): void {
  const chunks = patternChunks(seed, n);
  const t0 = performance.now();
  let sent = 0;
  const pump = (): void => {
    for (;;) {
      if (s.destroyed) return;
      const due = rate > 0 ? t0 + (sent / rate) * 1000 - performance.now() : 0;
      if (due > 1) return void setTimeout(pump, due);
      const next = chunks.next();
      if (next.done) return void s.end();
      sent += next.value.length;
      if (!s.write(next.value)) return void s.once('drain', pump);
    }
  };
  pump();
}

function serve(s: Socket): void {
  s.setNoDelay(true);
  s.on('error', () => {}); // a flow the soak abandons resets; the driver reports it, not us
  let head = Buffer.alloc(0);
  const onHead = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]); // the request line only: a few bytes
    const nl = head.indexOf(0x0a);
    if (nl < 0) {
      if (head.length > MAX_LINE) s.destroy();
      return;
    }
    s.removeListener('data', onHead);
    const req = parseRequest(head.subarray(0, nl).toString('latin1'));
    const rest = head.subarray(nl + 1);
    if (!req) return void s.destroy();
    start(s, req, rest);
  };
  s.on('data', onHead);
}

function start(s: Socket, req: Request, rest: Buffer): void {
  switch (req.kind) {
    case 'down':
      s.on('data', () => {});
      return sendDown(s, req.seed, req.n, req.rate);
    case 'up': {
      const h = createHash('sha256');
      let count = 0;
      const take = (d: Buffer) => {
        h.update(d);
        count += d.length;
        if (count >= req.n) {
          s.removeListener('data', take);
          s.end(`${count} ${h.digest('hex')}\n`);
        }
      };
      s.on('data', take);
      if (rest.length || req.n === 0) take(rest);
      return;
    }
    case 'echo':
      if (rest.length) s.write(rest);
      s.pipe(s);
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as { host?: string; tcpPort?: number; udpPort?: number };
  const host = cfg.host ?? '127.0.0.1';
  const tcp = createServer(serve);
  await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(cfg.tcpPort ?? 0, host, () => resolve()));
  const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  udp.on('message', (msg, from) => udp.send(msg, from.port, from.address));
  udp.on('error', (e) => console.error(`traffic-server udp: ${e.message}`));
  await new Promise<void>((resolve) => udp.bind(cfg.udpPort ?? 0, host, () => resolve()));
  process.stdin.on('end', () => process.exit(0)).resume();
  process.on('SIGTERM', () => process.exit(0));
  const port = (a: unknown) => (a as { port: number }).port;
  console.log(JSON.stringify({ ready: true, tcp: port(tcp.address()), udp: port(udp.address()) }));
}

main().catch((e: unknown) => {
  console.error(`traffic-server: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
