// One WebRTC benchmark peer, run by bench/webrtc-candidates.ts inside its own network namespace
// (`ip netns exec NS node --import tsx bench/lib/webrtc-peer.ts STACK`). It talks to the parent only over the Node
// IPC channel (commands in, replies and events out; signalling is relayed by the parent, never over the network).
// Channel 0 is reliable and ordered (bulk), channel 1 unordered with maxRetransmits 0 (paced datagrams).
// CPU figures are getrusage of this whole process (all of the stack's native threads included).
import { loadStack, type Chan, type Peer, type Signal, type StackName } from './webrtc-stacks';

type Msg = Record<string, unknown> & { cmd: string; id?: number };
const send = (m: Record<string, unknown>): void => void process.send?.(m);
const stack = process.argv[2] as StackName;
const factory = await loadStack(stack);

let peer: Peer | undefined;
let chans: Chan[] = [];
let bulkRx = { expect: 0, got: 0, first: 0, last: 0, reply: undefined as number | undefined };
let pacedRx = { count: 0, first: 0, last: 0 };
let abortSend = false;
let finishBulk: () => void = () => undefined; // ends a stalled sender on 'abort' (no event will wake it)

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Samples RSS every 100 ms while `fn` runs; resolves with fn's value and the peak. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<[T, number]> {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
  try {
    return [await fn(), peak];
  } finally {
    clearInterval(t);
  }
}

function connect(role: 'offer' | 'answer'): void {
  const t0 = performance.now();
  peer?.close();
  bulkRx = { expect: 0, got: 0, first: 0, last: 0, reply: undefined };
  pacedRx = { count: 0, first: 0, last: 0 };
  peer = factory(role, {
    signal: (s) => send({ ev: 'signal', s }),
    state: (kind, state) => send({ ev: 'state', kind, state, at: Date.now() }),
  });
  const specs = [
    { label: 'bulk', id: 0, ordered: true },
    { label: 'dgram', id: 1, ordered: false, maxRetransmits: 0 },
  ];
  const p = peer;
  void p.start(specs).then(() => p.channels()).then((list) => {
    chans = list;
    let open = 0;
    list.forEach((c, i) => {
      c.onOpen(() => {
        if (++open === list.length) send({ ev: 'open', ms: performance.now() - t0, maxMessageSize: list[0]!.maxMessageSize() });
      });
      c.onClose(() => send({ ev: 'state', kind: `channel${i}`, state: 'closed', at: Date.now() }));
    });
    list[0]!.onMessage((d) => {
      const now = performance.now();
      if (bulkRx.got === 0) bulkRx.first = now;
      bulkRx.got += d.byteLength;
      bulkRx.last = now;
      if (bulkRx.reply !== undefined && bulkRx.got >= bulkRx.expect) {
        send({ id: bulkRx.reply, bytes: bulkRx.got, ms: bulkRx.last - bulkRx.first });
        bulkRx.reply = undefined;
      }
    });
    list[1]!.onMessage(() => {
      pacedRx.last = performance.now();
      if (pacedRx.count++ === 0) pacedRx.first = pacedRx.last;
    });
  }, (err: Error) => send({ ev: 'error', message: err.message }));
}

/**
 * Bulk sender, the backpressure pattern under test: fill while bufferedAmount < high, then wait for the
 * low-threshold event (and, with `poll`, also re-check every 5 ms in case the event never comes).
 */
function bulkSend(bytes: number, size: number, high: number, low: number, poll: boolean): Promise<Record<string, unknown>> {
  const ch = chans[0]!;
  const msg = new Uint8Array(size).fill(0x5a);
  let sent = 0;
  let maxBuffered = 0;
  let byEvent = 0;
  let byPoll = 0;
  let error: string | undefined;
  abortSend = false;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      ch.onLow(() => undefined);
      resolve({ sent, maxBuffered, byEvent, byPoll, aborted: abortSend, ...(error ? { error } : {}) });
    };
    const pump = (): void => {
      while (sent < bytes && !abortSend) {
        const b = ch.bufferedAmount();
        if (b > maxBuffered) maxBuffered = b;
        if (b >= high) return;
        const n = Math.min(size, bytes - sent);
        try {
          ch.send(n === size ? msg : msg.subarray(0, n));
        } catch (err) {
          error = (err as Error).message; // werift throws on a message above the peer's max-message-size
          break;
        }
        sent += n;
      }
      finish();
    };
    finishBulk = finish;
    ch.setLowThreshold(low);
    ch.onLow(() => {
      byEvent++;
      pump();
    });
    if (poll) {
      timer = setInterval(() => {
        if (ch.bufferedAmount() <= low) {
          byPoll++;
          pump();
        }
      }, 5);
    }
    pump();
  });
}

/** Paced datagrams: `mbit` offered for `seconds`; a message that would push bufferedAmount past 256 KiB is dropped here (as a full UDP socket would). */
function pacedSend(mbit: number, seconds: number, size: number): Promise<Record<string, unknown>> {
  const ch = chans[1]!;
  const msg = new Uint8Array(size);
  const perMs = (mbit * 1e6) / 8 / size / 1000;
  const t0 = performance.now();
  let offered = 0;
  let accepted = 0;
  return new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - t0;
      const due = Math.floor(Math.min(elapsed, seconds * 1000) * perMs);
      for (; offered < due; offered++) {
        if (ch.bufferedAmount() > 256 * 1024) continue;
        new DataView(msg.buffer).setUint32(0, offered);
        ch.send(msg);
        accepted++;
      }
      if (elapsed >= seconds * 1000) {
        clearInterval(tick);
        resolve({ offered, accepted });
      }
    }, 1);
  });
}

/** Replies once no datagram has arrived for `quietMs` (the unordered channel has no end marker). */
function pacedCount(quietMs: number): Promise<number> {
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if (performance.now() - Math.max(pacedRx.last, 0) >= quietMs) {
        clearInterval(check);
        resolve(pacedRx.count);
      }
    }, 50);
  });
}

process.on('message', (raw) => {
  const m = raw as Msg;
  const reply = (r: Record<string, unknown>): void => send({ id: m.id, ...r });
  switch (m.cmd) {
    case 'connect':
      connect(m.role as 'offer' | 'answer');
      break;
    case 'signal':
      peer?.signal(m.s as Signal).catch((err: Error) => send({ ev: 'error', message: `signal: ${err.message}` }));
      break;
    case 'cpu':
      reply({ us: cpuUs(), rss: process.memoryUsage.rss() });
      break;
    case 'bulk-expect':
      bulkRx = { expect: m.bytes as number, got: 0, first: 0, last: 0, reply: m.id };
      break;
    case 'bulk-send':
      void withPeakRss(() => bulkSend(m.bytes as number, m.size as number, m.high as number, m.low as number, m.poll as boolean)).then(
        ([r, peakRss]) => reply({ ...r, peakRss }),
      );
      break;
    case 'abort':
      abortSend = true;
      finishBulk();
      reply({});
      break;
    case 'status':
      reply({ received: bulkRx.got, buffered: chans[0]?.bufferedAmount() ?? -1, rss: process.memoryUsage.rss() });
      break;
    case 'paced-send':
      void pacedSend(m.mbit as number, m.seconds as number, m.size as number).then(reply);
      break;
    case 'paced-count':
      void pacedCount(m.quietMs as number).then((received) => {
        reply({ received, spanMs: pacedRx.last - pacedRx.first });
        pacedRx = { count: 0, first: 0, last: 0 };
      });
      break;
    case 'close':
      peer?.close();
      peer = undefined;
      reply({});
      break;
    case 'exit':
      process.exit(0);
  }
});
send({ ev: 'ready' });
