// The daemon's control socket: a unix socket (mode 0660, owner root, group `zks` when that group exists), so
// only root and members of `zks` may connect — the file mode is the first check. The second is per request: a
// command that changes something (not in READ_ONLY_COMMANDS) is served only to a peer whose uid, as the kernel
// recorded it at connect() (SO_PEERCRED), is root's (or the daemon's own). Each connection sends request lines and gets one response
// line per request; a bad line gets an error response and the connection stays usable.

import { chmod, chown, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ZksError } from '../errors/zks-error';
import { ensurePrivateDir, ensureRunDir, groupId } from './run-dir';
import {
  CONTROL_TOPICS, errorResponse, eventLine, LineSplitter, okResponse, parseRequest, READ_ONLY_COMMANDS, type ControlCommand,
  type ControlTopic,
} from './protocol';

/** A subscriber that has this much unsent output misses events until it catches up: a slow or stuck viewer
 * must never make the daemon buffer without bound (or slow the data path). */
const MAX_SUBSCRIBER_BACKLOG = 256 * 1024;

export type ControlHandler = (cmd: ControlCommand, args: Record<string, unknown>) => unknown | Promise<unknown>;

export interface ControlServer {
  readonly path: string;
  /** Sends an event to every subscriber of `topic` (skipping backlogged ones). */
  publish(topic: ControlTopic, data: unknown): void;
  /** Subscribers of `topic` (so the daemon builds an event only when someone listens). */
  subscribers(topic: ControlTopic): number;
  readonly stats: { eventsSent: number; eventsSkipped: number };
  close(): Promise<void>;
}

function parseTopics(args: Record<string, unknown>): ControlTopic[] {
  const t = args.topics ?? CONTROL_TOPICS;
  if (!Array.isArray(t) || t.length === 0 || !t.every((x) => (CONTROL_TOPICS as readonly unknown[]).includes(x))) {
    throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `subscribe: args.topics must be a non-empty array of ${CONTROL_TOPICS.join(', ')}`);
  }
  return t as ControlTopic[];
}

export { groupId } from './run-dir';

export interface ControlServerOptions {
  /**
   * 'daemon' (zksd): 0660, group `zks` when it exists. 'user' (zks socks5 / p2p-client): 0600 in a 0700
   * directory — only the user who runs the proxy may look at or close its flows.
   */
  access?: 'daemon' | 'user';
  /**
   * 'daemon' only: the uid of the process at the other end of a connection (SO_PEERCRED; the daemon passes the
   * addon's reader), or null when unknown. Changing commands need uid 0 (or the daemon's own); without this function, or when it returns
   * null, they are refused (ZKS_ERR_CONTROL_FORBIDDEN) — never granted by default.
   */
  peerUid?: (socket: Socket) => number | null;
}

/** Why a changing command is refused to this peer, or null when it may run it. Root may; so may the daemon's own
 *  user (it could signal or trace the daemon anyway — and a test daemon that is not root stays usable). */
function refusal(cmd: ControlCommand, uid: number | null): ZksError | null {
  if (READ_ONLY_COMMANDS.has(cmd) || uid === 0 || (uid !== null && uid === process.getuid?.())) return null;
  const who = uid === null ? 'a peer whose uid could not be read' : `uid ${uid}`;
  return new ZksError('ZKS_ERR_CONTROL_FORBIDDEN',
    `${cmd} changes zksd and is root's alone (${who}; group \`zks\` may only read status, flows and routes): run it with sudo`);
}

export async function startControlServer(path: string, handle: ControlHandler, options: ControlServerOptions = {}): Promise<ControlServer> {
  const userOnly = options.access === 'user';
  // The dir first: owner and mode checked (a user's) or set (zksd's), never a symlink (run-dir.ts).
  if (userOnly) ensurePrivateDir(dirname(path));
  else ensureRunDir(dirname(path));
  await rm(path, { force: true }); // a stale socket from a crashed daemon (the caller checked none answers)
  const sockets = new Set<Socket>();
  const subscriptions = new Map<Socket, Set<ControlTopic>>();
  const stats = { eventsSent: 0, eventsSkipped: 0 };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    // Read once: SO_PEERCRED is fixed at connect(), whatever the peer does afterwards.
    const uid = userOnly ? null : (options.peerUid?.(socket) ?? null);
    socket.setEncoding('utf8');
    // Responses go out in request order even when a handler is async.
    let chain = Promise.resolve();
    const splitter = new LineSplitter(
      (line) => {
        chain = chain.then(async () => {
          const req = parseRequest(line);
          if ('error' in req) return void socket.write(errorResponse(req.id, req.error));
          try {
            // Subscriptions belong to the connection, so the server answers them itself.
            let result: unknown;
            const refused = userOnly ? null : refusal(req.cmd, uid);
            if (refused) throw refused;
            if (req.cmd === 'subscribe') {
              const topics = parseTopics(req.args ?? {});
              subscriptions.set(socket, new Set(topics));
              result = { topics };
            } else if (req.cmd === 'unsubscribe') {
              subscriptions.delete(socket);
              result = { topics: [] };
            } else {
              result = await handle(req.cmd, req.args ?? {});
            }
            if (!socket.destroyed) socket.write(okResponse(req.id, result ?? null));
          } catch (err) {
            if (!socket.destroyed) socket.write(errorResponse(req.id, err));
          }
        });
      },
      () => {
        chain = chain.then(() => void socket.write(errorResponse(null, new ZksError('ZKS_ERR_CONTROL_REQUEST', 'request line longer than 64 KiB: skipped'))));
      },
    );
    socket.on('data', (chunk: string) => splitter.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      subscriptions.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The mode is set before anyone can connect in practice (umask 0o117 → 0660 from creation).
    const umask = process.umask(userOnly ? 0o177 : 0o117);
    server.listen(path, () => {
      process.umask(umask);
      resolve();
    });
  });
  await chmod(path, userOnly ? 0o600 : 0o660);
  const gid = userOnly ? null : groupId('zks');
  if (gid !== null) await chown(path, 0, gid).catch(() => {});
  return {
    path,
    stats,
    publish(topic, data) {
      let line: string | null = null;
      for (const [socket, topics] of subscriptions) {
        if (!topics.has(topic) || socket.destroyed) continue;
        if (socket.writableLength > MAX_SUBSCRIBER_BACKLOG) {
          stats.eventsSkipped++;
          continue;
        }
        line ??= eventLine(topic, data);
        socket.write(line);
        stats.eventsSent++;
      }
    },
    subscribers(topic) {
      let n = 0;
      for (const topics of subscriptions.values()) if (topics.has(topic)) n++;
      return n;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(path, { force: true });
    },
  };
}
