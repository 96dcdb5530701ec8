// The direct TCP path's set-up bytes (PROTOCOL.md §3.7): the exit peer's TCP_ANSWER text (a fresh nonce and the
// addresses it listens on) and the two messages that open a TCP connection — the client's PATH_HELLO and the exit's
// PATH_WELCOME — each an HMAC under a key only the two ends of this session hold, so a connection from anyone else
// (or a replay of an earlier attempt's hello) is closed before a single record is read from it. Pure: no I/O.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { hkdfExpand } from '../crypto/hkdf';
import type { CryptoBackend } from '../crypto/types';

export const TCP_NONCE_SIZE = 16;
/** "ZKS1-TCP": a stranger's protocol (HTTP, TLS, a port scanner) fails here before any MAC is computed. */
export const PATH_HELLO_MAGIC = new TextEncoder().encode('ZKS1-TCP');
/** magic || client nonce || HMAC-SHA256(key, "hello" || exit nonce || client nonce). */
export const PATH_HELLO_SIZE = PATH_HELLO_MAGIC.length + TCP_NONCE_SIZE + 32;
/** HMAC-SHA256(key, "welcome" || exit nonce || client nonce). */
export const PATH_WELCOME_SIZE = 32;
/** Addresses one TCP_ANSWER may list; more are ignored by the client. */
export const MAX_TCP_CANDIDATES = 8;

const INFO = new TextEncoder().encode('zks1 tcp path');
const HELLO_LABEL = Buffer.from('hello');
const WELCOME_LABEL = Buffer.from('welcome');

export interface TcpCandidate {
  address: string;
  port: number;
}

export interface TcpAnswer {
  nonce: Uint8Array;
  candidates: TcpCandidate[];
}

/** The path key from the session's first record key client → exit (call before it is wiped). */
export function deriveTcpPathKey(b: CryptoBackend, clientToExitKey: Uint8Array): Promise<Uint8Array> {
  return hkdfExpand(b, clientToExitKey, INFO, 32);
}

function mac(key: Uint8Array, label: Buffer, exitNonce: Uint8Array, clientNonce: Uint8Array): Buffer {
  return createHmac('sha256', key).update(label).update(exitNonce).update(clientNonce).digest();
}

export function pathHello(key: Uint8Array, exitNonce: Uint8Array, clientNonce: Uint8Array): Uint8Array {
  const m = new Uint8Array(PATH_HELLO_SIZE);
  m.set(PATH_HELLO_MAGIC, 0);
  m.set(clientNonce, PATH_HELLO_MAGIC.length);
  m.set(mac(key, HELLO_LABEL, exitNonce, clientNonce), PATH_HELLO_MAGIC.length + TCP_NONCE_SIZE);
  return m;
}

/** The client nonce of a hello that starts with the magic; null when it does not. */
export function helloClientNonce(hello: Uint8Array): Uint8Array | null {
  if (hello.length < PATH_HELLO_SIZE) return null;
  for (let i = 0; i < PATH_HELLO_MAGIC.length; i++) if (hello[i] !== PATH_HELLO_MAGIC[i]) return null;
  return hello.subarray(PATH_HELLO_MAGIC.length, PATH_HELLO_MAGIC.length + TCP_NONCE_SIZE);
}

/** Whether `hello` (PATH_HELLO_SIZE bytes) was made with `key` for the attempt whose nonce is `exitNonce`. */
export function helloValid(key: Uint8Array, exitNonce: Uint8Array, hello: Uint8Array): boolean {
  const clientNonce = helloClientNonce(hello);
  if (!clientNonce) return false;
  const got = hello.subarray(PATH_HELLO_MAGIC.length + TCP_NONCE_SIZE, PATH_HELLO_SIZE);
  return timingSafeEqual(got, mac(key, HELLO_LABEL, exitNonce, clientNonce));
}

export function pathWelcome(key: Uint8Array, exitNonce: Uint8Array, clientNonce: Uint8Array): Uint8Array {
  return mac(key, WELCOME_LABEL, exitNonce, clientNonce);
}

export function welcomeValid(key: Uint8Array, exitNonce: Uint8Array, clientNonce: Uint8Array, welcome: Uint8Array): boolean {
  return welcome.length === PATH_WELCOME_SIZE && timingSafeEqual(welcome, pathWelcome(key, exitNonce, clientNonce));
}

const hostPort = (c: TcpCandidate): string => `${c.address} ${c.port}`;

/** TCP_ANSWER text: the nonce in lower-case hex, then one `ADDRESS PORT` line per candidate. */
export function formatTcpAnswer(a: TcpAnswer): string {
  return [Buffer.from(a.nonce).toString('hex'), ...a.candidates.map(hostPort)].join('\n');
}

/** Parses a TCP_ANSWER text strictly (a string says what is wrong); candidates past MAX_TCP_CANDIDATES are dropped. */
export function parseTcpAnswer(text: string): TcpAnswer | string {
  const lines = text.split('\n');
  const bad = (why: string) => `TCP_ANSWER: ${why}`;
  if (!/^[0-9a-f]{32}$/.test(lines[0]!)) return bad('the first line is not a 16-byte nonce in lower-case hex');
  if (lines.length < 2) return bad('no address');
  const candidates: TcpCandidate[] = [];
  for (const line of lines.slice(1, 1 + MAX_TCP_CANDIDATES)) {
    const m = /^(\S+) (\d{1,5})$/.exec(line);
    const port = Number(m?.[2]);
    if (!m || isIP(m[1]!) === 0 || port < 1 || port > 65535) return bad(`"${line.slice(0, 80)}" is not ADDRESS PORT`);
    candidates.push({ address: m[1]!, port });
  }
  return { nonce: Uint8Array.from(Buffer.from(lines[0]!, 'hex')), candidates };
}
