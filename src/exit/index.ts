// Exit peer: attaches to a blind relay room, terminates clients' end-to-end sessions, opens their TCP streams.
export { ExitPeer, BACKOFF_MAX_MS, BACKOFF_MIN_MS, type ExitPeerOptions } from './exit-peer';
export {
  startExitStream,
  classifyConnectError,
  classifyLookupError,
  defaultLookup,
  DEFAULT_CONNECT_TIMEOUT_MS,
  FORBIDDEN_MESSAGE,
  type ExitConnectOptions,
  type LookupFn,
} from './connect';
