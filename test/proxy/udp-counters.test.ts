// The proxy's SOCKS5 UDP counters as `status` carries them: one flat record, every drop reason its own key.
import { describe, expect, it } from 'vitest';
import { newProxyUdpStats, proxyUdpCounters } from '../../src/proxy/udp';

describe('proxyUdpCounters', () => {
  it('flattens the drop reasons into camelCase keys beside the totals', () => {
    const s = newProxyUdpStats();
    s.associations = 2;
    s.dropped['foreign-source'] = 3;
    s.dropped.fragmented = 1;
    s.dnsOverTcp = 4;
    expect(proxyUdpCounters(s)).toEqual({
      associations: 2, active: 0, datagramsUp: 0, bytesUp: 0, datagramsDown: 0, bytesDown: 0, dnsOverTcp: 4, refusedNoUdp: 0,
      droppedTruncated: 0, droppedReserved: 0, droppedFragmented: 1, droppedAddressType: 0, droppedBadTarget: 0,
      droppedOversize: 0, droppedForeignSource: 3, droppedTunnel: 0, droppedNoClient: 0,
    });
  });
});
