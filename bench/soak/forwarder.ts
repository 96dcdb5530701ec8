// A TCP forwarder between the relay's clients (p2p-client, zksd, exit peer) and workerd, its own process (on the
// host, or inside the zksd topology's world namespace), so the soak can cut WebSockets from outside: `kill` resets
// both TCP connections of every forwarded pair (RST each way), as a network drop that a middlebox reports would;
// each side sees its WebSocket die without a close frame. A pair whose upstream is gone (workerd restarting) or
// refused is reset the same way. Routes are named so a kill can hit only the clients' or only the exit's side.
// Usage: node --import tsx bench/soak/forwarder.ts '{"routes":[{"name":"client","listen":"127.0.0.1:0","to":"127.0.0.1:8787"}]}'
// Prints {"ready":true,"ports":{NAME:PORT}}; stdin lines `kill all|NAME` answer {"killed":N,"route":…}; exits
// when stdin closes.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

interface Route {
  name: string;
  listen: string;
  to: string;
}

interface Pair {
  route: string;
  down: Socket;
  up: Socket;
}

const pairs = new Set<Pair>();

function hostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
}

function reset(p: Pair): void {
  pairs.delete(p);
  for (const s of [p.down, p.up]) if (!s.destroyed) s.resetAndDestroy();
}

function forward(route: Route, down: Socket): void {
  down.pause();
  const up = connect(hostPort(route.to));
  const p: Pair = { route: route.name, down, up };
  pairs.add(p);
  for (const [s, other] of [[down, up], [up, down]] as const) {
    s.setNoDelay(true);
    s.on('error', () => reset(p));
    // A clean end (FIN) travels on as one; pipe() has already ended the other side's writing.
    s.on('close', (hadError) => (hadError ? reset(p) : (pairs.delete(p), other.end())));
  }
  up.once('connect', () => {
    down.pipe(up);
    up.pipe(down);
    down.resume();
  });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as { routes: Route[] };
  const ports: Record<string, number> = {};
  for (const route of cfg.routes) {
    const server: Server = createServer((s) => forward(route, s));
    const { host, port } = hostPort(route.listen);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
    ports[route.name] = (server.address() as { port: number }).port;
  }
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, which = 'all'] = line.trim().split(/\s+/);
    if (cmd !== 'kill') return void console.log(JSON.stringify({ error: `unknown command ${cmd}` }));
    const hit = [...pairs].filter((p) => which === 'all' || p.route === which);
    for (const p of hit) reset(p);
    console.log(JSON.stringify({ killed: hit.length, route: which }));
  });
  rl.on('close', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  console.log(JSON.stringify({ ready: true, ports }));
}

main().catch((e: unknown) => {
  console.error(`forwarder: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
