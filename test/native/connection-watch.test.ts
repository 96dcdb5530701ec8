// The data path addon's ConnectionWatch (addon/connection-watch.cc behind src/native/connection-watch.ts) on real
// loopback TCP connections: taking a connection out of its net.Socket keeps it open (the kernel still has it
// ESTABLISHED), whatever the peer sends is read and discarded, the peer's close or reset is reported once, and
// close() ends the connection for the peer. Under CI the addon must be built (test/native/datapath.test.ts).
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datapathAddon } from '../../src/native/datapath';
import { watchConnectionEnd } from '../../src/native/connection-watch';

const available = datapathAddon() !== null;

/** The kernel's state of the IPv4 loopback connection from local port `local` to `remote` (/proc/net/tcp), or null. */
function tcpState(local: number, remote: number): string | null {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  const names: Record<string, string> = { '01': 'ESTABLISHED', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK' };
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 3 && f[1].endsWith(`:${hex(local)}`) && f[2].endsWith(`:${hex(remote)}`)) return names[f[3]] ?? f[3];
  }
  return null;
}

describe.skipIf(!available)('ConnectionWatch', () => {
  let server: Server;
  const accepted: Socket[] = [];
  const waiting: Array<(s: Socket) => void> = [];

  beforeAll(async () => {
    server = createServer((s) => {
      s.pause();
      const w = waiting.shift();
      if (w) w(s);
      else accepted.push(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A connected pair: `ours` (accepted here, paused) and the peer's socket. */
  async function pair(): Promise<{ ours: Socket; peer: Socket }> {
    const ours = new Promise<Socket>((resolve) => (accepted.length ? resolve(accepted.shift()!) : waiting.push(resolve)));
    const peer = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
    peer.on('error', () => {});
    await new Promise<void>((resolve) => peer.once('connect', resolve));
    return { ours: await ours, peer };
  }

  it('keeps the connection open after its net.Socket is gone; the peer\'s data is discarded and its close reported once', async () => {
    const { ours, peer } = await pair();
    const localPort = ours.localPort!;
    const peerPort = peer.localPort!;
    const ends: number[] = [];
    let ended!: () => void;
    const endedOnce = new Promise<void>((resolve) => (ended = resolve));
    const watch = watchConnectionEnd(ours, (errno) => {
      ends.push(errno);
      ended();
    });
    expect(watch).not.toBeNull();
    expect(ours.destroyed).toBe(true);
    expect(tcpState(localPort, peerPort)).toBe('ESTABLISHED');
    // more than the socket buffers hold: the watch must read to let it through
    await new Promise<void>((resolve, reject) => peer.write(Buffer.alloc(16 << 20, 7), (err) => (err ? reject(err) : resolve())));
    peer.end();
    await endedOnce;
    expect(ends).toEqual([0]);
    await new Promise<void>((resolve) => (peer.readableEnded ? resolve() : peer.once('end', resolve).resume()));
  });

  it('a reset by the peer is reported (ECONNRESET or, once read, the end)', async () => {
    const { ours, peer } = await pair();
    const got = new Promise<number>((resolve) => watchConnectionEnd(ours, resolve));
    peer.write('unread'); // makes the close below a reset
    peer.resetAndDestroy();
    expect([0, 104]).toContain(await got);
  });

  it('close() ends the connection for the peer', async () => {
    const { ours, peer } = await pair();
    const watch = watchConnectionEnd(ours, () => {
      throw new Error('no callback after close()');
    })!;
    const peerEnded = new Promise<void>((resolve) => peer.once('end', resolve));
    peer.resume();
    watch.close();
    await peerEnded;
    watch.close(); // idempotent
  });

  it('when the addon cannot take the fd (dup fails: EBADF here, EMFILE in life) it returns null and leaves the socket alone', () => {
    let destroyed = false;
    const socketWithBadFd = { _handle: { fd: 1 << 20 }, destroyed: false, writableLength: 0, destroy: () => (destroyed = true) };
    expect(watchConnectionEnd(socketWithBadFd as unknown as Socket, () => {})).toBeNull();
    expect(destroyed).toBe(false);
  });

  it('declines a destroyed socket (the caller keeps what it has)', async () => {
    const { ours, peer } = await pair();
    ours.destroy();
    expect(watchConnectionEnd(ours, () => {})).toBeNull();
    peer.destroy();
  });
});
