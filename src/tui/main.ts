// `zks-tui`: the live view in a terminal, plain-text snapshots otherwise (`--watch` repeats them every second).
// It watches zksd's control socket, else the per-user socket of `zks socks5` / `zks p2p-client`;
// `--socket PATH` picks one. Nothing here talks to the tunnel: only the control socket (docs/CONTROL.md).

import { ControlFeed, type FeedState } from './feed';
import { plainSnapshot } from './plain';
import { absentLine, candidateSockets, waitingLine } from './sockets';

const USAGE = `usage: zks-tui [--socket PATH] [--watch]

Live view of zksd (or \`zks socks5\` / \`zks p2p-client\`): flows by rate, relay links, bypass routes, kill switch.
  --socket PATH  watch this control socket (default: $ZKS_RUN_DIR/zksd.sock, else the zks client's socket)
  --watch        when stdout is not a terminal: print a snapshot every second instead of once
Keys: q quit · ↑↓ select · / filter · x close flow · k kill switch · b bypass route · ? help`;

interface Args {
  socket?: string;
  watch: boolean;
}

function parseArgs(argv: string[]): Args | string {
  const args: Args = { watch: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--watch' || a === '-w') args.watch = true;
    else if (a === '--socket' || a === '-s') {
      const v = argv[++i];
      if (!v) return '--socket needs a path';
      args.socket = v;
    } else if (a.startsWith('--socket=')) args.socket = a.slice('--socket='.length);
    else if (a === '--help' || a === '-h') return '';
    else return `unknown argument ${JSON.stringify(a)}`;
  }
  return args;
}

async function live(feed: ControlFeed): Promise<void> {
  // Ink renders only the last frame when it believes it runs under CI (CI / CONTINUOUS_INTEGRATION set, read at
  // import); this path runs only on a terminal, where a person wants the live view whatever the environment says.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  const [{ render }, { createElement }, { App }] = await Promise.all([import('ink'), import('react'), import('./App')]);
  // The alternate screen (like top or less): quitting gives the shell back as it was.
  process.stdout.write('\x1b[?1049h\x1b[H');
  const restore = (): void => void process.stdout.write('\x1b[?1049l');
  // A kill or a closed terminal unmounts like q does, so the terminal is restored either way.
  const signals = ['SIGTERM', 'SIGHUP'] as const;
  try {
    const app = render(createElement(App, { feed }), { patchConsole: true });
    for (const sig of signals) process.once(sig, () => app.unmount());
    await app.waitUntilExit();
  } finally {
    for (const sig of signals) process.removeAllListeners(sig);
    feed.stop();
    restore();
  }
}

function width(): number {
  return process.stdout.columns || 120;
}

/** One snapshot from the first socket that answers; exit 1 after one round in which none did. */
async function once(feed: ControlFeed): Promise<number> {
  try {
    const s = await feed.until((st) => st.phase === 'connected' || st.failedRounds > 0, 10_000, 'no answer');
    if (s.phase === 'connected' && s.status) {
      process.stdout.write(plainSnapshot(s.status, s.flows, s.socket!, width()));
      return 0;
    }
  } catch {
    // a socket that accepts but never answers: reported below like nothing listening
  } finally {
    feed.stop();
  }
  const s = feed.getState();
  process.stderr.write(`zks-tui: ${s.problem ?? absentLine(s.candidates)}\nStart it with \`sudo zksd up\` (or \`zks socks5\`), or pass --socket PATH.\n`);
  return 1;
}

/** A snapshot every second until SIGINT/SIGTERM; the waiting line once per outage. */
async function watch(feed: ControlFeed): Promise<number> {
  let waitingShown = false;
  const tick = (s: FeedState): void => {
    if (s.phase === 'connected' && s.status) {
      waitingShown = false;
      process.stdout.write(`--- ${new Date().toISOString()}\n${plainSnapshot(s.status, s.flows, s.socket!, width())}\n`);
    } else if (!waitingShown) {
      waitingShown = true;
      process.stdout.write(`${waitingLine(s.candidates)}\n`);
    }
  };
  tick(feed.getState());
  const timer = setInterval(() => tick(feed.getState()), 1_000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  feed.stop();
  return 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === 'string') {
    (args ? process.stderr : process.stdout).write(`${args ? `zks-tui: ${args}\n\n` : ''}${USAGE}\n`);
    return args ? 2 : 0;
  }
  const feed = new ControlFeed({ sockets: candidateSockets(args.socket) });
  feed.start();
  if (process.stdout.isTTY && process.stdin.isTTY) {
    await live(feed);
    return 0;
  }
  return args.watch ? watch(feed) : once(feed);
}

process.exitCode = await main();
