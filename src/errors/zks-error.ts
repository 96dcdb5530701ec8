// The base error of every layer. Callers branch on `code` (stable, documented in docs/PROTOCOL.md), never on
// message text. This module sits below every folder of src/ (protocol included) and imports nothing.

export type ZksErrorCode =
  | 'ZKS_ERR_MALFORMED_FRAME'
  | 'ZKS_ERR_FRAME_TOO_LARGE'
  | 'ZKS_ERR_UNKNOWN_FRAME'
  | 'ZKS_ERR_UNSUPPORTED_FRAME'
  | 'ZKS_ERR_BAD_ADDRESS'
  | 'ZKS_ERR_BAD_STREAM'
  | 'ZKS_ERR_FLOW_CONTROL'
  | 'ZKS_ERR_HANDSHAKE'
  | 'ZKS_ERR_VERSION'
  | 'ZKS_ERR_DECRYPT'
  | 'ZKS_ERR_SEAL'
  | 'ZKS_ERR_NONCE_EXHAUSTED'
  | 'ZKS_ERR_SEQUENCE'
  | 'ZKS_ERR_AUTH'
  | 'ZKS_ERR_SOCKS'
  | 'ZKS_ERR_HTTP_PROXY'
  | 'ZKS_ERR_CONFIG'
  | 'ZKS_ERR_RELAY_UNREACHABLE'
  | 'ZKS_ERR_EXIT_OFFLINE'
  | 'ZKS_ERR_ROOM_REFUSED'
  | 'ZKS_ERR_CONNECTION_LOST'
  | 'ZKS_ERR_STREAM_RESET'
  | 'ZKS_ERR_TIMEOUT'
  | 'ZKS_ERR_UNSUPPORTED'
  | 'ZKS_ERR_UDP'
  | 'ZKS_ERR_MALFORMED_PACKET'
  | 'ZKS_ERR_TUN'
  | 'ZKS_ERR_SYSTEM'
  | 'ZKS_ERR_CONTROL_REQUEST'
  | 'ZKS_ERR_CONTROL_VERSION'
  | 'ZKS_ERR_CONTROL_FORBIDDEN'
  | 'ZKS_ERR_NOT_RUNNING'
  | 'ZKS_ERR_ALREADY_RUNNING'
  | 'ZKS_ERR_TUNNEL_TAKEN'
  | 'ZKS_ERR_HTTP_HEAD'
  | 'ZKS_ERR_RESUME_REFUSED'
  | 'ZKS_ERR_INTERNAL';

export class ZksError extends Error {
  readonly code: ZksErrorCode;
  constructor(code: ZksErrorCode, message: string) {
    super(message);
    this.name = 'ZksError';
    this.code = code;
  }
}
