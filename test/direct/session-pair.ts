// Two real SecureLinks (sequenced records) of one relay-mode session in this process, for the direct path tests: the
// "room" between them is an in-memory wire the test can watch; the exit end echoes streams and UDP. Tests wait on
// events: every room message, log line and stream chunk rechecks what a test awaits (until()).
import { afterEach } from 'vitest';
import { createChannel } from '../../src/crypto/record';
import { nodeCrypto } from '../../src/crypto/node';
import { SecureLink, type MessageSocket } from '../../src/link/secure-link';
import { Capability } from '../../src/protocol/datagram-types';
import type { SignalKindValue } from '../../src/protocol/signal-codec';
import { deriveDatagramKeys, type DatagramKeys } from '../../src/direct/datagram-records';
import { deriveTcpPathKey } from '../../src/direct/tcp-hello';
import { echoStream, echoThrough } from '../link/echo-stream';

const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const SID = new Uint8Array(32);

const waiters = new Set<() => void>();
export const notify = (): void => {
  for (const check of [...waiters]) check();
};
/**
 * Resolves once `cond` holds, checked at every notify() (a delivered message, a log line). State that changes with
 * neither (a path's status flipping after its last log line) is caught by a cheap re-check every 50 ms as well.
 */
export function until(cond: () => boolean): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!cond()) return;
      waiters.delete(check);
      clearInterval(timer);
      resolve();
    };
    const timer = setInterval(check, 50);
    waiters.add(check);
  });
}

/** One direction of the room: delivers on a later turn and counts what it carried. */
export class RoomWire {
  bytes = 0;
  constructor(private readonly deliver: (m: Uint8Array) => void) {}
  send(m: Uint8Array): void {
    this.bytes += m.length;
    const copy = m.slice();
    setImmediate(() => (this.deliver(copy), notify()));
  }
}

export interface SessionPair {
  client: SecureLink;
  server: SecureLink;
  up: RoomWire;
  down: RoomWire;
  logs: string[];
  log(who: string): (line: string) => void;
  clientKeys: { datagram: DatagramKeys; tcpPath: Uint8Array };
  serverKeys: { datagram: DatagramKeys; tcpPath: Uint8Array };
}

/** `capabilities`: what each end announces; `onSignal`: SIGNAL frames from the peer, per end. */
export async function sessionPair(opts: {
  capabilities: number;
  clientSignal: (kind: SignalKindValue, text: string) => void;
  serverSignal: (kind: SignalKindValue, text: string) => void;
}): Promise<SessionPair> {
  const c = await createChannel(nodeCrypto, { suite: 'aes-256-gcm', sendKey: K1, recvKey: K2, sessionId: SID });
  const s = await createChannel(nodeCrypto, { suite: 'aes-256-gcm', sendKey: K2, recvKey: K1, sessionId: SID });
  const logs: string[] = [];
  const log = (who: string) => (line: string) => (logs.push(`${who}: ${line}`), notify());
  let client: SecureLink | null = null;
  let server: SecureLink | null = null;
  const up = new RoomWire((m) => server!.receive(m));
  const down = new RoomWire((m) => client!.receive(m));
  const socket = (wire: RoomWire): MessageSocket => ({ send: (d) => wire.send(d), close: () => {} });
  server = new SecureLink(socket(down), s.sealer, s.opener, {
    role: 'server', sequencedRecords: true, peerAnnouncesCapabilities: true, capabilities: opts.capabilities | Capability.UDP,
    scheduleFlush: (fn) => void setImmediate(fn), onStream: echoStream,
    onDatagramFlow: (flow) => void (flow.onDatagram = (source, payload) => void flow.send(source, payload)), // a UDP echo
    onSignal: opts.serverSignal,
  });
  client = new SecureLink(socket(up), c.sealer, c.opener, {
    role: 'client', sequencedRecords: true, peerAnnouncesCapabilities: true, capabilities: opts.capabilities,
    scheduleFlush: (fn) => void setImmediate(fn),
    onSignal: opts.clientSignal,
  });
  const keys = { suite: 'aes-256-gcm' as const, sendKey: K1, recvKey: K2 };
  return {
    client, server, up, down, logs, log,
    clientKeys: { datagram: await deriveDatagramKeys(nodeCrypto, keys), tcpPath: await deriveTcpPathKey(nodeCrypto, K1) },
    serverKeys: { datagram: await deriveDatagramKeys(nodeCrypto, { ...keys, sendKey: K2, recvKey: K1 }), tcpPath: await deriveTcpPathKey(nodeCrypto, K1) },
  };
}

/** Echoes `total` bytes through one stream of `link` in 64 KiB writes; `atOffset` may pause the writer. */
export function echo(link: SecureLink, total: number, atOffset?: (offset: number) => Promise<void>): Promise<void> {
  return echoThrough(link, total, { chunk: 64 * 1024, atOffset, onChunk: notify });
}

/** Ends pushed here are closed after each test: both direct paths, then both links. */
export function closedAfterEach<E extends { client: SecureLink; server: SecureLink; clientDirect: { close(): void }; serverDirect: { close(): void } }>(): E[] {
  const opened: E[] = [];
  afterEach(() => {
    for (const e of opened.splice(0)) {
      e.clientDirect.close();
      e.serverDirect.close();
      e.client.socketClosed('test over');
      e.server.socketClosed('test over');
    }
  });
  return opened;
}
