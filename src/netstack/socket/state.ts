// The states of a TCP connection (RFC 9293 §3.3.2), plus SYN_PENDING: a SYN seen but not yet answered while the
// tunnel's CONNECT is in flight. The predicates say which states still send or receive segment text; the state
// machine itself (transitions, RFC section per arm) is in tcp.ts.

export const TcpState = {
  /** SYN received, waiting for the application's accept() (the tunnel's CONNECT) or refuse(). Nothing sent yet. */
  SYN_PENDING: 'SYN_PENDING',
  SYN_RECEIVED: 'SYN_RECEIVED',
  ESTABLISHED: 'ESTABLISHED',
  FIN_WAIT_1: 'FIN_WAIT_1',
  FIN_WAIT_2: 'FIN_WAIT_2',
  CLOSE_WAIT: 'CLOSE_WAIT',
  CLOSING: 'CLOSING',
  LAST_ACK: 'LAST_ACK',
  TIME_WAIT: 'TIME_WAIT',
  CLOSED: 'CLOSED',
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

/** States in which our data (and FIN) may still be sent or resent. */
export function sendsData(st: TcpState): boolean {
  switch (st) {
    case TcpState.ESTABLISHED:
    case TcpState.CLOSE_WAIT:
    case TcpState.FIN_WAIT_1:
    case TcpState.CLOSING:
    case TcpState.LAST_ACK:
      return true;
    default:
      return false;
  }
}

/** States that still accept segment text (§3.10.7.4 seventh). */
export function receivesData(st: TcpState): boolean {
  return st === TcpState.ESTABLISHED || st === TcpState.FIN_WAIT_1 || st === TcpState.FIN_WAIT_2;
}
