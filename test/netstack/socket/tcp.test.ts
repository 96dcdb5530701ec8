// TcpSocket state by state (RFC 9293 §3.10), smoltcp style. Both ISNs sit just below 2^32, so the handshake and
// every transfer cross the sequence-number wrap. Window field of our segments: rx buffer 64 bytes, no scaling.
import { describe, expect, it } from 'vitest';
import { TcpSocket, TcpState } from '../../../src/netstack/socket/index';
import {
  ACK, CFG, FIN, L, PSH, R, RST, SEG, SYN, SYN_SEG, bytes, drain, established, expectNothing, expectSent, send, synPending, synReceived,
} from './helpers';

describe('SYN_PENDING (SYN received, waiting for the tunnel CONNECT)', () => {
  it('fromSyn rejects segments that cannot open a connection', () => {
    expect(TcpSocket.fromSyn({ ...SYN_SEG, flags: SYN | ACK }, 0, CFG)).toBe('reject');
    expect(TcpSocket.fromSyn({ ...SYN_SEG, flags: SYN | RST }, 0, CFG)).toBe('reject');
    expect(TcpSocket.fromSyn({ ...SYN_SEG, flags: ACK }, 0, CFG)).toBe('reject');
  });

  it('sends nothing and has no timer until accept()', () => {
    const s = synPending();
    expect(s.state).toBe(TcpState.SYN_PENDING);
    expect(s.pollAt()).toBeNull();
    send(s, SYN_SEG, 500); // the peer retransmits its SYN: still waiting
    expectNothing(s, 500);
  });

  it('refuse() answers the SYN with RST|ACK', () => {
    const s = synPending();
    s.refuse();
    expect(s.state).toBe(TcpState.CLOSED);
    expect(s.pollAt()).toBe(0);
    expectSent(s, [{ seq: 0, ack: R(1), flags: RST | ACK, window: 0 }]);
    expectNothing(s);
  });

  it('a RST from the peer ends the pending socket', () => {
    const s = synPending();
    send(s, { ...SEG, flags: RST, seq: R(1) });
    expect(s.state).toBe(TcpState.CLOSED);
  });
});

describe('SYN_RECEIVED', () => {
  it('accept() sends SYN-ACK with our MSS, echoing only the options the SYN offered', () => {
    const s = synPending();
    s.accept(0);
    expect(s.state).toBe(TcpState.SYN_RECEIVED);
    expectSent(s, [{ seq: L(0), ack: R(1), flags: SYN | ACK, window: 64, mss: 1460 }]);
  });

  it('negotiates window scaling (RFC 7323) and SACK-permitted', () => {
    const s = synPending({ rxBufferSize: 1 << 20 }, { windowScale: 7, sackPermitted: true, window: 1000 });
    s.accept(0);
    expectSent(s, [{ seq: L(0), ack: R(1), flags: SYN | ACK, window: 65535, mss: 1460, windowScale: 5, sackPermitted: true }]);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 100 });
    expect(s.peerWindow).toBe(100 << 7);
    s.send(new Uint8Array(10));
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | PSH, window: (1 << 20) >> 5, payload: new Uint8Array(10) }]);
  });

  it('a peer window scale above 14 is used as 14; our MSS caps the segment size', () => {
    const s = established({ mss: 8, txBufferSize: 64 }, { windowScale: 20, mss: 1000 });
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 1 });
    expect(s.peerWindow).toBe(1 << 14);
    s.send(new Uint8Array(20));
    expect(drain(s).map((x) => x.payload.length)).toEqual([8, 8, 4]);
  });

  it('retransmits the SYN-ACK on RTO with exponential backoff', () => {
    const s = synReceived();
    expect(s.pollAt()).toBe(1000);
    expectNothing(s, 999);
    expectSent(s, [{ seq: L(0), ack: R(1), flags: SYN | ACK, window: 64, mss: 1460 }], 1000);
    expect(s.pollAt()).toBe(3000);
  });

  it('a retransmitted SYN gets the SYN-ACK again at once', () => {
    const s = synReceived();
    send(s, SYN_SEG, 10);
    expectSent(s, [{ seq: L(0), ack: R(1), flags: SYN | ACK, window: 64, mss: 1460 }], 10);
  });

  it('an unacceptable ACK is answered with <SEQ=SEG.ACK><CTL=RST>', () => {
    const s = synReceived();
    send(s, { ...SEG, seq: R(1), ack: L(5) });
    expectSent(s, [{ seq: L(5), ack: 0, flags: RST, window: 0 }]);
    expect(s.state).toBe(TcpState.SYN_RECEIVED);
  });

  it('the ACK of our SYN-ACK establishes the connection, data on it is delivered', () => {
    const s = synReceived();
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: bytes('hi') });
    expect(s.state).toBe(TcpState.ESTABLISHED);
    expect(new TextDecoder().decode(s.recv()!)).toBe('hi');
    expectSent(s, [{ seq: L(1), ack: R(3), window: 62 }]); // 2 bytes freed: the right edge stays (SWS avoidance)
  });

  it('close() during the handshake sends FIN once established', () => {
    const s = synReceived();
    s.close();
    send(s, { ...SEG, seq: R(1), ack: L(1) });
    expect(s.state).toBe(TcpState.FIN_WAIT_1);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | FIN, window: 64 }]);
  });
});

describe('ESTABLISHED', () => {
  it('ACKs once per batch of segments, not per segment', () => {
    const s = established();
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: bytes('abc') });
    send(s, { ...SEG, seq: R(4), ack: L(1), payload: bytes('def') });
    expectSent(s, [{ seq: L(1), ack: R(7), window: 58 }]);
    expect(new TextDecoder().decode(s.recv()!)).toBe('abcdef');
    expectNothing(s); // 6 bytes freed < min(64/2, MSS): no window update yet
  });

  it('sends data across the wrap and frees the buffer when it is acknowledged', () => {
    const s = established();
    expect(s.send(new Uint8Array(40).fill(7))).toBe(40);
    expect(s.sendSpace).toBe(24);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | PSH, window: 64, payload: new Uint8Array(40).fill(7) }]);
    expect(L(41)).toBeLessThan(L(1)); // the segment crossed 2^32
    send(s, { ...SEG, seq: R(1), ack: L(41) });
    expect(s.sendQueued).toBe(0);
    expect(s.pollAt()).toBeNull();
  });

  it('answers out-of-window segments with an ACK and does not accept them (§3.10.7.4)', () => {
    const s = established();
    send(s, { ...SEG, seq: R(100), ack: L(1), payload: bytes('x') }); // beyond RCV.NXT + 64
    expectSent(s, [{ seq: L(1), ack: R(1), window: 64 }]);
    send(s, { ...SEG, seq: R(-10), ack: L(1), payload: bytes('old') }); // entirely before RCV.NXT
    expectSent(s, [{ seq: L(1), ack: R(1), window: 64 }]);
    expect(s.recvQueued).toBe(0);
  });

  it('regression: a pure ACK at the right edge of a window filled beyond a hole is accepted (found by the transfer test)', () => {
    const s = established();
    s.send(bytes('abc'));
    drain(s);
    send(s, { ...SEG, seq: R(2), ack: L(1), payload: new Uint8Array(63) }); // fills the window beyond a 1-byte hole
    expectSent(s, [{ seq: L(4), ack: R(1), window: 64, sackRanges: [] }]);
    send(s, { ...SEG, seq: R(65), ack: L(4) }); // SEG.SEQ = RCV.NXT + RCV.WND: its ACK must count
    expect(s.sendQueued).toBe(0);
    expectNothing(s);
  });

  it('trims a segment straddling the window to what fits', () => {
    const s = established();
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: new Uint8Array(100).fill(1) });
    expect(s.recvQueued).toBe(64);
    expectSent(s, [{ seq: L(1), ack: R(65), window: 0 }]);
  });

  it('holds out-of-order segments (SACKed) and delivers once the hole fills', () => {
    const s = established({}, { sackPermitted: true });
    send(s, { ...SEG, seq: R(4), ack: L(1), payload: bytes('def') });
    send(s, { ...SEG, seq: R(10), ack: L(1), payload: bytes('jk') });
    expect(s.recv()).toBeNull();
    expectSent(s, [{ seq: L(1), ack: R(1), window: 64, sackRanges: [[R(4), R(7)], [R(10), R(12)]] }]);
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: bytes('abc') });
    expectSent(s, [{ seq: L(1), ack: R(7), window: 58, sackRanges: [[R(10), R(12)]] }]);
    send(s, { ...SEG, seq: R(7), ack: L(1), payload: bytes('ghi') });
    expectSent(s, [{ seq: L(1), ack: R(12), window: 53 }]);
    expect(new TextDecoder().decode(s.recv()!)).toBe('abcdefghijk');
  });

  it('an exact RST closes; an in-window inexact RST gets a challenge ACK (RFC 5961 §3.2)', () => {
    const s = established();
    send(s, { ...SEG, flags: RST, seq: R(5) });
    expect(s.state).toBe(TcpState.ESTABLISHED);
    expectSent(s, [{ seq: L(1), ack: R(1), window: 64 }]);
    send(s, { ...SEG, flags: RST, seq: R(1) });
    expect(s.state).toBe(TcpState.CLOSED);
    expectNothing(s);
  });

  it('a SYN gets a challenge ACK (RFC 5961 §4); an ACK of unsent data gets an ACK', () => {
    const s = established();
    send(s, { ...SEG, flags: SYN, seq: R(1) });
    expectSent(s, [{ seq: L(1), ack: R(1), window: 64 }]);
    send(s, { ...SEG, seq: R(1), ack: L(100) });
    expectSent(s, [{ seq: L(1), ack: R(1), window: 64 }]);
    expect(s.state).toBe(TcpState.ESTABLISHED);
  });

  it('retransmits on RTO with exponential backoff (RFC 6298 §5.5)', () => {
    const s = established();
    s.send(bytes('hello'));
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | PSH, window: 64, payload: bytes('hello') }], 0);
    expect(s.pollAt()).toBe(200); // the handshake's RTT sample (0 ms) gave the 200 ms floor
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | PSH, window: 64, payload: bytes('hello') }], 200);
    expect(s.pollAt()).toBe(600);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | PSH, window: 64, payload: bytes('hello') }], 600);
    expect(s.pollAt()).toBe(1400);
    send(s, { ...SEG, seq: R(1), ack: L(6) }, 1500);
    expect(s.pollAt()).toBeNull();
    expect(s.stats.timeouts).toBe(2);
  });

  it('measures RTT (Karn: not on retransmissions) and clamps the RTO at 200 ms', () => {
    const s = established();
    s.send(bytes('a'));
    drain(s, 0);
    send(s, { ...SEG, seq: R(1), ack: L(2) }, 50); // SRTT 50, RTTVAR 25 → 150 → clamped to 200
    expect(s.rtoMs).toBe(200);
    s.send(bytes('b'));
    drain(s, 100);
    drain(s, 300); // timeout: 400
    expect(s.rtoMs).toBe(400);
    send(s, { ...SEG, seq: R(1), ack: L(3) }, 310); // ambiguous sample ignored, backoff kept
    expect(s.rtoMs).toBe(400);
  });

  it('resets after maxRetries timeouts', () => {
    const s = established({ maxRetries: 2 });
    s.send(bytes('a'));
    drain(s, 0);
    drain(s, 200);
    drain(s, 600);
    expectSent(s, [{ seq: L(2), ack: R(1), flags: RST | ACK, window: 0 }], 1400);
    expect(s.state).toBe(TcpState.CLOSED);
  });

  it('fast retransmit on the third duplicate ACK resends only the first unacked segment', () => {
    const s = established({ txBufferSize: 64 }, { mss: 10 });
    s.send(new Uint8Array(50).map((_, i) => i));
    expect(drain(s).map((x) => x.seq)).toEqual([L(1), L(11), L(21), L(31), L(41)]);
    send(s, { ...SEG, seq: R(1), ack: L(11) });
    expectNothing(s);
    for (let i = 0; i < 2; i++) send(s, { ...SEG, seq: R(1), ack: L(11) });
    expectNothing(s);
    send(s, { ...SEG, seq: R(1), ack: L(11) });
    expectSent(s, [{ seq: L(11), ack: R(1), flags: ACK, window: 64, payload: new Uint8Array(10).map((_, i) => i + 10) }]);
    expect(s.stats.fastRetransmits).toBe(1);
    send(s, { ...SEG, seq: R(1), ack: L(11) }); // more dup ACKs: no storm
    expectNothing(s);
    // NewReno partial ACK: the next hole is resent, one segment
    send(s, { ...SEG, seq: R(1), ack: L(21) });
    expectSent(s, [{ seq: L(21), ack: R(1), flags: ACK, window: 64, payload: new Uint8Array(10).map((_, i) => i + 20) }]);
  });

  it('probes a zero window on a backoff timer, then sends when it opens', () => {
    const s = established();
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 0 });
    s.send(bytes('abc'));
    expectNothing(s, 0);
    expect(s.pollAt()).toBe(200);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK, window: 64, payload: bytes('a') }], 200);
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 0 }, 201); // the probe byte was not taken
    expect(s.pollAt()).toBe(600);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK, window: 64, payload: bytes('a') }], 600);
    send(s, { ...SEG, seq: R(1), ack: L(2), window: 0 }, 601); // taken, still closed
    send(s, { ...SEG, seq: R(1), ack: L(2), window: 0 }, 602);
    send(s, { ...SEG, seq: R(1), ack: L(2), window: 0 }, 603); // not duplicate ACKs: no fast retransmit
    expectNothing(s, 604);
    expect(s.pollAt()).toBe(604 + 800); // persist timer on the backed-off RTO
    send(s, { ...SEG, seq: R(1), ack: L(2), window: 100 }, 700);
    expectSent(s, [{ seq: L(2), ack: R(1), flags: ACK | PSH, window: 64, payload: bytes('bc') }], 700);
    expect(s.state).toBe(TcpState.ESTABLISHED);
  });

  it('regression: an ACK too old to update the window does not slide the window right (found by fast-check)', () => {
    const s = established();
    send(s, { ...SEG, seq: R(1), ack: L(1), window: 2 });
    s.send(bytes('ab'));
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | PSH, window: 64, payload: bytes('ab') }]);
    // acks both bytes but carries an older sequence number (SND.WL1 > SEG.SEQ): its window 0 is ignored, yet the
    // right edge the peer promised is still L(3), so nothing more may go out
    send(s, { ...SEG, seq: R(0), ack: L(3), window: 0, payload: bytes('xy') });
    s.send(bytes('cd'));
    for (const seg of drain(s)) expect(seg.payload.length).toBe(0);
  });

  it('a slow application shrinks our window to zero; reading sends a window update', () => {
    const s = established();
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: new Uint8Array(40) });
    expectSent(s, [{ seq: L(1), ack: R(41), window: 24 }]);
    send(s, { ...SEG, seq: R(41), ack: L(1), payload: new Uint8Array(40) });
    expectSent(s, [{ seq: L(1), ack: R(65), window: 0 }]);
    expect(s.recvQueued).toBe(64);
    // the peer's zero-window probe (one byte at RCV.NXT, or an old byte) gets an ACK with window 0
    send(s, { ...SEG, seq: R(65), ack: L(1), payload: bytes('z') });
    expectSent(s, [{ seq: L(1), ack: R(65), window: 0 }]);
    send(s, { ...SEG, seq: R(64), ack: L(1) });
    expectSent(s, [{ seq: L(1), ack: R(65), window: 0 }]);
    expect(s.recvQueued).toBe(64);
    expect(s.recv(new Uint8Array(10))!.length).toBe(10);
    expectNothing(s); // 10 bytes < min(32, MSS): silly window avoided
    s.recv(new Uint8Array(30));
    expect(s.pollAt()).toBe(0);
    expectSent(s, [{ seq: L(1), ack: R(65), window: 40 }]);
  });

  it('peer FIN: CLOSE_WAIT, remoteClosed, and we can still send (half-close)', () => {
    const s = established();
    send(s, { ...SEG, flags: ACK | FIN, seq: R(1), ack: L(1), payload: bytes('bye') });
    expect(s.state).toBe(TcpState.CLOSE_WAIT);
    expect(s.remoteClosed).toBe(true);
    expectSent(s, [{ seq: L(1), ack: R(5), window: 60 }]); // the FIN took one sequence number of the window
    expect(s.send(bytes('reply'))).toBe(5);
    expectSent(s, [{ seq: L(1), ack: R(5), flags: ACK | PSH, window: 60, payload: bytes('reply') }]);
  });

  it('a FIN beyond a hole counts once the hole fills', () => {
    const s = established();
    send(s, { ...SEG, flags: ACK | FIN, seq: R(4), ack: L(1), payload: bytes('d') });
    expect(s.remoteClosed).toBe(false);
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: bytes('abc') });
    expect(s.remoteClosed).toBe(true);
    expectSent(s, [{ seq: L(1), ack: R(6), window: 59 }]);
  });

  it('abort() sends RST now', () => {
    const s = established();
    s.abort();
    expectSent(s, [{ seq: L(1), ack: R(1), flags: RST | ACK, window: 0 }]);
    expect(s.state).toBe(TcpState.CLOSED);
  });
});

describe('FIN_WAIT_1 / FIN_WAIT_2', () => {
  it('close() sends FIN after the queued data; the ACK of the FIN leads to FIN_WAIT_2; receiving continues', () => {
    const s = established();
    s.send(bytes('data'));
    s.close();
    expect(s.state).toBe(TcpState.FIN_WAIT_1);
    expect(s.send(bytes('more'))).toBe(0);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | FIN | PSH, window: 64, payload: bytes('data') }]);
    send(s, { ...SEG, seq: R(1), ack: L(6), payload: bytes('still') });
    expect(s.state).toBe(TcpState.FIN_WAIT_2);
    expect(new TextDecoder().decode(s.recv()!)).toBe('still');
    expectSent(s, [{ seq: L(6), ack: R(6), window: 59 }]);
    send(s, { ...SEG, flags: ACK | FIN, seq: R(6), ack: L(6) }, 100);
    expect(s.state).toBe(TcpState.TIME_WAIT);
    expectSent(s, [{ seq: L(6), ack: R(7), window: 58 }], 100);
  });

  it('the FIN is retransmitted with the data on RTO', () => {
    const s = established();
    s.send(bytes('ab'));
    s.close();
    drain(s, 0);
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | FIN | PSH, window: 64, payload: bytes('ab') }], 200);
  });

  it('simultaneous close goes through CLOSING to TIME_WAIT', () => {
    const s = established();
    s.close();
    expectSent(s, [{ seq: L(1), ack: R(1), flags: ACK | FIN, window: 64 }]);
    send(s, { ...SEG, flags: ACK | FIN, seq: R(1), ack: L(1) });
    expect(s.state).toBe(TcpState.CLOSING);
    expectSent(s, [{ seq: L(2), ack: R(2), window: 63 }]);
    send(s, { ...SEG, seq: R(2), ack: L(2) }, 50);
    expect(s.state).toBe(TcpState.TIME_WAIT);
  });
});

describe('CLOSE_WAIT / LAST_ACK', () => {
  it('close() after the peer FIN sends FIN; its ACK closes the socket', () => {
    const s = established();
    send(s, { ...SEG, flags: ACK | FIN, seq: R(1), ack: L(1) });
    drain(s);
    s.close();
    expect(s.state).toBe(TcpState.LAST_ACK);
    expectSent(s, [{ seq: L(1), ack: R(2), flags: ACK | FIN, window: 63 }]);
    send(s, { ...SEG, seq: R(2), ack: L(2) });
    expect(s.state).toBe(TcpState.CLOSED);
    expect(s.pollAt()).toBeNull();
  });
});

describe('TIME_WAIT', () => {
  function timeWait(): TcpSocket {
    const s = established();
    s.close();
    drain(s);
    send(s, { ...SEG, flags: ACK | FIN, seq: R(1), ack: L(2) }, 0);
    drain(s);
    expect(s.state).toBe(TcpState.TIME_WAIT);
    return s;
  }

  it('is bounded by timeWaitMs (2 s)', () => {
    const s = timeWait();
    expect(s.pollAt()).toBe(2000);
    expectNothing(s, 1999);
    expectNothing(s, 2000);
    expect(s.state).toBe(TcpState.CLOSED);
  });

  it('a retransmitted FIN is ACKed again and restarts the timer', () => {
    const s = timeWait();
    send(s, { ...SEG, flags: ACK | FIN, seq: R(1), ack: L(2) }, 500);
    expectSent(s, [{ seq: L(2), ack: R(2), window: 63 }], 500);
    expect(s.pollAt()).toBe(2500);
  });
});

describe('CLOSED', () => {
  it('ignores every segment (the interface answers with RST)', () => {
    const s = established();
    s.abort();
    drain(s);
    send(s, { ...SEG, seq: R(1), ack: L(1), payload: bytes('x') });
    expectNothing(s);
    expect(s.recv()).toBeNull();
    expect(s.send(bytes('x'))).toBe(0);
  });
});
