// A control-socket client for the CLI (`zks status`, `zks route`, `zksd up/down/status`) and the TUI.

import { connect, type Socket } from 'node:net';
import { ZksError } from '../errors/zks-error';
import { controlSocketPath } from './paths';
import {
  CONTROL_VERSION, LineSplitter, type ControlCommand, type ControlEvent, type ControlResponse, type StatusSnapshot,
} from './protocol';
import { readStatus } from './status';

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

  /** `status` as a StatusSnapshot; ZKS_ERR_CONTROL_VERSION when it names a mode this version does not know. */
  async status(): Promise<StatusSnapshot> {
    const raw = await this.request('status');
    const s = readStatus(raw);
    if (s === null) {
      const mode = JSON.stringify((raw as { mode?: unknown } | null)?.mode);
      throw new ZksError('ZKS_ERR_CONTROL_VERSION', `the control socket reports mode ${mode}, unknown to this version: update zks`);
    }
    return s;
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
