// UDP and ICMP flows in the TUI: at 80 columns (no PROTO column) a non-TCP row names its protocol before the
// destination while TCP rows stay as they were; from 120 columns PROTO says it. The plain status shows zksd's
// UDP/ICMP summary (status.udp), worded for the mode.
import { describe, expect, it } from 'vitest';
import { tableLayout } from '../../src/tui/table';
import { plainStatus } from '../../src/tui/plain';
import { parseFlows } from '../../src/tui/model';
import { readStatus } from '../../src/control/status';

const [tcp, udp, icmp] = parseFlows([
  { id: 1, protocol: 'tcp', source: '100.77.0.1:40000', destination: '10.79.1.1:80', path: 'exit', state: 'established' },
  { id: 2, protocol: 'udp', source: '100.77.0.1:40001', destination: '10.79.1.1:53', path: 'exit', state: 'open' },
  { id: 3, protocol: 'icmp', source: '100.77.0.1', destination: '10.79.1.1', path: 'exit', state: '3/3 0.4 ms' },
]);

describe('flow rows by protocol', () => {
  it('80 columns: "udp"/"icmp" in front of the destination, TCP unmarked', () => {
    const t = tableLayout(80);
    expect(t.header).not.toMatch(/PROTO/);
    expect(t.row(tcp)).toMatch(/^\s+1 10\.79\.1\.1:80\s/);
    expect(t.row(udp)).toMatch(/^\s+2 udp 10\.79\.1\.1:53\s/);
    expect(t.row(icmp)).toMatch(/^\s+3 icmp 10\.79\.1\.1\s/);
  });

  it('120 columns: the PROTO column', () => {
    const t = tableLayout(120);
    expect(t.header).toMatch(/^\s+ID PROTO DESTINATION/);
    expect(t.row(udp)).toMatch(/^\s+2 udp\s+10\.79\.1\.1:53\s/);
  });
});

describe('status summary', () => {
  const base = { pid: 1, relay: 'ws://x', room: null, exitPeer: null, killSwitch: true, bypass: [], uptimeMs: 0, connections: [],
    flows: 0, bytesUp: 0, bytesDown: 0, rateUp: 0, rateDown: 0, relayEndpoints: [], tun: 'zks0', mtu: 1500, offload: false,
    addresses: [], ipv6: 'carry', resolver: '100.77.0.53', dnsUpstream: '8.8.8.8:53', memory: null, netstack: null, driver: null, dns: null };

  it('direct mode says UDP is refused and pings are TCP connects', () => {
    const s = readStatus({ ...base, mode: 'direct', udp: { udpFlows: 0, udpRefused: 4, echoForwarded: 5, echoAnswered: 3 } })!;
    expect(plainStatus(s, '/run/zks/zksd.sock')).toMatch(/udp\/icmp\s+0 UDP flows · 4 refused \(ICMP port unreachable: the Worker carries no UDP\) · pings 3\/5 answered \(TCP connect to 443 via the Worker\)/);
  });

  it('relay mode: flows and real ICMP; an older daemon without `udp` shows no line', () => {
    const s = readStatus({ ...base, mode: 'relay', udp: { udpFlows: 2, echoForwarded: 1, echoAnswered: 1 } })!;
    expect(plainStatus(s, 'sock')).toMatch(/udp\/icmp\s+2 UDP flows · pings 1\/1 answered \(ICMP at the exit peer\)/);
    expect(plainStatus(readStatus({ ...base, mode: 'relay' })!, 'sock')).not.toMatch(/udp\/icmp/);
  });
});
