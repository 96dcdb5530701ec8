// A tiny SOCKS5 CONNECT client (RFC 1928): no-auth method, IPv4 targets only, one request per socket.
// Sends the greeting, waits for the method choice, sends CONNECT, waits for the reply; the promise resolves
// with the socket once the reply is in (bytes that arrived after the reply are unshifted back onto it).

import { connect, type Socket } from 'node:net';

export class Socks5ReplyError extends Error {
  constructor(readonly replyCode: number) {
    super(`SOCKS5 reply ${replyCode}`);
  }
}

const enum Phase {
  METHOD, // expect VER, METHOD (2 bytes)
  REPLY, // expect VER, REP, RSV, ATYP, BND.ADDR, BND.PORT
}

function replyLength(buf: Buffer): number {
  if (buf.length < 5) return Infinity;
  switch (buf[3]) {
    case 0x01: return 4 + 4 + 2;
    case 0x04: return 4 + 16 + 2;
    case 0x03: return 4 + 1 + buf[4] + 2;
    default: return -1;
  }
}

export function socks5Connect(proxyPort: number, ipv4: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  const octets = ipv4.split('.').map(Number);
  const request = Buffer.from([0x05, 0x01, 0x00, 0x01, ...octets, port >> 8, port & 0xff]);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: proxyPort });
    socket.setNoDelay(true);
    let phase = Phase.METHOD;
    let buf: Buffer = Buffer.alloc(0); // handshake only: a few bytes, never the data path
    const timer = setTimeout(() => fail(new Error('SOCKS5 handshake timed out')), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (phase === Phase.METHOD) {
        if (buf.length < 2) return;
        if (buf[0] !== 0x05 || buf[1] !== 0x00) return fail(new Error(`SOCKS5 method refused (${buf[1]})`));
        buf = buf.subarray(2);
        phase = Phase.REPLY;
        socket.write(request);
      }
      const need = replyLength(buf);
      if (need < 0) return fail(new Error('SOCKS5 reply with an unknown address type'));
      if (buf.length < need) return;
      if (buf[1] !== 0x00) return fail(new Socks5ReplyError(buf[1]));
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.removeListener('close', onClose);
      socket.pause();
      if (buf.length > need) socket.unshift(buf.subarray(need));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', fail);
    const onClose = () => fail(new Error('SOCKS5 proxy closed the connection'));
    socket.once('close', onClose);
    socket.once('connect', () => socket.write(Buffer.from([0x05, 0x01, 0x00])));
  });
}
