// What the relay's answers mean to a client: the URL of a room or a tunnel agent on a relay, a refused upgrade (by
// HTTP status) and a room's notice as the ZksError the user sees.

import { encodeBase64Url } from '../crypto/handshake';
import { ZksError } from '../errors/zks-error';
import { ROOM_ERROR_CLOSE_CODE, ROOM_PATH_PREFIX, RoomRefusedError, type RoomControl } from '../protocol/room-wire';

export function pathUrl(base: string, path: string): string {
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${path}`;
  return u.toString();
}

export function roomUrl(base: string, roomId: Uint8Array): string {
  return pathUrl(base, `${ROOM_PATH_PREFIX}${encodeBase64Url(roomId)}`);
}

/** The error a room notice stands for: offline exit, a room limit this client hit (with its close code), or a lost session. */
export function roomNoticeError(control: RoomControl): ZksError {
  if (control.t !== 'error') return new ZksError('ZKS_ERR_CONNECTION_LOST', 'unexpected room control message');
  const text = `relay room: ${control.message}`;
  switch (control.code) {
    case 'EXIT_OFFLINE':
      return new ZksError('ZKS_ERR_EXIT_OFFLINE', text);
    case 'MESSAGE_TOO_LARGE': case 'RATE_LIMITED': case 'ROOM_FULL': {
      const code = ROOM_ERROR_CLOSE_CODE[control.code];
      return new RoomRefusedError(code, `${text} (${control.code}, close ${code})`);
    }
    default:
      return new ZksError('ZKS_ERR_CONNECTION_LOST', text);
  }
}

export function httpRefusal(status: number, room: boolean): ZksError {
  if (status === 401) {
    return new ZksError('ZKS_ERR_AUTH', 'the relay refused our key proof: check --key (and that this clock is within 10 minutes of real time)');
  }
  if (status === 503 && room) {
    return new ZksError('ZKS_ERR_EXIT_OFFLINE', 'the exit peer of this room is offline: start `zks exit-peer` with the same --room secret');
  }
  return new ZksError('ZKS_ERR_RELAY_UNREACHABLE', `the relay answered HTTP ${status} instead of a WebSocket: check the --relay URL`);
}
