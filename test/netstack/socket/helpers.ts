// smoltcp-style helpers for TcpSocket tests: a segment template from the peer, send/expectSent/expectNothing, and
// constructors for a socket in each state. ISNs sit just below 2^32 so every test crosses the wrap.
import { expect } from 'vitest';
import { TcpSocket, TcpState, type TcpSocketConfig } from '../../../src/netstack/socket/index';
import { TcpFlags, seqAdd, type TcpRepr } from '../../../src/netstack/wire/index';

export const LOCAL_PORT = 80;
export const REMOTE_PORT = 49500;
export const LOCAL_SEQ = 0xfffffff0; // our ISS
export const REMOTE_SEQ = 0xfffffff8; // the peer's ISN
export const { SYN, ACK, FIN, RST, PSH } = TcpFlags;

/** Our sequence space: LOCAL_SEQ + n mod 2^32. */
export const L = (n: number): number => seqAdd(LOCAL_SEQ, n);
/** The peer's sequence space. */
export const R = (n: number): number => seqAdd(REMOTE_SEQ, n);

export const SEG: TcpRepr = {
  srcPort: REMOTE_PORT,
  dstPort: LOCAL_PORT,
  seq: 0,
  ack: 0,
  flags: ACK,
  window: 256,
  urgent: 0,
  mss: null,
  windowScale: null,
  sackPermitted: false,
  sackRanges: [],
  timestamp: null,
  payload: new Uint8Array(0),
};

export const CFG: TcpSocketConfig = { mss: 1460, rxBufferSize: 64, txBufferSize: 64, initialSeq: LOCAL_SEQ };
export const SYN_SEG: TcpRepr = { ...SEG, flags: SYN, seq: REMOTE_SEQ, mss: 1460 };

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

export function send(s: TcpSocket, seg: TcpRepr, t = 0): void {
  s.process(seg, t);
}

/** Everything dispatch(t) emits, payloads copied. */
export function drain(s: TcpSocket, t = 0): TcpRepr[] {
  const out: TcpRepr[] = [];
  s.dispatch(t, (seg) => out.push({ ...seg, payload: seg.payload.slice(), sackRanges: [...seg.sackRanges] }));
  return out;
}

/** Our segments as the peer sees them: the template with ports swapped, overridden by `segs`. */
export function expectSent(s: TcpSocket, segs: Partial<TcpRepr>[], t = 0): TcpRepr[] {
  const got = drain(s, t);
  const want = segs.map((w) => ({ ...SEG, srcPort: LOCAL_PORT, dstPort: REMOTE_PORT, ...w }));
  expect(got).toEqual(want);
  return got;
}

export function expectNothing(s: TcpSocket, t = 0): void {
  expect(drain(s, t)).toEqual([]);
}

export function synPending(cfg: Partial<TcpSocketConfig> = {}, syn: Partial<TcpRepr> = {}): TcpSocket {
  const s = TcpSocket.fromSyn({ ...SYN_SEG, ...syn }, 0, { ...CFG, ...cfg });
  if (s === 'reject') throw new Error('SYN rejected');
  return s;
}

export function synReceived(cfg: Partial<TcpSocketConfig> = {}, syn: Partial<TcpRepr> = {}): TcpSocket {
  const s = synPending(cfg, syn);
  s.accept(0);
  drain(s, 0);
  return s;
}

export function established(cfg: Partial<TcpSocketConfig> = {}, syn: Partial<TcpRepr> = {}): TcpSocket {
  const s = synReceived(cfg, syn);
  send(s, { ...SEG, seq: R(1), ack: L(1) });
  expect(s.state).toBe(TcpState.ESTABLISHED);
  expectNothing(s);
  return s;
}
