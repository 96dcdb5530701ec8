// Wire-level constants of ZKS protocol v1 (docs/PROTOCOL.md). Plain objects instead of TS enums so that
// esbuild/tsx strip types without surprises and the Worker bundle stays tiny.

export const PROTOCOL_VERSION = 1;

/** Frame header: type u8 | stream u32 | length u32. */
export const FRAME_HEADER_SIZE = 9;
/** Largest payload one frame may carry. Larger writes are split into several DATA frames. */
export const MAX_FRAME_PAYLOAD = 256 * 1024;
/** Largest decrypted record (a batch of frames). Far below Workers' 32 MiB WebSocket message cap. */
export const MAX_RECORD_SIZE = 1024 * 1024;
/** A sender flushes its batch once it holds this many bytes, without waiting for the batch timer. */
export const RECORD_FLUSH_THRESHOLD = 128 * 1024;

/** Default per-stream receive window (credit) each side grants at stream open. */
export const DEFAULT_STREAM_WINDOW = 2 * 1024 * 1024;
/** Smallest window a peer may announce; tiny windows would turn every byte into a WINDOW_UPDATE. */
export const MIN_STREAM_WINDOW = 16 * 1024;
/** Largest window a peer may announce or accumulate (keeps u32 arithmetic safe). */
export const MAX_STREAM_WINDOW = 64 * 1024 * 1024;
/**
 * A receiver returns credit at the latest once it has consumed this much (or a quarter of its window, if less):
 * a sender may honour less credit than it was granted (the Worker does), and must honour at least this much.
 */
export const MAX_CREDIT_BATCH = 512 * 1024;

export const FrameType = {
  CONNECT: 0x01,
  CONNECT_RESULT: 0x02,
  DATA: 0x03,
  WINDOW_UPDATE: 0x04,
  FIN: 0x05,
  RST: 0x06,
  PING: 0x07,
  PONG: 0x08,
  GOAWAY: 0x09,
  /** Which optional frames the sender handles (§3.3); only to a peer that announced it speaks them (§2.2). */
  CAPABILITIES: 0x0a,
  /** Sequenced records only (§2.5a): the next record sequence number the sender expects, i.e. all below arrived. */
  PATH_ACK: 0x0b,
  /** WebRTC signalling for the direct path (§3.6), behind Capability.DIRECT_PATH on both sides. */
  SIGNAL: 0x0c,
  /** Optional, behind Capability.UDP (§3.4). */
  UDP_DATAGRAM: 0x10,
  // Reserved for later capabilities; a v1 peer rejects them as unsupported.
  REVERSE_OPEN: 0x11,
  /** Optional, behind Capability.ICMP_ECHO (§3.5). */
  ICMP_ECHO: 0x12,
  RESUME: 0x13,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export const RESERVED_FRAME_TYPES: ReadonlySet<number> = new Set([
  FrameType.REVERSE_OPEN,
  FrameType.RESUME,
]);

/** Outcome of a CONNECT, carried in CONNECT_RESULT. Maps 1:1 onto SOCKS5 reply codes (see socks/). */
export const ConnectResult = {
  OK: 0,
  GENERAL_FAILURE: 1,
  FORBIDDEN: 2,
  NETWORK_UNREACHABLE: 3,
  HOST_UNREACHABLE: 4,
  REFUSED: 5,
  TIMEOUT: 6,
} as const;
export type ConnectResultCode = (typeof ConnectResult)[keyof typeof ConnectResult];
export const CONNECT_RESULT_NAMES: Record<number, string> = {
  0: 'ok',
  1: 'general failure',
  2: 'forbidden',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'timeout',
};

/** Why a stream was reset (RST) or a session ended (GOAWAY). */
export const ResetCode = {
  CANCEL: 0,
  PROTOCOL: 1,
  FLOW_CONTROL: 2,
  REMOTE_ERROR: 3,
  CONNECTION_LOST: 4,
  INTERNAL: 5,
  SHUTDOWN: 6,
} as const;
export type ResetCodeValue = (typeof ResetCode)[keyof typeof ResetCode];

/** Address types inside CONNECT: the same numbers SOCKS5 uses (RFC 1928 §5). */
export const AddressType = { IPV4: 1, DOMAIN: 3, IPV6: 4 } as const;
export type AddressTypeValue = (typeof AddressType)[keyof typeof AddressType];

/** WebSocket close codes (4000-4999 are application-defined, RFC 6455 §7.4.2). */
export const CloseCode = {
  NORMAL: 1000,
  PROTOCOL_ERROR: 4001,
  HANDSHAKE_FAILED: 4002,
  DECRYPT_FAILED: 4003,
  IDLE_TIMEOUT: 4004,
  SHUTDOWN: 4005,
} as const;
