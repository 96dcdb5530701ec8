// How a soak driver reaches the traffic server: through a SOCKS5 proxy on 127.0.0.1 (CONNECT, and UDP ASSOCIATE,
// RFC 1928 §7) or straight (inside the zksd client namespace, where the routes lead into zksd's TUN). Both give the
// flows the same two things: a connected TCP socket, and a UDP flow that sends and receives bare payloads.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { socks5Connect, Socks5ReplyError } from '../lib/socks-client';

/** RFC 1928 §6 reply codes. */
const REPLIES: Record<number, string> = {
  1: 'general failure', 2: 'not allowed by ruleset', 3: 'network unreachable', 4: 'host unreachable', 5: 'connection refused',
  6: 'TTL expired', 7: 'command not supported', 8: 'address type not supported',
};

export interface UdpFlow {
  send(payload: Buffer): void;
  onMessage: (payload: Buffer) => void;
  /** Set once the flow cannot carry datagrams any more (the SOCKS5 control connection closed); why. */
  ended: string | null;
  close(): void;
}

export interface Route {
  dial(host: string, port: number, timeoutMs: number): Promise<Socket>;
  udp(host: string, port: number, timeoutMs: number): Promise<UdpFlow>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => (onTimeout(), reject(new Error(`${what} timed out after ${ms} ms`))), ms))),
  ]);
}

/** Straight TCP and UDP: the kernel's routes decide where it goes (zksd's TUN in the topology's client namespace). */
export const directRoute: Route = {
  dial(host, port, timeoutMs) {
    const s = connect({ host, port });
    return withTimeout(new Promise<Socket>((resolve, reject) => {
      s.once('error', reject);
      s.once('connect', () => (s.removeListener('error', reject), s.setNoDelay(true), resolve(s)));
    }), timeoutMs, 'connect', () => s.destroy());
  },
  udp(host, port) {
    const u: UdpSocket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const flow: UdpFlow = {
      send: (payload) => u.send(payload, port, host),
      onMessage: () => {},
      ended: null,
      close: () => u.close(),
    };
    u.on('message', (m) => flow.onMessage(m));
    u.on('error', (e) => (flow.ended ??= `socket error: ${e.message}`));
    return Promise.resolve(flow);
  },
};

/** SOCKS5 on 127.0.0.1:`proxyPort` (IPv4 targets). */
export function socksRoute(proxyPort: number): Route {
  return {
    async dial(host, port, timeoutMs) {
      const s = await socks5Connect(proxyPort, host, port, timeoutMs).catch((e: Error) => {
        throw e instanceof Socks5ReplyError ? new Error(`SOCKS5 reply ${e.replyCode} (${REPLIES[e.replyCode] ?? 'unknown'})`) : e;
      });
      s.on('error', () => {}); // the flow sees the close and reports it
      return s;
    },
    udp: (host, port, timeoutMs) => udpAssociate(proxyPort, host, port, timeoutMs),
  };
}

/** UDP ASSOCIATE: the control connection lives as long as the association; datagrams carry RFC 1928 §7 headers. */
async function udpAssociate(proxyPort: number, host: string, port: number, timeoutMs: number): Promise<UdpFlow> {
  const c = connect({ host: '127.0.0.1', port: proxyPort });
  const relay = await withTimeout(new Promise<{ address: string; port: number }>((resolve, reject) => {
    let buf = Buffer.alloc(0); // the handshake only
    let stage = 0;
    c.once('error', reject);
    c.once('close', () => reject(new Error('SOCKS5 proxy closed the connection')));
    c.on('data', function onData(d: Buffer) {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[1] !== 0) return reject(new Error(`SOCKS5 method refused (${buf[1]})`));
        buf = buf.subarray(2);
        stage = 1;
        c.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
      }
      if (stage === 1 && buf.length >= 10) {
        if (buf[1] !== 0) return reject(new Error(`UDP ASSOCIATE refused (reply ${buf[1]})`));
        if (buf[3] !== 1) return reject(new Error('UDP ASSOCIATE: relay address is not IPv4'));
        c.removeListener('data', onData);
        const address = buf.subarray(4, 8).join('.');
        resolve({ address: address === '0.0.0.0' ? '127.0.0.1' : address, port: buf.readUInt16BE(8) });
      }
    });
    c.once('connect', () => c.write(Buffer.from([5, 1, 0])));
  }), timeoutMs, 'UDP ASSOCIATE', () => c.destroy());
  c.removeAllListeners('error').removeAllListeners('close');
  const header = Buffer.from([0, 0, 0, 1, ...host.split('.').map(Number), port >> 8, port & 0xff]);
  const u = createSocket('udp4');
  await new Promise<void>((resolve) => u.bind(0, '127.0.0.1', () => resolve()));
  const flow: UdpFlow = {
    send: (payload) => u.send([header, payload], relay.port, relay.address),
    onMessage: () => {},
    ended: null,
    close: () => {
      c.destroy();
      u.close();
    },
  };
  u.on('message', (m) => {
    if (m.length < 10 || m[3] !== 1) return; // we only ask for IPv4 targets
    flow.onMessage(m.subarray(10));
  });
  u.on('error', (e) => (flow.ended ??= `socket error: ${e.message}`));
  c.on('error', () => {});
  c.on('close', () => (flow.ended ??= 'the SOCKS5 control connection closed'));
  c.resume();
  return flow;
}
