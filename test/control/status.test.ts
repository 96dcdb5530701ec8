// The one reader of `status` (zks status, zksd status, zks-tui): what zksd and a proxy send comes back unchanged,
// an older or partial answer gets neutral defaults, and an unknown mode is refused rather than guessed.
import { describe, expect, it } from 'vitest';
import { readStatus, relayDisplayUrl } from '../../src/control/status';
import { relayLinkText } from '../../src/control/format';
import { isDaemonStatus, type DaemonStatus, type ProxyStatus } from '../../src/control/protocol';

const daemon: DaemonStatus = {
  pid: 4242, mode: 'relay', room: 'ab12cd', exitPeer: true, relay: 'wss://zks.example', relayEndpoints: ['104.21.1.1:443'],
  tun: 'zks0', mtu: 1500, offload: true, addresses: ['100.77.0.1/24'], ipv6: 'carry', resolver: '100.77.0.53',
  dnsUpstream: '8.8.8.8:53', killSwitch: true, bypass: ['10.0.0.0/8'], uptimeMs: 61_234,
  connections: [{ id: 1, streams: 3, rttMs: 21.4, carries: ['udp', 'icmp'], udpFlows: 2, datagrams: { sent: 10, received: 9, dropped: 1, late: 0, malformed: 0 },
    path: 'direct', pathRttMs: 0.8, pathRoute: '10.0.0.2:50000 ↔ 10.0.0.9:40000', pathError: null }], flows: 3, bytesUp: 81_234, bytesDown: 9_912_345, rateUp: 1200,
  rateDown: 2_450_000, memory: { rssMB: 104.2, heapMB: 11.3, externalMB: 6.1 }, netstack: { rxPackets: 5 },
  driver: { writeDropped: 0 }, dns: null,
};
const proxy: ProxyStatus = {
  pid: 77, mode: 'socks5', relay: 'ws://127.0.0.1:8787', listen: '127.0.0.1:1080', room: null, exitPeer: null,
  killSwitch: null, bypass: null, uptimeMs: 5, connections: [], flows: 0, bytesUp: 0, bytesDown: 0, rateUp: 0, rateDown: 0,
};

describe('readStatus', () => {
  it('reads what zksd and a proxy send, unchanged', () => {
    const d = readStatus(JSON.parse(JSON.stringify(daemon)));
    expect(d).toEqual(daemon);
    expect(d && isDaemonStatus(d)).toBe(true);
    const p = readStatus(JSON.parse(JSON.stringify(proxy)));
    expect(p).toEqual(proxy);
    expect(p && isDaemonStatus(p)).toBe(false);
  });

  it('fills what an older peer leaves out with neutral defaults', () => {
    const s = readStatus({ mode: 'direct', connections: [{ id: 2 }], flows: 'x' });
    expect(s).toMatchObject({
      mode: 'direct', pid: null, relay: '', killSwitch: null, bypass: null, flows: 0, connections: [{ id: 2, streams: 0, rttMs: -1, carries: [], udpFlows: 0, datagrams: { sent: 0, received: 0, dropped: 0, late: 0, malformed: 0 },
        path: '', pathRttMs: -1, pathRoute: null, pathError: null }],
      relayEndpoints: [], memory: null, netstack: null,
    });
  });

  it('refuses an unknown or missing mode (null), never guesses', () => {
    expect(readStatus({ mode: 'tap' })).toBeNull();
    expect(readStatus(null)).toBeNull();
    expect(readStatus([])).toBeNull();
  });
});

describe('relay link text', () => {
  it('names the path unless it is the Worker, with the direct path\'s own RTT', () => {
    expect(relayLinkText({ id: 1, streams: 3, rttMs: 21.44, path: 'worker', pathRttMs: -1 })).toBe('#1 3 streams rtt 21.4 ms');
    expect(relayLinkText({ id: 2, streams: 0, rttMs: -1, path: 'room', pathRttMs: -1 })).toBe('#2 0 streams via room');
    expect(relayLinkText({ id: 3, streams: 1, rttMs: 2, path: 'turn', pathRttMs: 0.84 })).toBe('#3 1 streams rtt 2.0 ms via turn, rtt 0.8 ms');
    expect(relayLinkText({ id: 4, streams: 1, rttMs: 2 })).toBe('#4 1 streams rtt 2.0 ms'); // an older peer: no path
    expect(relayLinkText({ id: 5, streams: 2, rttMs: 3, path: 'room', pathRttMs: -1, resuming: true, resumes: 1 }))
      .toBe('#5 2 streams rtt 3.0 ms via room, RESUMING (WebSocket lost, streams stalled)');
    expect(relayLinkText({ id: 6, streams: 2, rttMs: 3, path: 'room', pathRttMs: -1, resuming: false, resumes: 2 })).toBe('#6 2 streams rtt 3.0 ms via room, resumed 2×');
  });
});

describe('relayDisplayUrl', () => {
  it('keeps scheme, host and path, drops a query', () => {
    expect(relayDisplayUrl('wss://zks.example.workers.dev/')).toBe('wss://zks.example.workers.dev');
    expect(relayDisplayUrl('ws://[::1]:8787/r?key=secret')).toBe('ws://[::1]:8787/r');
  });
});
