// The Worker's memory policy in the mux (issue 14, "memory blow-up"): a server that honours at most
// `maxSendCredit` of a 64 MiB grant, and stops making streams writable while `maxUnackedBytes` of DATA wait for
// the PONG of a PING sent behind them. Also the receiver rule that keeps such a sender going: credit comes back
// at least every MAX_CREDIT_BATCH bytes, however large the receiver's window.
import { describe, expect, it } from 'vitest';
import { FrameType, MAX_CREDIT_BATCH, MAX_STREAM_WINDOW, ResetCode, ZksError, type DecodedFrame } from '../../src/protocol/index';
import { SendBudget } from '../../src/relay-worker/send-budget';
import { CONNECT, RawPeer, WINDOW_UPDATE, pattern } from './helpers';

const MiB = 1024 * 1024;
const dataBytes = (frames: DecodedFrame[]) =>
  frames.reduce((n, f) => n + (f.type === FrameType.DATA ? f.data.length : 0), 0);

describe('maxSendCredit: a sender honours less credit than granted', () => {
  it('sends only 2 MiB of a 64 MiB window, then more as credit returns', () => {
    const peer = new RawPeer('server', { maxSendCredit: 2 * MiB });
    peer.send({ ...CONNECT, window: MAX_STREAM_WINDOW });
    const stream = peer.incoming[0].stream;
    peer.takeSent();
    expect(stream.write(pattern(3 * MiB))).toBe(false);
    expect(dataBytes(peer.takeSent())).toBe(2 * MiB);
    expect(stream.writable).toBe(false);
    peer.send({ ...WINDOW_UPDATE, increment: MAX_CREDIT_BATCH });
    expect(dataBytes(peer.takeSent())).toBe(MAX_CREDIT_BATCH);
  });

  it('still answers a WINDOW_UPDATE beyond the real 64 MiB with RST FLOW_CONTROL', () => {
    const peer = new RawPeer('server', { maxSendCredit: 2 * MiB });
    peer.send({ ...CONNECT, window: MAX_STREAM_WINDOW });
    peer.takeSent();
    peer.send({ ...WINDOW_UPDATE, increment: 1 });
    peer.expectSent([{ type: FrameType.RST, stream: 1, code: ResetCode.FLOW_CONTROL }]);
  });
});

describe('maxUnackedBytes: writers pause until a PONG proves the data was read', () => {
  it('PINGs behind the first quarter, pauses at the limit, resumes on the PONG', () => {
    const peer = new RawPeer('server', { maxUnackedBytes: 4 * MiB });
    peer.send({ ...CONNECT, window: MAX_STREAM_WINDOW });
    const stream = peer.incoming[0].stream;
    let drains = 0;
    stream.onDrain = () => drains++;
    peer.takeSent();
    stream.write(pattern(1 * MiB));
    const first = peer.takeSent();
    expect(first.map((f) => f.type).at(-1)).toBe(FrameType.PING); // behind the data
    const ping = first.at(-1) as Extract<DecodedFrame, { type: typeof FrameType.PING }>;
    stream.write(pattern(3 * MiB));
    expect(peer.mux.unackedBytes).toBe(4 * MiB);
    expect(stream.writable).toBe(false);
    expect(peer.takeSent().filter((f) => f.type === FrameType.PING)).toEqual([]); // one outstanding at a time

    // A PONG the peer could send without reading (bytes other than the PING's) lifts nothing.
    peer.send({ type: FrameType.PONG, stream: 0, opaque: ping.opaque.map((b) => b ^ 1) });
    expect(peer.mux.unackedBytes).toBe(4 * MiB);
    expect(stream.writable).toBe(false);

    peer.send({ type: FrameType.PONG, stream: 0, opaque: ping.opaque });
    expect(peer.mux.unackedBytes).toBe(3 * MiB);
    expect(stream.writable).toBe(true);
    expect(drains).toBe(1);
    expect(peer.takeSent().map((f) => f.type)).toEqual([FrameType.PING]); // the next 3 MiB are waited on again
  });
});

describe('credit return batches', () => {
  it('a receiver with a 64 MiB window returns credit every MAX_CREDIT_BATCH bytes', () => {
    const peer = new RawPeer('server', { window: MAX_STREAM_WINDOW });
    peer.send(CONNECT);
    const stream = peer.incoming[0].stream;
    peer.takeSent();
    const half = pattern(MAX_CREDIT_BATCH / 2); // a DATA frame carries at most 256 KiB
    peer.send({ type: FrameType.DATA, stream: 1, data: half }, { type: FrameType.DATA, stream: 1, data: half });
    stream.consume(MAX_CREDIT_BATCH - 1);
    expect(peer.takeSent()).toEqual([]);
    stream.consume(1);
    peer.expectSent([{ type: FrameType.WINDOW_UPDATE, stream: 1, increment: MAX_CREDIT_BATCH }]);
  });
});

describe('sharedBudget: unacknowledged DATA bounded over several sessions (the Worker isolate)', () => {
  it('pauses every session once the sum is reached, keeps a PING out on each holder, resumes on a PONG', async () => {
    // Pokes reach the other sessions a microtask later (in the Worker: back in their own request context).
    const pokesDelivered = () => new Promise((r) => setImmediate(r));
    const budget = new SendBudget(3 * MiB);
    const a = new RawPeer('server', { maxUnackedBytes: 8 * MiB, sharedBudget: budget });
    const b = new RawPeer('server', { maxUnackedBytes: 8 * MiB, sharedBudget: budget });
    for (const p of [a, b]) {
      p.send({ ...CONNECT, window: MAX_STREAM_WINDOW });
      p.takeSent();
    }
    const [sa, sb] = [a.incoming[0].stream, b.incoming[0].stream];
    let drainsA = 0;
    sa.onDrain = () => drainsA++;
    sa.write(pattern(2 * MiB)); // a quarter of its own limit: A sends a PING
    const pingA = a.takeSent().find((f) => f.type === FrameType.PING) as Extract<DecodedFrame, { type: typeof FrameType.PING }>;
    expect(pingA).toBeDefined();
    expect(sb.writable).toBe(true);
    sb.write(pattern(1 * MiB)); // reaches the shared 3 MiB: everyone pauses
    expect(budget.exhausted).toBe(true);
    expect(sb.writable).toBe(false); // the session that took the last bytes pauses at once
    await pokesDelivered();
    expect(sa.writable).toBe(false);
    expect(sb.writable).toBe(false);
    // B is far below its own quarter, but it holds part of an exhausted budget: it must ask for a PONG too.
    expect(b.takeSent().filter((f) => f.type === FrameType.PING)).toHaveLength(1);

    a.send({ type: FrameType.PONG, stream: 0, opaque: pingA.opaque });
    expect(budget.held).toBe(1 * MiB);
    await pokesDelivered();
    expect(sa.writable).toBe(true);
    expect(sb.writable).toBe(true);
    expect(drainsA).toBe(1);

    b.mux.transportClosed(new ZksError('ZKS_ERR_CONNECTION_LOST', 'gone')); // its queued bytes are dropped
    expect(budget.held).toBe(0);
  });
});
