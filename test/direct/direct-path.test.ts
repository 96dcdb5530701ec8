// The direct path between two real SecureLinks (sequenced records) in this process: the "room" between them is an
// in-memory wire the test can watch, the direct path is a real WebRTC peer connection (node-datachannel, host
// candidates on 127.0.0.1 only). Signalling runs through the links' own SIGNAL frames. Checked: records move to
// the DataChannels during a running transfer and the room goes quiet; a direct path that dies mid-transfer hands
// its unacknowledged records back to the room with nothing lost; a forged DTLS fingerprint or a garbage SDP ends
// the attempt and the room keeps carrying the session.
import { describe, expect, it } from 'vitest';
import type { SecureLink } from '../../src/link/secure-link';
import { DirectPath, type DirectStatus } from '../../src/direct/direct-path';
import { Capability } from '../../src/protocol/datagram-types';
import { SignalKind } from '../../src/protocol/signal-codec';
import { closedAfterEach, echo, notify, type RoomWire, sessionPair, until } from './session-pair';

interface Ends {
  client: SecureLink; server: SecureLink; clientDirect: DirectPath; serverDirect: DirectPath;
  up: RoomWire; down: RoomWire; logs: string[];
}

const opened = closedAfterEach<Ends>();

async function ends(opts: { rewriteServerSdp?: (sdp: string) => string; connectTimeoutMs?: number; retryMs?: number } = {}): Promise<Ends> {
  let serverDirect: DirectPath | null = null;
  let clientDirect: DirectPath | null = null;
  const p = await sessionPair({
    capabilities: Capability.DIRECT_PATH,
    clientSignal: (kind, text) => clientDirect!.onSignal(kind, text),
    serverSignal: (kind, text) => serverDirect!.onSignal(kind, text),
  });
  const config = { bindAddress: '127.0.0.1', connectTimeoutMs: opts.connectTimeoutMs ?? 10_000, retryMs: opts.retryMs ?? 60_000 };
  serverDirect = new DirectPath({ role: 'answer', link: p.server, config, log: p.log('exit'), rewriteLocalSdp: opts.rewriteServerSdp, datagramKeys: p.serverKeys.datagram });
  clientDirect = new DirectPath({ role: 'offer', link: p.client, config, log: p.log('client'), datagramKeys: p.clientKeys.datagram });
  const e = { client: p.client, server: p.server, clientDirect, serverDirect, up: p.up, down: p.down, logs: p.logs };
  opened.push(e);
  return e;
}

const isUp = (s: DirectStatus) => s.state === 'direct';

describe('direct path (node-datachannel on 127.0.0.1, signalled through the session)', () => {
  it('moves a running transfer onto the DataChannels; the room then carries nothing but what was in flight', async () => {
    const e = await ends();
    e.clientDirect.start();
    const total = 24 * 1024 * 1024;
    let roomAtSwitch = -1;
    await echo(e.client, total, async (off) => {
      // Halfway through the first megabytes on the room, wait for both ends to switch, then note the room's bytes.
      if (off === 4 * 1024 * 1024) {
        await until(() => isUp(e.clientDirect.status) && isUp(e.serverDirect.status));
        roomAtSwitch = e.up.bytes + e.down.bytes;
      }
    });
    expect(roomAtSwitch).toBeGreaterThan(4 * 1024 * 1024); // the first megabytes really went through the room
    const roomAfter = e.up.bytes + e.down.bytes - roomAtSwitch;
    // What was queued before the switch (at most the stream window each way) may still cross the room; the
    // remaining ≈ 20 MB each way must not.
    expect(roomAfter).toBeLessThan(5 * 1024 * 1024);
    expect(e.client.activePath).toBe(1);
    expect(e.server.activePath).toBe(1);
    expect(e.clientDirect.status.route).toMatch(/^127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:\d+$/);
    expect(e.logs.some((l) => /^client: direct path up \(direct, 127\.0\.0\.1/.test(l))).toBe(true);
    await until(() => e.clientDirect.status.rttMs >= 0);
  });

  it('a direct path lost mid-transfer: unacknowledged records go again over the room, nothing is lost', async () => {
    const e = await ends();
    e.clientDirect.start();
    await until(() => isUp(e.clientDirect.status) && isUp(e.serverDirect.status));
    const total = 16 * 1024 * 1024;
    await echo(e.client, total, async (off) => {
      if (off === 6 * 1024 * 1024) {
        // The exit's side of the peer connection goes away at once, with records in flight both ways.
        (e.serverDirect as unknown as { attempt: { pc: { close(): void } } }).attempt.pc.close();
        await until(() => e.client.activePath === 0 && e.server.activePath === 0);
      }
    });
    expect(e.client.recordsResent + e.server.recordsResent).toBeGreaterThan(0);
    expect(e.logs.some((l) => /^client: direct path lost: .*traffic back on the room/.test(l))).toBe(true);
    expect(e.clientDirect.status.state).toBe('off');
  });

  it('after losing its path the client offers again (backoff) and the session moves back onto a new one', async () => {
    const e = await ends({ retryMs: 100 });
    e.clientDirect.start();
    await until(() => isUp(e.clientDirect.status) && isUp(e.serverDirect.status));
    (e.serverDirect as unknown as { attempt: { pc: { close(): void } } }).attempt.pc.close();
    await until(() => e.clientDirect.status.failures === 1);
    // Retries come after 100, 200, 400 … ms; the exit takes one offer per 2 s, so the first few are turned away.
    await until(() => e.clientDirect.status.attempts >= 2 && isUp(e.clientDirect.status) && isUp(e.serverDirect.status));
    expect(e.client.activePath).toBeGreaterThanOrEqual(2); // a new path: the first one is gone for good
    await echo(e.client, 4 * 1024 * 1024);
    expect(e.logs.filter((l) => /^client: direct path up/.test(l))).toHaveLength(2);
  });

  it('UDP datagrams travel as datagram records on the unreliable channel, not through the room', async () => {
    const e = await ends();
    e.clientDirect.start();
    await until(() => isUp(e.clientDirect.status) && isUp(e.serverDirect.status));
    const flow = e.client.mux.datagrams.openFlow();
    if (!('send' in flow)) throw flow;
    let echoed = 0;
    flow.onDatagram = (_source, payload) => {
      expect(payload.length).toBe(1000);
      echoed++;
      notify();
    };
    const room = e.up.bytes + e.down.bytes;
    for (let i = 0; i < 100; i++) flow.send({ host: '10.0.0.53', port: 53 }, new Uint8Array(1000).fill(i));
    await until(() => echoed >= 1); // unreliable by design: some may be lost, never all
    expect(e.clientDirect.datagramsSent).toBeGreaterThanOrEqual(1);
    expect(e.serverDirect.datagramsReceived).toBeGreaterThanOrEqual(1);
    expect(e.serverDirect.datagramsSent).toBeGreaterThanOrEqual(1);
    // One datagram per record (1 000 bytes each: none grouped), so a lost packet loses one datagram.
    expect(e.clientDirect.datagramsSent).toBe(100);
    expect(e.clientDirect.datagramsReceived).toBe(echoed);
    expect(e.up.bytes + e.down.bytes - room).toBeLessThan(10 * 1000); // 100 kB of datagrams each way: not here
    expect(e.clientDirect.datagramsRejected).toEqual({ replays: 0, forged: 0 });
  });

  it('offers faster than one per 2 s are refused with CLOSE, without a peer connection for them', async () => {
    const e = await ends();
    e.clientDirect.start();
    await until(() => isUp(e.clientDirect.status) && isUp(e.serverDirect.status));
    e.client.mux.sendSignal(SignalKind.OFFER, 'v=0\r\n'); // a client that churns offers (a bug, or on purpose)
    await until(() => e.logs.some((l) => /^exit: direct path: ignored an offer \d+ ms after the last one/.test(l)));
    await until(() => e.logs.some((l) => /^client: direct path lost: the peer ended the direct path: offers too frequent/.test(l)));
    expect(e.serverDirect.status.attempts).toBe(1); // no peer connection was made for the second offer
    await echo(e.client, 1024 * 1024); // and the session carries on (over the room, then again)
  });

  it('a forged DTLS fingerprint in the answer: the attempt fails, the room keeps the session', async () => {
    const e = await ends({ rewriteServerSdp: (sdp) => sdp.replace(/(a=fingerprint:sha-256 )([0-9A-F]{2})/, (_m, p: string, x: string) => p + (x === 'AA' ? 'BB' : 'AA')) });
    e.clientDirect.start();
    await until(() => e.clientDirect.status.failures > 0);
    expect(e.clientDirect.status.state).toBe('off');
    expect(e.client.activePath).toBe(0);
    await echo(e.client, 2 * 1024 * 1024);
    expect(e.client.mux.isClosed).toBe(false);
  });

  it.each([
    ['no fingerprint', () => 'garbage'],
    ['garbage with a fingerprint', () => 'v=0\r\na=fingerprint:sha-256 AA:BB\r\nm=nonsense\r\n'],
  ])('a garbage answer (%s): refused, the room keeps the session', async (_name, sdp) => {
    const e = await ends({ rewriteServerSdp: sdp });
    e.clientDirect.start();
    await until(() => e.clientDirect.status.failures > 0);
    expect(e.clientDirect.status.lastError).toMatch(/answer/);
    await echo(e.client, 1024 * 1024);
    expect(e.client.mux.isClosed).toBe(false);
    expect(e.server.mux.isClosed).toBe(false);
  });
});
