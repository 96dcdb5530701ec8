// A pair of benchmark peers (bench/lib/webrtc-peer.ts) for one WebRTC stack: the offerer in namespace A, the
// answerer in namespace B, signalling relayed by this process over the Node IPC channels (never the network).
// Each peer is its own process group, killed on close(), on exit and on SIGINT/SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { NetnsSide } from './netns-pair';
import type { StackName } from './webrtc-stacks';

const PEER_SCRIPT = fileURLToPath(new URL('./webrtc-peer.ts', import.meta.url));
const live = new Set<ChildProcess>();

export function killAllPeersSync(): void {
  for (const c of live) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

export type Reply = Record<string, unknown>;

export class PeerProc extends EventEmitter {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  readonly stderr: string[] = [];
  exited: string | undefined;

  private constructor(readonly name: string, readonly child: ChildProcess) {
    super();
    child.on('message', (raw) => {
      const m = raw as Reply;
      if (typeof m.id === 'number') {
        this.waiting.get(m.id)?.(m);
        this.waiting.delete(m.id);
      } else if (typeof m.ev === 'string') this.emit(m.ev, m);
    });
    child.on('error', () => undefined); // a send after exit: the exit handler below rejects the waiters
    child.once('exit', (code, signal) => {
      this.exited = `${this.name} exited (${code ?? signal}): ${this.stderr.filter((l) => /Error|error:/.test(l)).slice(0, 3).join(' | ')}`;
      for (const w of this.waiting.values()) w({ error: this.exited });
      this.waiting.clear();
      this.emit('exit');
    });
    child.stderr!.on('data', (b: Buffer) => {
      this.stderr.push(...b.toString('utf8').split('\n').filter(Boolean));
      this.stderr.splice(0, Math.max(0, this.stderr.length - 50));
    });
  }

  static async start(name: string, side: NetnsSide, stack: StackName): Promise<PeerProc> {
    const [cmd, ...pre] = side.exec;
    const child = spawn(cmd!, [...pre, process.execPath, '--import', 'tsx', PEER_SCRIPT, stack], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      detached: true,
    });
    live.add(child);
    const p = new PeerProc(name, child);
    await new Promise<void>((resolve, reject) => {
      p.once('ready', () => resolve());
      child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before ready: ${p.stderr.slice(-5).join(' | ')}`)));
    });
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  post(cmd: string, extra: Reply = {}): void {
    if (!this.exited) this.child.send({ cmd, ...extra });
  }

  request(cmd: string, extra: Reply = {}, timeoutMs = 120_000): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(this.exited));
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no reply to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        if (typeof r.error === 'string') reject(new Error(r.error));
        else resolve(r);
      });
      this.child.send({ cmd, id, ...extra });
    });
  }

  /** Resolves with the next event `ev`, or rejects after `timeoutMs`. */
  next(ev: string, timeoutMs: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const onEv = (m: Reply): void => {
        clearTimeout(timer);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.off(ev, onEv);
        reject(new Error(`${this.name}: no ${ev} within ${timeoutMs} ms (${this.stderr.slice(-3).join(' | ')})`));
      }, timeoutMs);
      this.once(ev, onEv);
    });
  }

  async close(): Promise<void> {
    if (!live.delete(this.child) || this.exited) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    try {
      process.kill(-this.pid, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, 2_000);
    await exited;
    clearTimeout(t);
  }
}

export class StackPair {
  private constructor(readonly stack: StackName, readonly offer: PeerProc, readonly answer: PeerProc) {
    offer.on('signal', (m) => answer.post('signal', { s: m.s }));
    answer.on('signal', (m) => offer.post('signal', { s: m.s }));
  }

  static async start(stack: StackName, a: NetnsSide, b: NetnsSide): Promise<StackPair> {
    const offer = await PeerProc.start(`${stack}/A`, a, stack);
    const answer = await PeerProc.start(`${stack}/B`, b, stack).catch(async (err: Error) => {
      await offer.close();
      throw err;
    });
    return new StackPair(stack, offer, answer);
  }

  /** A fresh PeerConnection on both sides; resolves with the offerer's time from creation to both channels open. */
  async connect(timeoutMs = 20_000): Promise<{ ms: number; maxMessageSize: unknown }> {
    const opened = Promise.all([this.offer.next('open', timeoutMs), this.answer.next('open', timeoutMs)]);
    this.answer.post('connect', { role: 'answer' });
    this.offer.post('connect', { role: 'offer' });
    const [o] = await opened;
    return { ms: o.ms as number, maxMessageSize: o.maxMessageSize };
  }

  /** CPU microseconds of [offerer, answerer]. */
  async cpu(): Promise<[number, number]> {
    const [a, b] = await Promise.all([this.offer.request('cpu'), this.answer.request('cpu')]);
    return [a.us as number, b.us as number];
  }

  async close(): Promise<void> {
    await Promise.all([this.offer.close(), this.answer.close()]);
  }
}
