// The soak's TCP flows, each against the traffic server (pattern.ts requests) over a Route: a bulk download and a
// bulk upload (n bytes at a pace, sha256 compared with what the other end sent or got), a short echo, and an idle
// stream (opened with an echo, held, echoed again at the end). Each resolves with a FlowResult, never rejects; a
// flow past its deadline is destroyed and reported as failed.
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { patternChunks, patternSha256, request } from './pattern';
import type { Route } from './routes';

export interface Target {
  host: string;
  tcp: number;
  udp: number;
}

export interface FlowResult {
  ok: boolean;
  /** Bytes this end sent / received and checked. */
  sent: number;
  received: number;
  /** The content arrived complete but differed (sha256 or echo mismatch). */
  corrupt: boolean;
  ms: number;
  error?: string;
}

interface Progress {
  sent: number;
  received: number;
}

const result = (t0: number, r: Partial<FlowResult>): FlowResult => ({ ok: false, sent: 0, received: 0, corrupt: false, ms: performance.now() - t0, ...r });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` unless cancelled; the returned cancel() clears the timer. */
function deadline(ms: number, what: () => string): { promise: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), Math.max(1, ms))));
  return { promise, cancel: () => clearTimeout(timer) };
}

/** Runs `body` on a freshly dialled socket; the socket is destroyed when it settles or at the deadline. */
async function onSocket(route: Route, to: Target, deadlineMs: number, body: (s: Socket, p: Progress) => Promise<Partial<FlowResult>>): Promise<FlowResult> {
  const t0 = performance.now();
  const p: Progress = { sent: 0, received: 0 };
  let s: Socket | undefined;
  const d = deadline(deadlineMs, () => `timed out after ${Math.round(deadlineMs / 1000)} s (sent ${p.sent}, received ${p.received} bytes)`);
  try {
    s = await Promise.race([route.dial(to.host, to.tcp, deadlineMs), d.promise]);
    const r = await Promise.race([body(s, p), d.promise]);
    return result(t0, { ...p, ...r });
  } catch (e) {
    return result(t0, { ...p, error: (e as Error).message });
  } finally {
    d.cancel();
    s?.destroy();
  }
}

/** Resolves once the socket has closed with `complete()` true; rejects on an error or an early close. */
function closed(s: Socket, complete: () => boolean, what: () => string): Promise<void> {
  if (s.closed) return complete() ? Promise.resolve() : Promise.reject(new Error(`${what()}: connection closed early`));
  return new Promise((resolve, reject) => {
    s.once('error', (e) => reject(new Error(`${what()}: ${e.message}`)));
    s.once('close', () => (complete() ? resolve() : reject(new Error(`${what()}: connection closed early`))));
  });
}

/** DOWN: n bytes of stream `seed` at `rate` bytes/s; ok when exactly they arrived. */
export function bulkDown(route: Route, to: Target, seed: number, n: number, rate: number, deadlineMs: number): Promise<FlowResult> {
  return onSocket(route, to, deadlineMs, async (s, p) => {
    const h = createHash('sha256');
    const done = closed(s, () => p.received >= n, () => `download, ${p.received} of ${n} bytes`);
    s.on('data', (d: Buffer) => (h.update(d), (p.received += d.length)));
    s.resume();
    s.write(request.down(seed, n, rate));
    p.sent = n; // the server writes exactly n bytes of the stream; the sha256 below checks they all arrived
    await done;
    const same = p.received === n && h.digest('hex') === patternSha256(seed, n);
    return { ok: same, corrupt: !same, error: same ? undefined : `sha256 mismatch (${p.received} of ${n} bytes)` };
  });
}

/** UP: n bytes of stream `seed` at `rate` bytes/s; ok when the server counted and hashed exactly them. */
export function bulkUp(route: Route, to: Target, seed: number, n: number, rate: number, deadlineMs: number): Promise<FlowResult> {
  return onSocket(route, to, deadlineMs, async (s, p) => {
    let reply = '';
    const done = closed(s, () => reply.endsWith('\n'), () => `upload, ${p.sent} of ${n} bytes sent, reply ${JSON.stringify(reply)}`);
    done.catch(() => {}); // awaited below, after the writing
    s.setEncoding('latin1').on('data', (d: string) => (reply += d));
    s.resume();
    s.write(request.up(n));
    const h = createHash('sha256');
    const t0 = performance.now();
    for (const chunk of patternChunks(seed, n)) {
      const due = rate > 0 ? t0 + (p.sent / rate) * 1000 - performance.now() : 0;
      if (due > 1) await sleep(due);
      if (s.destroyed) break;
      h.update(chunk);
      p.sent += chunk.length;
      if (!s.write(chunk)) await new Promise<void>((resolve) => (s.once('drain', resolve), s.once('close', resolve)));
    }
    await done;
    const [count, sha] = reply.trim().split(' ');
    p.received = Number(count);
    const same = p.sent === n && Number(count) === n && sha === h.digest('hex');
    return { ok: same, corrupt: !same, error: same ? undefined : `sha256 mismatch (server got ${count} of ${n} bytes)` };
  });
}

/** Writes `payload` and resolves once as many bytes came back: whether they are the same. */
function echoOnce(s: Socket, payload: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const finish = (then: () => void) => {
      s.removeListener('data', onData).removeListener('close', onClose);
      then();
    };
    function onData(d: Buffer): void {
      parts.push(d);
      got += d.length;
      if (got >= payload.length) finish(() => resolve(Buffer.concat(parts).equals(payload)));
    }
    function onClose(): void {
      finish(() => reject(new Error(`closed after ${got} of ${payload.length} echoed bytes`)));
    }
    s.on('data', onData).once('close', onClose).resume();
    s.write(payload);
  });
}

/** A short connection: ECHO with `size` random bytes, checked, then ended by us and closed by the server. */
export function shortEcho(route: Route, to: Target, size: number, deadlineMs: number): Promise<FlowResult> {
  return onSocket(route, to, deadlineMs, async (s, p) => {
    s.write(request.echo());
    const same = await echoOnce(s, randomBytes(size));
    p.sent = p.received = size;
    const done = closed(s, () => true, () => 'short echo close');
    s.end();
    await done;
    return { ok: same, corrupt: !same, error: same ? undefined : 'echo mismatch' };
  });
}

/** A stream opened with a small echo and held open; check() echoes again and closes it. */
export class IdleStream {
  private s: Socket | undefined;
  /** Why it ended before check(), if it did. */
  lost: string | null = null;
  private readonly t0 = performance.now();
  private checking = false;

  constructor(private readonly onLost: (why: string) => void) {}

  async open(route: Route, to: Target, deadlineMs: number): Promise<FlowResult> {
    const t0 = performance.now();
    const d = deadline(deadlineMs, () => 'idle stream open timed out');
    try {
      const s = (this.s = await Promise.race([route.dial(to.host, to.tcp, deadlineMs), d.promise]));
      s.write(request.echo());
      const same = await Promise.race([echoOnce(s, randomBytes(16)), d.promise]);
      s.once('close', () => this.end(`closed after ${Math.round((performance.now() - this.t0) / 1000)} s idle`));
      s.on('error', (e) => this.end(`error after ${Math.round((performance.now() - this.t0) / 1000)} s idle: ${e.message}`));
      return result(t0, { ok: same, corrupt: !same, sent: 16, received: 16, error: same ? undefined : 'echo mismatch' });
    } catch (e) {
      this.s?.destroy();
      this.lost = (e as Error).message;
      return result(t0, { error: this.lost });
    } finally {
      d.cancel();
    }
  }

  private end(why: string): void {
    if (this.checking || this.lost) return;
    this.lost = why;
    this.onLost(why);
  }

  /** The end-of-run check: 16 bytes echoed on the stream held since open(). */
  async check(deadlineMs: number): Promise<FlowResult> {
    const t0 = performance.now();
    if (this.lost || !this.s) return result(this.t0, { error: this.lost ?? 'never opened' });
    this.checking = true;
    const s = this.s;
    const d = deadline(deadlineMs, () => 'idle stream check timed out');
    try {
      const same = await Promise.race([echoOnce(s, randomBytes(16)), d.promise]);
      return result(t0, { ok: same, corrupt: !same, sent: 16, received: 16, error: same ? undefined : 'echo mismatch' });
    } catch (e) {
      return result(t0, { error: (e as Error).message });
    } finally {
      d.cancel();
      s.destroy();
    }
  }
}
