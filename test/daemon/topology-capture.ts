// Packet capture for leak tests: tcpdump in a namespace writes a pcap (packet-buffered, headers only); stop()
// reads it back with `tcpdump -r -n -q -tt` and parses each line into a PacketSummary. The usual assertion:
//   expect(otherThan(withoutNeighbour(packets), [{ host: '10.79.0.1', port: 8787 }])).toEqual([])
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execIn, startIn } from './topology-proc';

export interface PacketSummary {
  /** Seconds since the epoch (tcpdump -tt). */
  time: number;
  /** With `-i any` captures: the interface and direction tcpdump printed ("veth-world Out"). */
  via?: string;
  family: 'ip' | 'ip6' | 'arp' | 'other';
  proto: 'tcp' | 'udp' | 'icmp' | 'icmp6' | 'arp' | 'other';
  src: string;
  srcPort?: number;
  dst: string;
  dstPort?: number;
  /** ARP or IPv6 neighbour discovery / MLD: link-layer housekeeping, not traffic. */
  neighbour: boolean;
  line: string;
}

export interface CaptureResult {
  pcap: string;
  lines: string[];
  packets: PacketSummary[];
}

export interface Capture {
  readonly pcap: string;
  /** Stops tcpdump (flushing the file) and parses what it captured. */
  stop(): Promise<CaptureResult>;
}

export interface CaptureOptions {
  /** A tcpdump filter expression, e.g. ['not', 'port', '22']. */
  filter?: string[];
  /** Bytes kept per packet (default 256: all headers, little payload, so big transfers stay cheap). */
  snaplen?: number;
}

/** Lets the last packets pass from the kernel ring to the file before tcpdump is stopped. */
const SETTLE_MS = 100;

const NEIGHBOUR = /neighbor (solicitation|advertisement)|router (solicitation|advertisement)|redirect|multicast listener/;

function splitHostPort(family: 'ip' | 'ip6', text: string): { host: string; port?: number } {
  const dot = text.lastIndexOf('.');
  const withPort = family === 'ip' ? text.split('.').length === 5 : dot > 0;
  if (!withPort) return { host: text };
  const port = Number(text.slice(dot + 1));
  return Number.isInteger(port) ? { host: text.slice(0, dot), port } : { host: text };
}

/** Parses one line of `tcpdump -n -q -tt` output. */
export function parseTcpdumpLine(line: string): PacketSummary {
  const time = Number(line.slice(0, line.indexOf(' ')));
  const ip = /^\S+ (?:(\S+ (?:In|Out|M|B|P)) +)?(IP6?) (\S+) > (\S+?): (.*)$/.exec(line);
  if (ip) {
    const family = ip[2] === 'IP6' ? 'ip6' : 'ip';
    const rest = ip[5]!;
    const proto = /^tcp\b/.test(rest) ? 'tcp' : /^UDP\b/.test(rest) ? 'udp' : /ICMP6/.test(rest) ? 'icmp6' : /ICMP/.test(rest) ? 'icmp' : 'other';
    const s = splitHostPort(family, ip[3]!);
    const d = splitHostPort(family, ip[4]!);
    return {
      time, via: ip[1], family, proto, src: s.host, srcPort: s.port, dst: d.host, dstPort: d.port,
      neighbour: proto === 'icmp6' && NEIGHBOUR.test(rest), line,
    };
  }
  const arp = /^\S+ (?:(\S+ (?:In|Out|M|B|P)) +)?ARP, /.exec(line);
  if (arp) return { time, via: arp[1], family: 'arp', proto: 'arp', src: '', dst: '', neighbour: true, line };
  return { time, family: 'other', proto: 'other', src: '', dst: '', neighbour: false, line };
}

/** Drops ARP and IPv6 neighbour discovery / MLD. */
export const withoutNeighbour = (packets: PacketSummary[]): PacketSummary[] => packets.filter((p) => !p.neighbour);

/** Packets that are neither to nor from any allowed endpoint (port omitted: any port of that host). */
export function otherThan(packets: PacketSummary[], allowed: Array<{ host: string; port?: number }>): PacketSummary[] {
  const ok = (host: string, port: number | undefined) => allowed.some((a) => a.host === host && (a.port === undefined || a.port === port));
  return packets.filter((p) => !ok(p.dst, p.dstPort) && !ok(p.src, p.srcPort));
}

/** Starts tcpdump on `ifname` ('any' for all) in namespace `ns`; resolves once it is capturing. */
export async function startCapture(ns: string, ifname: string, dir: string, opts: CaptureOptions = {}): Promise<Capture> {
  const pcap = join(dir, `${ns}-${ifname}-${Date.now()}-${Math.floor(Math.random() * 1e6)}.pcap`);
  // -Z root: Debian's tcpdump otherwise drops to user tcpdump, who may not write into our 0700 temp dir.
  const proc = startIn(ns, `tcpdump ${ifname}`, [
    'tcpdump', '-i', ifname, '-n', '-U', '--immediate-mode', '-s', String(opts.snaplen ?? 256), '-Z', 'root', '-w', pcap, ...(opts.filter ?? []),
  ]);
  try {
    await proc.waitStderr(/listening on/, 10_000);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return {
    pcap,
    async stop() {
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      await proc.stop(3000); // SIGTERM: tcpdump closes the file cleanly (-U already wrote every packet)
      const lines = await readPcap(pcap, ns);
      return { pcap, lines, packets: lines.map(parseTcpdumpLine) };
    },
  };
}

/**
 * The text lines of a pcap file. Read inside the namespace while it exists: `-i any` captures store interface
 * indexes, which tcpdump names in the namespace it runs in (on the host they would name unrelated devices).
 */
export async function readPcap(pcap: string, ns?: string): Promise<string[]> {
  const args = ['-r', pcap, '-n', '-q', '-tt'];
  const r = await execIn(ns !== undefined && existsSync(`/run/netns/${ns}`) ? ns : '', 'tcpdump', args);
  if (r.code !== 0) throw new Error(`tcpdump -r ${pcap}: ${r.stderr.trim()}`);
  return r.stdout.toString().split('\n').filter((l) => l.length > 0);
}
