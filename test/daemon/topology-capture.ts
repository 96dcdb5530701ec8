// Packet capture for leak tests: tcpdump in a namespace writes a pcap (packet-buffered, headers only); stop()
// reads it back with `tcpdump -r -n -q -tt` and parses each line into a PacketSummary. The usual assertion:
//   expect(otherThan(withoutNeighbour(packets), [{ host: '10.79.0.1', port: 8787 }])).toEqual([])
// Absence needs a known end: stop() first sends a marker datagram across the captured interface and stops tcpdump
// only once tcpdump has printed it, so every packet that crossed before the marker is in the file. The marker (and
// an ICMP unreachable answering it) is left out of the result.
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
  /** Sends the end marker, waits until tcpdump has seen it, stops tcpdump (flushing the file), parses the file. */
  stop(): Promise<CaptureResult>;
  /** Stops tcpdump without a marker or reading the file (clean-up after a failed test). Idempotent. */
  discard(): Promise<void>;
}

/**
 * Where the end marker comes from: a UDP datagram from `from` (bound in namespace `ns`) to `to`:MARK_PORT that
 * crosses the captured interface, sent after the traffic under test.
 */
export interface CaptureMarker {
  ns: string;
  from: string;
  to: string;
}

export interface CaptureOptions {
  /** A tcpdump filter expression, e.g. ['not', 'port', '22']. */
  filter?: string[];
  /** Bytes kept per packet (default 256: all headers, little payload, so big transfers stay cheap). */
  snaplen?: number;
}

/** The end marker's destination port; the capture filter always admits it. */
export const MARK_PORT = 7999;
/** A failure deadline only: the marker normally shows up within milliseconds. */
const MARK_WAIT_MS = 30_000;

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

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Sends the marker datagram; resolves with its source port once the kernel has taken it. */
async function sendMarker(m: CaptureMarker): Promise<number> {
  const script = `const s = require('node:dgram').createSocket('udp4');
    s.bind(0, ${JSON.stringify(m.from)}, () => s.send('zks-capture-end', ${MARK_PORT}, ${JSON.stringify(m.to)}, (e) => {
      if (e) throw e;
      console.log(s.address().port);
      s.close();
    }));`;
  const r = await execIn(m.ns, process.execPath, ['-e', script], { timeoutMs: 10_000 });
  const port = Number(r.stdout.toString().trim());
  if (r.code !== 0 || !Number.isInteger(port)) throw new Error(`capture end marker not sent from ${m.ns}: ${r.stderr.trim()}`);
  return port;
}

/** Starts tcpdump on `ifname` ('any' for all) in namespace `ns`; resolves once it is capturing. */
export async function startCapture(ns: string, ifname: string, dir: string, marker: CaptureMarker, opts: CaptureOptions = {}): Promise<Capture> {
  const pcap = join(dir, `${ns}-${ifname}-${Date.now()}-${Math.floor(Math.random() * 1e6)}.pcap`);
  const filter = opts.filter?.length ? ['(', ...opts.filter, ')', 'or', 'udp', 'port', String(MARK_PORT)] : [];
  // -Z root: Debian's tcpdump otherwise drops to user tcpdump, who may not write into our 0700 temp dir.
  // --print -l: each packet is also printed, line-buffered (-U alone does not flush stdout in 4.99.3), after it was
  // written: how stop() sees the marker.
  const proc = startIn(ns, `tcpdump ${ifname}`, [
    'tcpdump', '-i', ifname, '-n', '-q', '-U', '--immediate-mode', '-s', String(opts.snaplen ?? 256), '-Z', 'root',
    '-w', pcap, '--print', '-l', ...filter,
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
      const from = proc.lines.length;
      const port = await sendMarker(marker);
      const mark = new RegExp(` IP ${escape(marker.from)}\\.${port} > ${escape(marker.to)}\\.${MARK_PORT}: UDP`);
      await proc.waitLine(mark, MARK_WAIT_MS, from);
      await proc.stop(3000); // SIGTERM: tcpdump closes the file cleanly (-U already wrote every packet)
      const answer = new RegExp(`ICMP .* udp port ${MARK_PORT} unreachable`);
      const lines = (await readPcap(pcap, ns)).filter((l) => !mark.test(l) && !answer.test(l));
      return { pcap, lines, packets: lines.map(parseTcpdumpLine) };
    },
    discard: () => proc.stop(3000),
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
