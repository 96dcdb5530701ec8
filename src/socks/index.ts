// Public surface of the local proxy front (SOCKS5 + HTTP CONNECT on one port). See server.ts.
export {
  createProxyServer, checkListenPolicy, httpErrorResponse, httpStatusFor,
  type ConnectOutcome, type ProxyRequestInfo, type ProxyServerOptions,
} from './server';
export { Socks5Error, HttpProxyError } from './errors';
export { Socks5Parser, Socks5Command, Socks5Method, Socks5Reply, type Socks5Event } from './socks5-parser';
export { HttpConnectParser, MAX_HEAD_BYTES, parseBasicCredentials, type HttpConnectEvent } from './http-connect-parser';
export { isLoopbackHost } from './listen-policy';
