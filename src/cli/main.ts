// The `zks` command line: parses flags, merges them with saved settings and starts the right layer.
// Thin by design; every behaviour lives in src/client, src/socks, src/relay-worker.

import { parseArgs } from 'node:util';
import { ZksError } from '../errors/zks-error';
import { attachOptionValues, generateExitKeypair, generateKey, parseCount, parseExitKey, parseHostPort, parseKey, parseResumeGrace, parseRoomSecret, relayUrls, singleRelay } from './args';
import { runMain } from './run-main';
import { PING_OPTIONS } from './ping-options';
import { DIRECT_OPTIONS, directSettings } from './direct-options';
import { EXPOSE_OPTIONS, tunnelId, tunnelSecret } from './expose-command';
import { reportMemoryOnSigusr2 } from './memory-report';
import { takeOverSignals } from './signals';

const HELP = `zks — ZKS-Tunnel command line

  zks start [--mode direct|relay] [--socks 127.0.0.1:1080] [--worker 127.0.0.1:8787] [--key KEY] [--no-demo]
      The whole local stack: relay Worker in workerd + SOCKS5/HTTP CONNECT proxy (npm start); with
      --mode relay also a room and a local exit peer (npm start -- --mode relay).
  zks socks5 --relay URL --key KEY [--listen 127.0.0.1:1080] [--max-streams 6]
             [--allow-remote --user U --password P] [--room SECRET [--exit-id EXITID]] [--resume-grace 60]
      SOCKS5 + HTTP CONNECT proxy on --listen, tunnelled through the relay Worker. A lost WebSocket is resumed
      for up to --resume-grace seconds when the Worker keeps direct-mode sessions (ZKS_DIRECT_RESUME) or the
      exit peer keeps them; 0: streams reset at once. SOCKS5 UDP ASSOCIATE:
      DNS is answered (over TCP); other UDP needs an exit peer. With --room the room's exit peer serves beside
      the Worker: it takes all UDP and what a Worker cannot reach (port 25, Cloudflare's own addresses and
      sites, --via exit rules); the Worker the rest.
  zks exit-peer --relay URL --key KEY --room SECRET [--exit-key EXITKEY] [--allow-lan]
                [--no-udp] [--udp-max-flows 512] [--resume-grace 60] [DIRECT PATH FLAGS]
      Serve as the exit of a room: clients of the room reach the internet from this machine (TCP, UDP
      flows through a NAT, ping). A client session whose WebSocket is lost (a deploy, a network change) is
      kept --resume-grace seconds for the client to resume it, its connections open; 0: ended at once.
  zks p2p-client --relay URL --key KEY --room SECRET [--exit-id EXITID] [--listen 127.0.0.1:1080]
                 [--resume-grace 60] [DIRECT PATH FLAGS]
      Like socks5, but streams go through the room to its exit peer, end-to-end encrypted (blind relay);
      SOCKS5 UDP ASSOCIATE carries any UDP to the exit. A lost WebSocket is resumed (new handshake, nothing
      lost: streams stall, then go on) for up to --resume-grace seconds; 0: streams reset at once.
      --exit-id pins the exit: only the exit peer holding its --exit-key is accepted, not anyone with SECRET.
      --relay may be given more than once (socks5 and exit-peer too): links spread over the relays that are up,
      a dead relay is left until its health check answers, and a lost session resumes on another relay.
      DIRECT PATH FLAGS: client and exit peer try a path straight to each other (signalled through the room,
      which stays the fallback): first a TCP connection to the exit's addresses, else WebRTC. --no-direct
      (room only), --no-direct-tcp (WebRTC only), --direct-tcp-port PORT and --direct-tcp-advertise IP[:PORT]
      (exit peer: where it listens during an attempt / the addresses it offers, e.g. a forwarded port),
      --stun HOST[:PORT], --turn turn:HOST[:PORT] --turn-user U --turn-pass P, --turn-only (relayed
      candidates only), --direct-bind ADDR. No STUN or TURN server is used unless given.
  zks ping HOST [-c COUNT] [-i SECONDS] [-W SECONDS] [-s SIZE] [--tcp PORT] --relay URL --key KEY [--room SECRET]
      ping(8) through the tunnel: with --room a real ICMP echo sent by the exit peer (each line says icmp,
      or tcp:443 when the exit may not open ICMP sockets); through the Worker only the time of a TCP connect
      (tcp:PORT, 443 by default). --tcp PORT times a TCP connect to PORT at the exit instead.
  zks expose http://HOST:PORT --id ID --secret SECRET (--auth USER:PASSWORD | --public) --relay URL --key KEY
             [--max-concurrent 64] [--rate 100] [--max-body BYTES] [--keep-prefix]
      Serves a local web server at https://<worker>/tunnel/ID/ without a public address: requests and
      bodies stream through the Worker to HOST:PORT (the /tunnel/ID prefix is stripped unless --keep-prefix).
      --auth: HTTP Basic, checked by the Worker. More than --max-concurrent requests in flight or --rate per
      second get 429, bodies over --max-body (e.g. 100M) 413. The first agent's --secret claims the id; agents
      with the same id and secret share the load. One log line per request.
  zks expose tcp://HOST:PORT --id ID --secret SECRET --relay URL --key KEY
      Makes a local TCP service (ssh, a game server, …) reachable through the Worker without a public address:
      every stream of the tunnel goes to HOST:PORT and nowhere else. Several agents with the same id and secret
      stand in for each other.
  zks access --id ID --secret SECRET --relay URL --key KEY (--listen HOST:PORT | --stdio)
      The other end: a local port, or standard input/output (ssh -o ProxyCommand='zks access … --stdio'),
      sealed end to end to the agent; the Worker only pairs the two.
  zks worker [--listen 127.0.0.1:8787] --key KEY [--allow-private] [--blocked-ranges CIDR,CIDR]
             [--resume-grace SECONDS]
      Only the relay Worker, locally in workerd (self-hosting, development, benchmarks). Without --allow-private
      it resolves names itself and refuses loopback/private addresses, also behind a name (hosts file, DNS).
      --blocked-ranges: refuse these like Cloudflare's own addresses (ZKS_BLOCKED_RANGES when deployed).
      --resume-grace: keep a direct-mode session this long (default 60, at most 900) for its client to resume
      it after its WebSocket is lost; 0: streams reset with their WebSocket (ZKS_DIRECT_RESUME when deployed).
  zks status [--json]             what zksd runs: relay, kill switch, DNS, bypass routes, relay links, flows
  zks flows [--closed]            zksd's flow table once (--closed adds recently closed flows)
  zks route add CIDR --bypass     send CIDR outside the tunnel (live, persisted; e.g. 10.0.0.0/8)
  zks route add DOMAIN|CIDR --via worker|exit
                                  zks socks5 / p2p-client: send it through the Worker or the exit peer (saved,
                                  live; example.com also matches its subdomains; most specific rule wins)
  zks route del CIDR|DOMAIN | list  remove a route | list them
      (status, flows and route talk to zksd over /run/zks/zksd.sock: root or the \`zks\` group)
  zks keygen                      print a new random 32-byte key (base64url): a --key or a --room secret
  zks keygen --exit               print an exit key pair: --exit-key for the exit peer, --exit-id for clients
  zks config set|get|unset NAME [VALUE] | list | path
      saved settings: relay, key, room, exit-id, exit-key, listen, max-streams, user, password,
      direct (on|off), direct-tcp (on|off), direct-tcp-port, direct-tcp-advertise, stun, turn, turn-user,
      turn-pass (flags win)

Deploy the Worker: npx wrangler secret put ZKS_KEY && npx wrangler deploy`;

const log = (line: string) => console.error(`[zks] ${line}`);
/** How long a signalled command may take to close what it started before it exits regardless. */
const CLOSE_DEADLINE_MS = 10_000;

/**
 * Closes what the command started on SIGINT/SIGTERM/SIGHUP, then exits 0. The signals are ours alone (see
 * signals.ts): Miniflare's 'exit' hook, which stops workerd, stays. Call it before printing ready.
 */
function waitForSignal(close: () => Promise<void>): void {
  let closing = false;
  takeOverSignals(() => {
    // A second signal, or a close that takes too long, ends the process at once (Miniflare's 'exit' hook still
    // stops workerd): a user pressing Ctrl-C twice, or a service manager, must never wait on a hung close.
    if (closing) process.exit(1);
    closing = true;
    setTimeout(() => {
      log(`did not close within ${CLOSE_DEADLINE_MS / 1000} s: exiting anyway`);
      process.exit(1);
    }, CLOSE_DEADLINE_MS).unref();
    void close().finally(() => process.exit(0));
  });
}

const OPTIONS = {
  relay: { type: 'string', multiple: true },
  key: { type: 'string' },
  listen: { type: 'string' },
  socks: { type: 'string' },
  worker: { type: 'string' },
  'max-streams': { type: 'string' },
  'allow-remote': { type: 'boolean' },
  'allow-private': { type: 'boolean' },
  'allow-lan': { type: 'boolean' },
  'no-udp': { type: 'boolean' },
  'udp-max-flows': { type: 'string' },
  'resume-grace': { type: 'string' },
  room: { type: 'string' },
  exit: { type: 'boolean' },
  'exit-key': { type: 'string' },
  'exit-id': { type: 'string' },
  mode: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  'no-demo': { type: 'boolean' },
  quiet: { type: 'boolean' },
  json: { type: 'boolean' },
  closed: { type: 'boolean' },
  bypass: { type: 'boolean' },
  via: { type: 'string' },
  'blocked-ranges': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  id: { type: 'string' },
  secret: { type: 'string' },
  stdio: { type: 'boolean' },
  ...PING_OPTIONS,
  ...DIRECT_OPTIONS,
  ...EXPOSE_OPTIONS,
} as const;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: attachOptionValues(rest, OPTIONS),
    allowPositionals: true,
    strict: true,
    options: OPTIONS,
  });
  // These answer before the saved settings load (reading them is cheap now, but status must work without a config),
  // and help, keygen and status are what people run in loops and prompts.
  switch (command) {
    case undefined: case 'help': case '--help': case '-h':
      console.log(HELP);
      return;
    case 'keygen':
      if (values.exit) {
        const pair = await generateExitKeypair();
        console.log(`exit key (for \`zks exit-peer --exit-key\`, keep it secret): ${pair.exitKey}`);
        console.log(`exit id  (for the clients' --exit-id, public):         ${pair.exitId}`);
      } else {
        console.log(generateKey());
      }
      return;
    case 'status':
    case 'flows':
    case 'route': {
      const { daemonCommand } = await import('./daemon-commands');
      return daemonCommand(command, positionals, { json: !!values.json, closed: !!values.closed, bypass: !!values.bypass, via: values.via });
    }
  }
  const { configPath, getSetting, listSettings, setSetting, unsetSetting } = await import('../settings/user-config');
  const maxStreamsText = values['max-streams'] ?? getSetting('max-streams');
  const maxStreams = maxStreamsText === undefined ? undefined : Number(maxStreamsText);
  if (maxStreams !== undefined && (!Number.isInteger(maxStreams) || maxStreams < 1 || maxStreams > 1024)) {
    throw new ZksError('ZKS_ERR_CONFIG', '--max-streams must be an integer from 1 to 1024');
  }

  switch (command) {
    case 'config': {
      const [op, name, value] = positionals;
      if (op === 'set' && name && value !== undefined) setSetting(name, value);
      else if (op === 'unset' && name) unsetSetting(name);
      else if (op === 'get' && name) console.log(listSettings().find(([k]) => k === name)?.[1] ?? '');
      else if (op === 'list') for (const [k, v] of listSettings()) console.log(`${k}=${v}`);
      else if (op === 'path') console.log(configPath());
      else throw new ZksError('ZKS_ERR_CONFIG', 'usage: zks config set NAME VALUE | get NAME | unset NAME | list | path');
      return;
    }
    case 'start': {
      (await import('./throughput-tuning')).tuneProcessForThroughput(); // a data-path process: see there
      const { startLocalStack } = await import('./start');
      const socks = parseHostPort(values.socks ?? '127.0.0.1:1080', 1080);
      const worker = parseHostPort(values.worker ?? '127.0.0.1:8787', 8787);
      const mode = values.mode ?? 'direct';
      if (mode !== 'direct' && mode !== 'relay') throw new ZksError('ZKS_ERR_CONFIG', '--mode must be direct or relay');
      const stack = await startLocalStack({
        mode,
        key: values.key,
        socksHost: socks.host, socksPort: socks.port,
        workerHost: worker.host, workerPort: worker.port,
        demo: !values['no-demo'], maxStreams, log, control: true,
      });
      const proxy = `${stack.socks.host}:${stack.socks.port}`;
      const via = stack.mode === 'relay' ? ' via a blind room and a local exit peer' : '';
      waitForSignal(() => stack.close());
      console.log(`zks ready: relay Worker (workerd) on ${stack.worker.url}, SOCKS5 + HTTP CONNECT on ${proxy}${via}`);
      console.log(`try: curl --socks5-hostname ${proxy} ${stack.demoUrl ?? 'http://127.0.0.1:PORT/'}`);
      return;
    }
    case 'worker': {
      const { startDevWorker } = await import('./dev-worker');
      const at = parseHostPort(values.listen ?? '127.0.0.1:8787', 8787);
      const key = values.key ?? getSetting('key');
      parseKey(key);
      const blocked = values['blocked-ranges'];
      const grace = values['resume-grace'] === undefined ? undefined : parseCount(values['resume-grace'], '--resume-grace', 0, 900) * 1000;
      const w = await startDevWorker({
        key: key!, host: at.host, port: at.port, allowPrivateTargets: !!values['allow-private'], maxStreams, resumeGraceMs: grace,
        bindings: blocked === undefined ? undefined : { ZKS_BLOCKED_RANGES: blocked },
      });
      waitForSignal(() => w.dispose());
      console.log(`zks worker ready on ${w.url}`);
      return;
    }
    case 'ping': {
      const { pingSettings, runPing } = await import('./ping-command');
      const settings = pingSettings(values, positionals);
      const { TunnelPool } = await import('../client/pool');
      let room;
      if ((values.room ?? getSetting('room')) !== undefined) {
        const { deriveRoomKeys } = await import('../crypto/room');
        const { nodeCrypto } = await import('../crypto/node');
        room = await deriveRoomKeys(nodeCrypto, parseRoomSecret(values.room ?? getSetting('room')));
        const exitId = values['exit-id'] ?? getSetting('exit-id');
        if (exitId !== undefined) room = { ...room, exitId: parseExitKey(exitId, 'exit id') };
      }
      const pool = new TunnelPool({ url: singleRelay(values.relay, getSetting('relay'), 'ping'), key: parseKey(values.key ?? getSetting('key')), room, log: values.quiet ? undefined : log });
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      try {
        process.exitCode = await runPing(pool, settings, (line) => console.log(line), { signal: abort.signal });
      } finally {
        await pool.stop();
      }
      return;
    }
    case 'exit-peer': {
      (await import('./throughput-tuning')).tuneProcessForThroughput(); // a data-path process: see there
      const { ExitPeer } = await import('../exit');
      const exitKey = values['exit-key'] ?? getSetting('exit-key');
      const relays = relayUrls(values.relay, getSetting('relay'));
      const exit = await ExitPeer.start({
        relay: relays[0]!,
        moreRelays: relays.slice(1),
        key: parseKey(values.key ?? getSetting('key')),
        roomSecret: parseRoomSecret(values.room ?? getSetting('room')),
        exitKey: exitKey === undefined ? undefined : parseExitKey(exitKey, 'exit key'),
        allowLan: !!values['allow-lan'],
        udp: !values['no-udp'],
        udpMaxFlows: values['udp-max-flows'] === undefined ? undefined : parseCount(values['udp-max-flows'], '--udp-max-flows', 1, 65_536),
        direct: directSettings(values, getSetting, relays[0]!),
        resumeGraceMs: parseResumeGrace(values['resume-grace']),
        log: values.quiet ? undefined : log,
      });
      const state = exit.attached ? 'serving the room' : 'standing by (another exit peer holds the room)';
      reportMemoryOnSigusr2();
      waitForSignal(() => exit.close());
      console.log(`zks exit-peer ready: ${state}${values['allow-lan'] ? ' (LAN targets allowed)' : ''}`);
      return;
    }
    case 'socks5': case 'p2p-client': {
      (await import('./throughput-tuning')).tuneProcessForThroughput(); // a data-path process: see there
      const relays = relayUrls(values.relay, getSetting('relay'));
      const { startSocksClient } = await import('../proxy/socks-client');
      let room;
      // socks5 with a room: the Worker connects, the exit peer takes what the Worker cannot reach (and UDP).
      const roomText = command === 'p2p-client' ? values.room ?? getSetting('room') : values.room;
      if (roomText !== undefined || command === 'p2p-client') {
        const { deriveRoomKeys } = await import('../crypto/room');
        const { nodeCrypto } = await import('../crypto/node');
        room = await deriveRoomKeys(nodeCrypto, parseRoomSecret(roomText));
        const exitId = values['exit-id'] ?? getSetting('exit-id');
        if (exitId !== undefined) room = { ...room, exitId: parseExitKey(exitId, 'exit id') };
        room = { ...room, direct: directSettings(values, getSetting, relays[0]!) };
      }
      const at = parseHostPort(values.listen ?? getSetting('listen') ?? '127.0.0.1:1080', 1080);
      const user = values.user ?? getSetting('user');
      const password = values.password ?? getSetting('password');
      if ((user === undefined) !== (password === undefined)) throw new ZksError('ZKS_ERR_CONFIG', '--user and --password go together');
      const { viaRulesProvider } = await import('../settings/via-routes');
      const client = await startSocksClient({
        relay: relays[0]!,
        moreRelays: relays.slice(1),
        key: parseKey(values.key ?? getSetting('key')),
        room,
        defaultVia: command === 'p2p-client' ? 'exit' : 'worker',
        viaRules: viaRulesProvider(values.quiet ? undefined : log),
        listenHost: at.host, listenPort: at.port,
        allowRemote: !!values['allow-remote'],
        auth: user !== undefined ? { username: user, password: password! } : undefined,
        maxStreamsPerConnection: maxStreams,
        resumeGraceMs: parseResumeGrace(values['resume-grace']),
        log: values.quiet ? undefined : log,
        control: true,
      });
      reportMemoryOnSigusr2();
      waitForSignal(() => client.close());
      const both = command === 'socks5' && room ? ', the Worker and an exit peer' : '';
      console.log(`zks ${command} ready on ${client.host}:${client.port} (SOCKS5 + HTTP CONNECT${both})`);
      return;
    }
    case 'expose': {
      const { startExpose } = await import('./expose-command');
      const started = await startExpose(positionals[0], values, getSetting, values.quiet ? undefined : log);
      waitForSignal(started.close);
      console.log(started.readyLine);
      return;
    }
    case 'access': {
      const { openTunnel, listenForAccess, pipeThroughTunnel } = await import('../expose/access');
      const id = tunnelId(values.id);
      if (!values.stdio === (values.listen === undefined)) throw new ZksError('ZKS_ERR_CONFIG', 'zks access needs exactly one of --listen HOST:PORT and --stdio');
      const pool = await openTunnel({
        relay: singleRelay(values.relay, getSetting('relay'), 'access'), key: parseKey(values.key ?? getSetting('key')),
        id, secret: parseRoomSecret(tunnelSecret(values.secret)), log: values.quiet || values.stdio ? undefined : log,
      });
      if (values.stdio) {
        // ProxyCommand: stdout carries the stream, so nothing else may be printed there.
        await pipeThroughTunnel(pool, process.stdin, process.stdout).finally(() => pool.stop());
        process.stdin.destroy(); // the far end closed first: an open stdin must not keep the process alive
        return;
      }
      const at = parseHostPort(values.listen!, 0);
      const server = await listenForAccess(pool, at.host, at.port, log);
      waitForSignal(async () => {
        server.close();
        await pool.stop();
      });
      const bound = server.address() as { address: string; port: number };
      console.log(`zks access ready: tunnel "${id}" on ${bound.address}:${bound.port}`);
      return;
    }
    default:
      throw new ZksError('ZKS_ERR_CONFIG', `unknown command "${command}"; run \`zks help\``);
  }
}

runMain('zks', main);
