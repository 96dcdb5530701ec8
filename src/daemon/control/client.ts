// A control-socket client for the CLI (`zks status`, `zks route`, `zksd down`) and the TUI.

import { connect, type Socket } from 'node:net';
import { ZksError } from '../../protocol/errors';
import { CONTROL_VERSION, LineSplitter, type ControlCommand, type ControlEvent, type ControlResponse } from './protocol';

export const DEFAULT_RUN_DIR = '/run/zks';

/** The run directory (control socket, state file, log); ZKS_RUN_DIR overrides /run/zks. */
export function runDir(): string {
  return process.env.ZKS_RUN_DIR || DEFAULT_RUN_DIR;
}
export function controlSocketPath(): string {
  return `${runDir()}/zksd.sock`;
}

export class ControlClient {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closedError: Error | null = null;
  /** Subscription events (after a `subscribe` request). */
  onEvent: ((event: ControlEvent) => void) | null = null;
  /** The daemon went away (or closed this connection). */
  onClose: (() => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    const splitter = new LineSplitter((line) => this.response(line), () => {});
    socket.on('data', (chunk: string) => splitter.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closedError = new ZksError('ZKS_ERR_NOT_RUNNING', 'zksd closed the control connection');
      for (const w of this.waiting.values()) w.reject(this.closedError);
      this.waiting.clear();
      this.onClose?.();
    });
  }

  /** Connects; ZKS_ERR_NOT_RUNNING when nothing listens, a clear permission error when the mode refuses us. */
  static connect(path = controlSocketPath(), timeoutMs = 3_000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ZksError('ZKS_ERR_NOT_RUNNING', `zksd did not answer on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new ControlClient(socket));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err.code === 'EACCES' || err.code === 'EPERM') {
          reject(new ZksError('ZKS_ERR_CONFIG', `permission denied on ${path}: run as root or join the \`zks\` group`));
        } else {
          reject(new ZksError('ZKS_ERR_NOT_RUNNING', `zksd is not running (no control socket at ${path}): start it with \`sudo zksd up\``));
        }
      });
    });
  }

  request<T = unknown>(cmd: ControlCommand, args?: Record<string, unknown>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ v: CONTROL_VERSION, id, cmd, args })}\n`);
    });
  }

  private response(line: string): void {
    let msg: ControlResponse | ControlEvent;
    try {
      msg = JSON.parse(line) as ControlResponse | ControlEvent;
    } catch {
      return;
    }
    if ('event' in msg) {
      this.onEvent?.(msg);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const w = this.waiting.get(msg.id);
    if (!w) return;
    this.waiting.delete(msg.id);
    if (msg.ok) w.resolve(msg.result);
    else w.reject(new ZksError(msg.error.code as never, msg.error.message));
  }

  close(): void {
    this.socket.end();
  }

  /** Closes at once (no graceful end). */
  destroy(): void {
    this.socket.destroy();
  }
}

/** One request on a fresh connection. */
export async function controlRequest<T = unknown>(cmd: ControlCommand, args?: Record<string, unknown>, path?: string): Promise<T> {
  const c = await ControlClient.connect(path);
  try {
    return await c.request<T>(cmd, args);
  } finally {
    c.close();
  }
}
