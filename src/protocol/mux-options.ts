// What a Mux is given (mux.ts): the record transport under it and its options. Types only, apart from the session
// logic, so that every layer that makes a Mux (Worker, client, exit, tests) reads its contract in one place.

import type { ZksError } from '../errors/zks-error';
import type { RecordRoom } from './batch';
import type { MuxStream } from './stream';
import type { Target } from './address';
import type { DatagramPortOptions } from './datagrams';
import type { DatagramActivity } from './delay-pacer';
import type { SignalKindValue } from './signal-codec';
import type { SharedSendBudget } from './unacked-data';

export interface MuxTransport {
  /** Seal and send one record; records must leave in call order. */
  sendRecord(record: Uint8Array): void;
  /** Close the underlying connection (after the last record was handed to sendRecord). */
  close(code: number, reason: string): void;
  /** Bytes handed over and not yet sent (a WebSocket's bufferedAmount): datagrams are dropped above a limit. */
  backlog?(): number;
  /**
   * Free bytes the transport wants before and after every record it is given (to seal in place and frame it
   * without a copy): records are then views into buffers with that room around them.
   */
  recordRoom?: RecordRoom;
  /**
   * A record of datagram frames only (UDP_DATAGRAM, ICMP_ECHO): true when the transport sent it its own way (a
   * direct path's unreliable channel, PROTOCOL.md §3.6; the record is then the caller's again), false to have it
   * go through sendRecord like any other.
   */
  sendDatagramRecord?(record: Uint8Array): boolean;
}

export interface MuxOptions {
  role: 'client' | 'server';
  transport: MuxTransport;
  /** Receive window granted to each stream (default 1 MiB). */
  window?: number;
  /** Send credit honoured per stream, whatever the peer grants (at least MAX_CREDIT_BATCH); default: all of it. */
  maxSendCredit?: number;
  /** DATA bytes that may be sent but not yet acknowledged by a PONG before streams stop being writable. */
  maxUnackedBytes?: number;
  /** With maxUnackedBytes: a limit on unacknowledged DATA shared with other sessions. */
  sharedBudget?: SharedSendBudget;
  /**
   * Limit unacknowledged DATA by the queueing delay it causes (delay-pacer.ts), under maxUnackedBytes if that is
   * set too. For senders of bulk data whose link also carries latency-sensitive frames.
   */
  paceByDelay?: boolean;
  /** With paceByDelay: datagram activity shared with the links whose queues this one shares (default: its own). */
  datagramActivity?: DatagramActivity;
  /** Called for every CONNECT from the peer; the handler must eventually accept() or reject() the stream. */
  onStream?: (stream: MuxStream, target: Target) => void;
  /** Called once when the session ends; err is null after close() without error. */
  onClose?: (err: ZksError | null) => void;
  scheduleFlush?: (fn: () => void) => void;
  now?: () => number;
  /** Observability hooks (the link layer publishes them): a stream was opened by either side / is gone. */
  onStreamOpen?: (stream: MuxStream) => void;
  onStreamClose?: (stream: MuxStream, err: ZksError | null) => void;
  /** Capability bits this side serves (§3.3): an exit peer relays UDP and answers echoes. Default 0. */
  capabilities?: number;
  /** The handshake said the peer speaks CAPABILITIES (§2.2): both sides send theirs as their first frame. */
  peerAnnouncesCapabilities?: boolean;
  /** Unsent transport bytes above which datagrams are dropped (default DEFAULT_DATAGRAM_BACKLOG). */
  maxDatagramBacklog?: number;
  /** Sequenced records (§2.5a): the peer's PATH_ACKs go here; without it a PATH_ACK is a protocol error. */
  onPathAck?: (next: number) => void;
  /** Direct path signalling (§3.6), on a side that announced Capability.DIRECT_PATH; without it SIGNAL is a protocol error. */
  onSignal?: (kind: SignalKindValue, text: string) => void;
  onDatagramFlow?: DatagramPortOptions['onFlow'];
  onEcho?: DatagramPortOptions['onEcho'];
}
