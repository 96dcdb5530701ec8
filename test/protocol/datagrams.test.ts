// The mux's datagram side (docs/PROTOCOL.md §3.3–3.5) between two real Mux instances: capability exchange with
// new and older peers, UDP flows (addresses only when they change, sources back), closes and refusals with their
// codes, the drop-instead-of-queue rule, datagrams ahead of bulk DATA, echoes, and bad input that touches only
// its flow.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Capability, DatagramClose, EchoFailure, FrameType, MuxDatagramFlow, ZksError, encodeFrames,
  type DatagramFlow, type EchoOutcome, type EchoRequest, type Target,
} from '../../src/protocol/index';
import { Pair, h, pattern, type PairOptions } from './helpers';

const EXIT_CAPS = Capability.UDP | Capability.ICMP_ECHO;
const DNS: Target = { host: '192.0.2.1', port: 53 };

interface ExitLog {
  flows: MuxDatagramFlow[];
  got: Array<{ flow: number; dest: Target; data: string }>;
  closed: Array<{ flow: number; err: ZksError | null }>;
}

/** A client and an "exit" that both speak CAPABILITIES; the exit records every flow and datagram. */
function exitPair(opts: PairOptions = {}, serverCaps = EXIT_CAPS, onEcho?: (r: EchoRequest, respond: (o: EchoOutcome) => void) => void) {
  const log: ExitLog = { flows: [], got: [], closed: [] };
  const p = new Pair({
    ...opts,
    client: { peerAnnouncesCapabilities: true, ...opts.client },
    server: {
      peerAnnouncesCapabilities: true,
      capabilities: serverCaps,
      onDatagramFlow: (flow) => {
        log.flows.push(flow);
        flow.onDatagram = (dest, data) => void log.got.push({ flow: flow.id, dest, data: Buffer.from(data).toString() });
        flow.onClose = (err) => void log.closed.push({ flow: flow.id, err });
      },
      onEcho,
      ...opts.server,
    },
  });
  p.pump();
  return { p, log };
}

function openFlow(p: Pair): DatagramFlow {
  const flow = p.client.mux.datagrams.openFlow();
  if (flow instanceof ZksError) throw flow;
  return flow;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('capabilities', () => {
  it('each side sends CAPABILITIES as the first frame of its first record; the client learns the exit relays UDP and echoes', async () => {
    const { p } = exitPair();
    expect(p.client.sent[0]).toEqual({ type: FrameType.CAPABILITIES, stream: 0, caps: 0 });
    expect(p.server.sent[0]).toEqual({ type: FrameType.CAPABILITIES, stream: 0, caps: EXIT_CAPS });
    expect(await p.client.mux.datagrams.peerCapabilities()).toBe(EXIT_CAPS);
    expect(await p.server.mux.datagrams.peerCapabilities()).toBe(0);
  });

  it('an older peer (no CAPABILITIES in the handshake): nothing optional is sent, flows and echoes fail clearly', async () => {
    const p = new Pair({ server: { capabilities: EXIT_CAPS } });
    p.pump();
    expect(p.client.sent.concat(p.server.sent)).toEqual([]);
    expect(await p.client.mux.datagrams.peerCapabilities()).toBe(0);
    const flow = p.client.mux.datagrams.openFlow();
    expect(flow).toBeInstanceOf(ZksError);
    expect((flow as ZksError).code).toBe('ZKS_ERR_UNSUPPORTED');
    expect((flow as ZksError).message).toMatch(/exit peer/);
    expect(await p.client.mux.datagrams.echo({ host: '192.0.2.7', seq: 1, timeoutMs: 1000 })).toMatchObject({ ok: false, code: EchoFailure.UNSUPPORTED });
  });

  it('a second CAPABILITIES frame is a protocol error (GOAWAY)', () => {
    const { p } = exitPair();
    p.inject('client', encodeFrames([{ type: FrameType.CAPABILITIES, stream: 0, caps: 1 }]));
    p.pump();
    expect(p.client.mux.isClosed).toBe(true);
    expect(p.client.sent.at(-1)).toMatchObject({ type: FrameType.GOAWAY, message: expect.stringMatching(/CAPABILITIES/) });
  });

  it('CAPABILITIES from a peer that did not announce them in the handshake is a protocol error', () => {
    const p = new Pair();
    p.inject('server', encodeFrames([{ type: FrameType.CAPABILITIES, stream: 0, caps: 3 }]));
    p.pump();
    expect(p.server.mux.isClosed).toBe(true);
  });
});

describe('UDP flows', () => {
  it('the destination travels on the first datagram and when it changes; replies carry their source', () => {
    const { p, log } = exitPair();
    const flow = openFlow(p);
    const replies: Array<{ src: Target; data: string }> = [];
    flow.onDatagram = (src, data) => void replies.push({ src, data: Buffer.from(data).toString() });
    expect(flow.send(DNS, utf8('q1'))).toBe(true);
    expect(flow.send(DNS, utf8('q2'))).toBe(true);
    expect(flow.send({ host: 'example.com', port: 443 }, utf8('q3'))).toBe(true);
    p.pump();
    const wire = p.client.sent.filter((f) => f.type === FrameType.UDP_DATAGRAM);
    expect(wire.map((f) => (f as { address: Target | null }).address)).toEqual([DNS, null, { host: 'example.com', port: 443 }]);
    expect(log.got).toEqual([
      { flow: flow.id, dest: DNS, data: 'q1' },
      { flow: flow.id, dest: DNS, data: 'q2' },
      { flow: flow.id, dest: { host: 'example.com', port: 443 }, data: 'q3' },
    ]);
    // Endpoint-independent: replies from two sources on the same flow.
    const exitFlow = log.flows[0];
    exitFlow.send(DNS, utf8('a1'));
    exitFlow.send(DNS, utf8('a2'));
    exitFlow.send({ host: '2001:db8::9', port: 4000 }, utf8('a3'));
    p.pump();
    expect(replies).toEqual([
      { src: DNS, data: 'a1' },
      { src: DNS, data: 'a2' },
      { src: { host: '2001:db8::9', port: 4000 }, data: 'a3' },
    ]);
    expect(flow.datagramsSent).toBe(3);
    expect(flow.datagramsReceived).toBe(3);
    expect(p.client.mux.datagrams.stats).toMatchObject({ datagramsSent: 3, datagramsReceived: 3, datagramsDropped: 0 });
  });

  it('explicitAddresses: every datagram names its destination; switching it off forgets the last one sent', () => {
    const { p } = exitPair();
    const flow = openFlow(p);
    const addresses = () => p.client.sent.filter((f) => f.type === FrameType.UDP_DATAGRAM).map((f) => (f as { address: Target | null }).address);
    p.client.mux.datagrams.explicitAddresses = true; // the direct path's unreliable channel is up (PROTOCOL.md §3.6)
    flow.send(DNS, utf8('q1'));
    flow.send(DNS, utf8('q2'));
    p.pump();
    expect(addresses()).toEqual([DNS, DNS]);
    p.client.mux.datagrams.explicitAddresses = false; // back on the room: what was "last" may never have arrived
    flow.send(DNS, utf8('q3'));
    flow.send(DNS, utf8('q4'));
    p.pump();
    expect(addresses()).toEqual([DNS, DNS, DNS, null]);
  });

  it('flows whose first datagrams leave out of id order all open (SOCKS5 associations open concurrently)', () => {
    const { p, log } = exitPair();
    const [a, b, c] = [openFlow(p), openFlow(p), openFlow(p)];
    expect(c.send(DNS, utf8('from c'))).toBe(true);
    p.pump();
    expect(b.send(DNS, utf8('from b'))).toBe(true);
    expect(b.send(DNS, utf8('b again, no address'))).toBe(true);
    p.pump();
    expect(log.got).toEqual([
      { flow: c.id, dest: DNS, data: 'from c' },
      { flow: b.id, dest: DNS, data: 'from b' },
      { flow: b.id, dest: DNS, data: 'b again, no address' },
    ]);
    expect(p.server.mux.datagrams.stats.datagramsLate).toBe(0);
    // Without its destination a lower unknown id is still an old flow: dropped and counted, never opened...
    p.inject('server', encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: a.id, address: null, data: utf8('stale') }]));
    p.pump();
    expect(p.server.mux.datagrams.stats.datagramsLate).toBe(1);
    expect(p.server.mux.datagrams.flows.size).toBe(2);
    // ...and the flow's real first datagram, with its destination, still opens it.
    expect(a.send(DNS, utf8('from a'))).toBe(true);
    p.pump();
    expect(p.server.mux.datagrams.flows.size).toBe(3);
    expect(log.got.at(-1)).toEqual({ flow: a.id, dest: DNS, data: 'from a' });
  });

  it('close() frees the flow on both sides; late replies are dropped and counted', () => {
    const { p, log } = exitPair();
    const flow = openFlow(p);
    let closed: ZksError | null | undefined;
    flow.onClose = (err) => void (closed = err);
    flow.send(DNS, utf8('x'));
    p.pump();
    flow.close();
    expect(closed).toBeNull();
    expect(flow.send(DNS, utf8('after'))).toBe(false);
    p.pump();
    // A reply the exit had sent before it saw the close.
    p.inject('client', encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: flow.id, address: DNS, data: utf8('late') }]));
    p.pump();
    expect(log.closed).toEqual([{ flow: flow.id, err: null }]);
    expect(p.server.mux.datagrams.flows.size).toBe(0);
    expect(p.client.mux.datagrams.stats.datagramsLate).toBe(1);
  });

  it('the exit refuses a flow (LIMIT): the client sees ZKS_ERR_UDP with the reason', () => {
    const { p, log } = exitPair();
    const flow = openFlow(p);
    let closed: ZksError | null | undefined;
    flow.onClose = (err) => void (closed = err);
    flow.send(DNS, utf8('x'));
    p.pump();
    log.flows[0].refuse(DatagramClose.LIMIT, 'more than 512 UDP flows in this session');
    p.pump();
    expect(closed).toBeInstanceOf(ZksError);
    expect(closed!.code).toBe('ZKS_ERR_UDP');
    expect(closed!.message).toBe('UDP flow too many flows: more than 512 UDP flows in this session');
    expect(flow.closed).toBe(true);
  });

  it('a datagram to a side that does not relay UDP is refused with CLOSE UNSUPPORTED; streams go on', () => {
    const p = new Pair({ client: { peerAnnouncesCapabilities: true }, server: { peerAnnouncesCapabilities: true } });
    const s = p.open();
    p.inject('server', encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: 1, address: DNS, data: utf8('x') }]));
    p.inject('server', encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: 1, address: null, data: utf8('y') }]));
    s.c.stream.write(pattern(1000));
    p.pump();
    expect(p.server.sent.filter((f) => f.type === FrameType.UDP_DATAGRAM)).toEqual([
      { type: FrameType.UDP_DATAGRAM, stream: 1, address: null, data: new Uint8Array(0), close: { code: DatagramClose.UNSUPPORTED, message: 'this side does not relay UDP' } },
    ]);
    expect(p.server.mux.datagrams.stats).toMatchObject({ flowsRefused: 1, datagramsLate: 1 });
    expect(s.s.bytes()).toEqual(pattern(1000));
    expect(p.server.mux.isClosed).toBe(false);
  });

  it('a first datagram without a destination is refused (PROTOCOL); a bad address drops only that datagram', () => {
    const { p, log } = exitPair();
    p.inject('server', encodeFrames([{ type: FrameType.UDP_DATAGRAM, stream: 1, address: null, data: utf8('x') }]));
    p.inject('server', h('10 00000003 00000008 01 0000 01 c0000201')); // port 0: ZKS_ERR_UDP, not fatal
    p.pump();
    expect(p.server.sent.filter((f) => f.type === FrameType.UDP_DATAGRAM)).toMatchObject([{ stream: 1, close: { code: DatagramClose.PROTOCOL } }]);
    expect(p.server.mux.datagrams.stats.malformed).toBe(1);
    expect(log.flows).toEqual([]);
    expect(p.server.mux.isClosed).toBe(false);
  });

  it('over the transport backlog limit a datagram is dropped and counted, never queued', () => {
    let backlog = 0;
    const { p, log } = exitPair({ client: { backlog: () => backlog, maxDatagramBacklog: 1000 } });
    const flow = openFlow(p);
    expect(flow.send(DNS, utf8('a'))).toBe(true);
    backlog = 1001;
    expect(flow.send(DNS, utf8('b'))).toBe(false);
    backlog = 0;
    expect(flow.send(DNS, new Uint8Array(65_528))).toBe(false); // over MAX_DATAGRAM_PAYLOAD
    expect(flow.send(DNS, utf8('c'))).toBe(true);
    p.pump();
    expect(log.got.map((g) => g.data)).toEqual(['a', 'c']);
    expect(p.client.mux.datagrams.stats.datagramsDropped).toBe(2);
  });

  it('a datagram leaves ahead of the bulk DATA being assembled in the same tick', () => {
    const { p } = exitPair();
    const s = p.open();
    p.pump();
    const before = p.client.sent.length;
    s.c.stream.write(pattern(64 * 1024)); // below the flush threshold: waits for the scheduled flush
    const flow = openFlow(p);
    flow.send(DNS, utf8('urgent'));
    p.pump();
    const order = p.client.sent.slice(before).map((f) => f.type).filter((t) => t === FrameType.DATA || t === FrameType.UDP_DATAGRAM);
    expect(order[0]).toBe(FrameType.UDP_DATAGRAM);
    expect(s.s.bytes()).toEqual(pattern(64 * 1024));
  });

  it('the session ends: every flow closes with the error', () => {
    const { p, log } = exitPair();
    const flow = openFlow(p);
    let closed: ZksError | null | undefined;
    flow.onClose = (err) => void (closed = err);
    flow.send(DNS, utf8('x'));
    p.pump();
    p.client.mux.close();
    p.pump();
    expect(closed).toBeInstanceOf(ZksError);
    expect(log.closed.map((c) => c.err?.code)).toEqual(['ZKS_ERR_CONNECTION_LOST']);
  });

  it('random UDP_DATAGRAM payloads never throw out of the mux nor end a session unless malformed-fatal', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 9 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 20 }), (frames) => {
      const { p } = exitPair();
      for (const [stream, payload] of frames) {
        const head = new Uint8Array(9);
        head[0] = FrameType.UDP_DATAGRAM;
        new DataView(head.buffer).setUint32(1, stream);
        new DataView(head.buffer).setUint32(5, payload.length);
        p.inject('server', new Uint8Array([...head, ...payload]));
      }
      expect(() => p.pump()).not.toThrow();
    }));
  });
});

describe('echoes', () => {
  it('the exit answers; the requester measures the round trip with its own clock', async () => {
    const pending: Array<(o: EchoOutcome) => void> = [];
    const { p } = exitPair({}, EXIT_CAPS, (req, respond) => {
      expect(req).toMatchObject({ host: '192.0.2.7', seq: 9, timeoutMs: 1000, tcpOnly: false, tcpPort: 443 });
      pending.push(respond);
    });
    const answer = p.client.mux.datagrams.echo({ host: '192.0.2.7', seq: 9, timeoutMs: 1000, payload: utf8('zk') });
    p.pump();
    p.now += 12;
    pending[0]({ ok: true, method: 'icmp', tcpPort: 443, address: '192.0.2.7', ttl: 63, payload: utf8('zk') });
    p.pump();
    expect(await answer).toEqual({ ok: true, method: 'icmp', tcpPort: 443, address: '192.0.2.7', ttl: 63, rttMs: 12, payload: utf8('zk') });
  });

  it('failures carry their code; an exit without ICMP_ECHO answers UNSUPPORTED', async () => {
    const { p } = exitPair({}, EXIT_CAPS, (_req, respond) => respond({ ok: false, code: EchoFailure.TIMEOUT, message: 'no reply within 1000 ms' }));
    const a = p.client.mux.datagrams.echo({ host: '192.0.2.8', seq: 1, timeoutMs: 1000 });
    p.pump();
    expect(await a).toEqual({ ok: false, code: EchoFailure.TIMEOUT, message: 'no reply within 1000 ms' });

    const udpOnly = exitPair({}, Capability.UDP);
    const b = udpOnly.p.client.mux.datagrams.echo({ host: '192.0.2.8', seq: 1, timeoutMs: 1000 });
    expect(await b).toMatchObject({ ok: false, code: EchoFailure.UNSUPPORTED });
    // Sent anyway by a misbehaving client: the exit answers UNSUPPORTED instead of staying silent.
    udpOnly.p.inject('server', h('12 00000001 0000000d 00 0001 00 01bb 03e8 01 c0000207'));
    udpOnly.p.pump();
    expect(udpOnly.p.server.sent.at(-1)).toMatchObject({ type: FrameType.ICMP_ECHO, echo: { code: EchoFailure.UNSUPPORTED } });
  });

  it('a pending echo fails when the session ends', async () => {
    const { p } = exitPair({}, EXIT_CAPS, () => {});
    const a = p.client.mux.datagrams.echo({ host: '192.0.2.7', seq: 1, timeoutMs: 1000 });
    p.pump();
    p.client.mux.transportClosed(new ZksError('ZKS_ERR_CONNECTION_LOST', 'gone'));
    expect(await a).toEqual({ ok: false, code: EchoFailure.UNREACHABLE, message: 'gone' });
  });
});
