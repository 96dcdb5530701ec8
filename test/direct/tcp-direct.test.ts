// The direct TCP path between two real SecureLinks in this process (DirectPaths on both ends, real TCP on
// 127.0.0.1, signalling through the session's SIGNAL frames; WebRTC on 127.0.0.1 as the fallback). Checked: a
// running transfer moves onto TCP and the room goes quiet; a TCP path lost mid-transfer hands its records back
// (nothing lost), WebRTC takes over, and TCP takes over again later; strangers, replayed hellos and a wrong key at
// the listener are refused without touching the session; a garbage answer or framing ends only the TCP path.
import { describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { DirectPaths } from '../../src/direct/direct-paths';
import { Capability } from '../../src/protocol/datagram-types';
import { SignalKind } from '../../src/protocol/signal-codec';
import { tcpListenerStats } from '../../src/direct/tcp-listener';
import { parseTcpAnswer, pathHello, type TcpAnswer } from '../../src/direct/tcp-hello';
import type { DirectStatus } from '../../src/direct/direct-path';
import { closedAfterEach, echo, notify, sessionPair, type SessionPair, until } from './session-pair';

interface Ends extends SessionPair {
  clientDirect: DirectPaths;
  serverDirect: DirectPaths;
  /** TCP_ANSWER texts the client received. */
  answers: string[];
}

const opened = closedAfterEach<Ends>();

/** While `hold` is set, the client's TCP_OFFERs wait at the exit's door (the newest kept) until the test delivers it. */
interface OfferGate {
  hold: boolean;
  held: string | null;
}

async function ends(opts: { retryMs?: number; serverKey?: Uint8Array; rewriteAnswer?: (text: string) => string; offerGate?: OfferGate } = {}): Promise<Ends> {
  let serverDirect: DirectPaths | null = null;
  let clientDirect: DirectPaths | null = null;
  const answers: string[] = [];
  const p = await sessionPair({
    capabilities: Capability.DIRECT_PATH | Capability.DIRECT_TCP,
    clientSignal: (kind, text) => {
      if (kind === SignalKind.TCP_ANSWER) answers.push(text);
      clientDirect!.onSignal(kind, kind === SignalKind.TCP_ANSWER && opts.rewriteAnswer ? opts.rewriteAnswer(text) : text);
    },
    serverSignal: (kind, text) => {
      const gate = opts.offerGate;
      if (kind === SignalKind.TCP_OFFER && gate?.hold) return void (gate.held = text);
      serverDirect!.onSignal(kind, text);
    },
  });
  const config = { bindAddress: '127.0.0.1', retryMs: opts.retryMs ?? 60_000 };
  serverDirect = new DirectPaths({
    role: 'answer', link: p.server, config, log: p.log('exit'), datagramKeys: p.serverKeys.datagram, tcpPathKey: opts.serverKey ?? p.serverKeys.tcpPath,
  });
  clientDirect = new DirectPaths({ role: 'offer', link: p.client, config, log: p.log('client'), datagramKeys: p.clientKeys.datagram, tcpPathKey: p.clientKeys.tcpPath });
  const e = { ...p, clientDirect, serverDirect, answers };
  opened.push(e);
  return e;
}

const CAPS = Capability.DIRECT_PATH | Capability.DIRECT_TCP;
const viaTcp = (s: DirectStatus) => s.state === 'direct' && /^tcp /.test(s.route ?? '');
const viaWebRtc = (s: DirectStatus) => s.state === 'direct' && /^127\.0\.0\.1:\d+ ↔/.test(s.route ?? '');
const tcpSocket = (d: DirectPaths): Socket => (d.tcp as unknown as { attempt: { path: { socket: Socket } } }).attempt.path.socket;

/** Starts the client's attempt but keeps the exit's TCP_ANSWER from it until release(): the test probes first. */
async function answerHeldBack(e: Ends): Promise<{ answer: TcpAnswer; release: () => void }> {
  const held: string[] = [];
  const realOnSignal = e.clientDirect.onSignal.bind(e.clientDirect);
  (e.clientDirect as { onSignal: DirectPaths['onSignal'] }).onSignal = (kind, text) => (kind === SignalKind.TCP_ANSWER ? void held.push(text) : realOnSignal(kind, text));
  e.clientDirect.start(CAPS);
  await until(() => held.length === 1);
  const answer = parseTcpAnswer(held[0]!);
  if (typeof answer === 'string') throw new Error(answer);
  return { answer, release: () => realOnSignal(SignalKind.TCP_ANSWER, held[0]!) };
}

/** A raw TCP connection to the exit's listener; resolves once it is closed by the far end, with what it received. */
function probe(port: number, send: Uint8Array): Promise<{ received: number; refused: boolean }> {
  return new Promise((resolve) => {
    let received = 0;
    const s = connect({ host: '127.0.0.1', port }, () => s.write(send));
    s.on('data', (d) => (received += d.length));
    s.on('error', (err: NodeJS.ErrnoException) => resolve({ received, refused: err.code === 'ECONNREFUSED' }));
    s.on('close', () => resolve({ received, refused: false }));
  });
}

describe('direct TCP path (127.0.0.1, signalled through the session)', () => {
  it('moves a running transfer onto the TCP connection; the room then carries nothing but what was in flight', async () => {
    const e = await ends();
    e.clientDirect.start(CAPS);
    const total = 48 * 1024 * 1024;
    let roomAtSwitch = -1;
    await echo(e.client, total, async (off) => {
      if (off === 4 * 1024 * 1024) {
        await until(() => viaTcp(e.clientDirect.status) && viaTcp(e.serverDirect.status));
        roomAtSwitch = e.up.bytes + e.down.bytes;
      }
    });
    expect(roomAtSwitch).toBeGreaterThan(4 * 1024 * 1024);
    expect(e.up.bytes + e.down.bytes - roomAtSwitch).toBeLessThan(5 * 1024 * 1024);
    expect(e.clientDirect.status.route).toMatch(/^tcp 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:\d+$/);
    expect(e.clientDirect.webrtc.status.attempts).toBe(0); // TCP first: WebRTC was never needed
    expect(e.logs.some((l) => /^client: direct TCP path up \(127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:\d+\)/.test(l))).toBe(true);
    await until(() => e.clientDirect.status.rttMs >= 0);
    // The listener is gone once the attempt is connected: no open port for strangers.
    const port = parseTcpAnswer(e.answers[0]!) as { candidates: { port: number }[] };
    expect((await probe(port.candidates[0]!.port, new Uint8Array(8))).refused).toBe(true);
  });

  it('TCP lost mid-transfer: records go again on the room, WebRTC takes over, then TCP again — nothing lost', async () => {
    // The client retries TCP 300 ms after the loss: its offers wait at the gate until WebRTC has taken over, or a
    // TCP path back first would leave WebRTC nothing to take over (a race the test would lose on a busy machine).
    const gate: OfferGate = { hold: false, held: null };
    const e = await ends({ retryMs: 300, offerGate: gate });
    e.clientDirect.start(CAPS);
    await until(() => viaTcp(e.clientDirect.status) && viaTcp(e.serverDirect.status));
    await echo(e.client, 24 * 1024 * 1024, async (off) => {
      if (off === 6 * 1024 * 1024) {
        gate.hold = true;
        tcpSocket(e.serverDirect).destroy(); // the exit's end goes away, records in flight
      }
      if (off === 8 * 1024 * 1024) await until(() => viaWebRtc(e.clientDirect.status));
    });
    expect(e.client.recordsResent + e.server.recordsResent).toBeGreaterThan(0);
    expect(e.logs.some((l) => /^client: direct TCP path lost: /.test(l))).toBe(true);
    // The TCP retry gets through (the newest offer held, else the next one) and replaces WebRTC; a new transfer runs on it.
    gate.hold = false;
    if (gate.held !== null) e.serverDirect.onSignal(SignalKind.TCP_OFFER, gate.held);
    await until(() => viaTcp(e.clientDirect.status) && viaTcp(e.serverDirect.status));
    await until(() => e.clientDirect.webrtc.status.state === 'off');
    await echo(e.client, 8 * 1024 * 1024);
    expect(e.client.mux.isClosed).toBe(false);
  });

  it('strangers and replayed hellos at the listener are refused; the real client still connects', async () => {
    const e = await ends();
    const { answer, release } = await answerHeldBack(e);
    const port = answer.candidates[0]!.port;
    const before = tcpListenerStats.refused;
    const http = await probe(port, new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'));
    const wrongNonce = await probe(port, pathHello(e.clientKeys.tcpPath, new Uint8Array(16), new Uint8Array(16).fill(7)));
    const wrongKey = await probe(port, pathHello(new Uint8Array(32).fill(9), answer.nonce, new Uint8Array(16).fill(7)));
    for (const r of [http, wrongNonce, wrongKey]) expect(r).toEqual({ received: 0, refused: false }); // closed, not a byte back
    expect(tcpListenerStats.refused - before).toBe(3);
    release();
    await until(() => viaTcp(e.clientDirect.status));
    await echo(e.client, 2 * 1024 * 1024);
  });

  it('idle strangers cannot crowd the client out: one source holds at most 4 unverified connections', async () => {
    const e = await ends();
    const { answer, release } = await answerHeldBack(e);
    const port = answer.candidates[0]!.port;
    // Four silent connections from 127.0.0.2, each accepted (no reply, not closed), then a fifth: closed at once.
    const idle: Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      idle.push(s);
    }
    const before = tcpListenerStats.refused;
    const fifth = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    fifth.on('error', () => undefined);
    await new Promise((r) => fifth.once('close', r));
    expect(tcpListenerStats.refused - before).toBe(1);
    release(); // the client, from 127.0.0.1, still gets through
    await until(() => viaTcp(e.clientDirect.status));
    for (const s of idle) s.destroy();
  });

  it('an exit with another key (a relay in the middle cannot make a PATH_WELCOME): refused, WebRTC then', async () => {
    const e = await ends({ serverKey: new Uint8Array(32).fill(5) });
    e.clientDirect.start(CAPS);
    await until(() => viaWebRtc(e.clientDirect.status));
    expect(e.clientDirect.tcp!.lastError).toMatch(/no TCP connection: 127\.0\.0\.1:\d+ closed before its PATH_WELCOME/);
    await echo(e.client, 2 * 1024 * 1024);
  });

  it.each([
    ['no nonce', () => '127.0.0.1 5'],
    ['a bad address', (t: string) => `${t.split('\n')[0]}\nexample.com 80`],
    ['no address the client may use', (t: string) => `${t.split('\n')[0]}\n0.0.0.0 80`],
  ])('a garbage TCP_ANSWER (%s): the TCP attempt fails, the session goes on', async (_name, rewrite) => {
    const e = await ends({ rewriteAnswer: rewrite });
    e.clientDirect.start(CAPS);
    await until(() => e.clientDirect.tcp!.failures > 0);
    expect(e.clientDirect.tcp!.status.up).toBe(false);
    await echo(e.client, 1024 * 1024);
    expect(e.client.mux.isClosed).toBe(false);
    expect(e.server.mux.isClosed).toBe(false);
  });

  it('a framing error on the TCP path ends that path only; the room carries the session on', async () => {
    const e = await ends();
    e.clientDirect.start(CAPS);
    await until(() => viaTcp(e.clientDirect.status) && viaTcp(e.serverDirect.status));
    tcpSocket(e.clientDirect).write(Uint8Array.of(0, 0, 0, 5, 1, 2, 3, 4, 5)); // a 5-byte message: neither record nor heartbeat
    await until(() => e.logs.some((l) => /^exit: direct TCP path lost: a 5-byte message/.test(l)));
    await until(() => !viaTcp(e.clientDirect.status));
    await echo(e.client, 2 * 1024 * 1024);
    expect(e.client.mux.isClosed).toBe(false);
  });

  it('a TCP path gone silent (nothing read for 1 s) is declared dead by the heartbeat', async () => {
    const e = await ends();
    e.clientDirect.start(CAPS);
    await until(() => viaTcp(e.clientDirect.status) && viaTcp(e.serverDirect.status));
    tcpSocket(e.clientDirect).pause(); // the client stops reading: neither heartbeats nor records arrive there
    await until(() => e.logs.some((l) => /^client: direct TCP path lost: no heartbeat for \d+ ms/.test(l)));
    notify();
    await echo(e.client, 1024 * 1024);
  });
});
