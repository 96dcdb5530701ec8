// Real parts for the SOCKS5 UDP ASSOCIATE tests: dnsmasq on a loopback address of its own (port 53, TCP and UDP,
// nothing but its --address table), a DNS-over-TCP responder with oversized answers, a raw UDP ASSOCIATE client
// for bad input, and Debian's PySocks (/usr/bin/python3) as the client nobody here wrote. Everything is closed by
// the caller; dnsmasq is killed by its pid.

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { run } from '../integration/harness';
import { formatIPv6 } from '../../src/protocol/address';

/** A loopback address nobody else uses in this run (127/8 is all loopback on Linux). */
export function loopbackAddress(): string {
  return `127.${randomInt(60, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`;
}

async function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export interface Dnsmasq { host: string; close(): Promise<void> }

/** dnsmasq on `host`:53 only (--bind-interfaces), answering example.test with 10.9.8.7 and nothing else. */
export async function startDnsmasq(host = loopbackAddress()): Promise<Dnsmasq> {
  const child: ChildProcess = spawn('/usr/sbin/dnsmasq', [
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--pid-file=',
    `--listen-address=${host}`, '--bind-interfaces', '--port=53', '--address=/example.test/10.9.8.7',
    '--log-facility=-',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 15_000; // a failure deadline only
  while (!(await portOpen(host, 53))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`dnsmasq on ${host}:53 did not start: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { host, close };
}

/** A DNS query (RD set) for `name`, type A. */
export function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

/** A DNS-over-TCP server on `host`:53 answering every query with `size` bytes (its id and QR set, then zeros). */
export async function startBigAnswerDns(host: string, size: number): Promise<{ queries: () => number; close(): Promise<void> }> {
  let queries = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const q = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + q.length);
        queries++;
        const out = Buffer.alloc(2 + size);
        out.writeUInt16BE(size, 0);
        q.copy(out, 2, 0, Math.min(q.length, 12));
        out[4] |= 0x80;
        sock.write(out);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(53, host, () => resolve());
  });
  return {
    queries: () => queries,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

export interface RawAssociation {
  control: Socket;
  /** The reply's REP byte. */
  rep: number;
  /** BND.ADDR / BND.PORT. */
  relay: { host: string; port: number };
  /** Our UDP socket on the client's address (the one named in the request when `namePort` was set). */
  udp: UdpSocket;
  /** Datagrams received on `udp`, in order. */
  received: Buffer[];
  next(): Promise<Buffer>;
  close(): void;
}

/** Raw SOCKS5 UDP ASSOCIATE from `host` (127.0.0.1 or ::1; username/password if given); resolves after the reply. */
export async function rawAssociate(
  socksPort: number,
  opts: { auth?: { username: string; password: string }; namePort?: boolean; host?: string } = {},
): Promise<RawAssociation> {
  const local = opts.host ?? '127.0.0.1';
  const udp = createSocket(local.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => udp.bind(0, local, r));
  const received: Buffer[] = [];
  let waiter: (() => void) | null = null;
  udp.on('message', (m) => { received.push(m); waiter?.(); });
  const control = connect({ host: local, port: socksPort });
  control.on('error', () => {});
  await new Promise<void>((r, j) => { control.once('connect', r); control.once('error', j); });
  const reader = byteReader(control);
  control.write(Buffer.from(opts.auth ? [5, 1, 2] : [5, 1, 0]));
  const method = await reader(2);
  if (method[1] === 0xff) {
    udp.close();
    control.destroy();
    throw new Error('the proxy accepted none of our methods (0xff)');
  }
  if (opts.auth) {
    const u = Buffer.from(opts.auth.username);
    const p = Buffer.from(opts.auth.password);
    control.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    await reader(2);
  }
  const port = opts.namePort ? udp.address().port : 0;
  control.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, port >> 8, port & 0xff]));
  const head = await reader(4);
  const addrLen = head[3] === 4 ? 16 : 4;
  const rest = await reader(addrLen + 2);
  const host = addrLen === 4 ? [...rest.subarray(0, 4)].join('.') : formatIPv6(rest.subarray(0, 16));
  const next = async (): Promise<Buffer> => {
    while (received.length === 0) await new Promise<void>((r) => (waiter = r));
    waiter = null;
    return received.shift()!;
  };
  return {
    control, rep: head[1]!, relay: { host, port: rest.readUInt16BE(addrLen) }, udp, received, next,
    close: () => { control.destroy(); udp.close(); },
  };
}

/** Reads exact byte counts from a socket in order. */
function byteReader(socket: Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  const pump = () => {
    if (want && buf.length >= want.n) {
      const out = buf.subarray(0, want.n);
      buf = buf.subarray(want.n);
      const w = want;
      want = null;
      w.resolve(out);
    }
  };
  socket.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); pump(); });
  socket.on('close', () => want?.reject(new Error(`connection closed with ${buf.length} bytes unread`)));
  return (n) => new Promise((resolve, reject) => { want = { n, resolve, reject }; pump(); });
}

/** The SOCKS5 UDP header for an IPv4 target, then `payload`. */
export function udpHeader(host: string, port: number, payload: Uint8Array, frag = 0): Buffer {
  return Buffer.concat([Buffer.from([0, 0, frag, 1, ...host.split('.').map(Number), port >> 8, port & 0xff]), payload]);
}

const PYSOCKS_QUERY = `
import json, socket, struct, sys
import socks
proxy_port, server, port, name = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
user = sys.argv[5] if len(sys.argv) > 5 else None
password = sys.argv[6] if len(sys.argv) > 6 else None
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, '127.0.0.1', proxy_port, username=user, password=password)
s.settimeout(float(sys.argv[7]) if len(sys.argv) > 7 else 20)
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0)
for label in name.split('.'):
    q += bytes([len(label)]) + label.encode()
q += b'\\x00\\x00\\x01\\x00\\x01'
try:
    s.sendto(q, (server, port))
    data, src = s.recvfrom(4096)
    print(json.dumps({'id': data[0] << 8 | data[1], 'rcode': data[3] & 15, 'ancount': data[6] << 8 | data[7],
                      'last4': '.'.join(str(b) for b in data[-4:]), 'source': [src[0], src[1]]}))
except Exception as e:
    print(json.dumps({'error': type(e).__name__, 'message': str(e)}))
finally:
    s.close()
`;

export interface PySocksResult {
  id?: number; rcode?: number; ancount?: number; last4?: string; source?: [string, number];
  error?: string; message?: string;
}

/** One DNS query for `name` through the proxy with Debian's PySocks (SOCK_DGRAM → UDP ASSOCIATE). */
export async function pysocksDnsQuery(
  socksPort: number, server: string, port: number, name: string,
  opts: { auth?: { username: string; password: string }; timeoutS?: number } = {},
): Promise<PySocksResult> {
  const args = ['-c', PYSOCKS_QUERY, String(socksPort), server, String(port), name];
  if (opts.auth || opts.timeoutS) args.push(opts.auth?.username ?? '', opts.auth?.password ?? '');
  if (opts.timeoutS) args.push(String(opts.timeoutS));
  const r = await run('/usr/bin/python3', args, { timeoutMs: 60_000 });
  const line = r.stdout.toString().trim();
  if (!line.startsWith('{')) throw new Error(`python3 PySocks failed (${r.code}): ${r.stderr}${line}`);
  return JSON.parse(line) as PySocksResult;
}

const PYSOCKS_EXCHANGE = `
import json, socket, sys
import socks
proxy_port, server, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
payloads = [bytes.fromhex(p) for p in sys.argv[4].split(',')]
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, '127.0.0.1', proxy_port)
s.settimeout(20)
out = []
try:
    for p in payloads:
        s.sendto(p, (server, port))
        data, src = s.recvfrom(65535)
        out.append({'payload': data.hex(), 'source': [src[0], src[1]]})
    print(json.dumps({'answers': out}))
except Exception as e:
    print(json.dumps({'answers': out, 'error': type(e).__name__, 'message': str(e)}))
finally:
    s.close()
`;

/** Sends each payload to host:port through the proxy with PySocks and waits for one answer after each. */
export async function pysocksExchange(
  socksPort: number, server: string, port: number, payloads: Buffer[],
): Promise<{ answers: Array<{ payload: string; source: [string, number] }>; error?: string; message?: string }> {
  const args = ['-c', PYSOCKS_EXCHANGE, String(socksPort), server, String(port), payloads.map((p) => p.toString('hex')).join(',')];
  const r = await run('/usr/bin/python3', args, { timeoutMs: 60_000 });
  const line = r.stdout.toString().trim();
  if (!line.startsWith('{')) throw new Error(`python3 PySocks failed (${r.code}): ${r.stderr}${line}`);
  return JSON.parse(line) as never;
}
