// Public surface of the local proxy front (SOCKS5 + HTTP CONNECT on one port). See server.ts.
export {
  createProxyServer, checkListenPolicy, httpErrorResponse, httpStatusFor,
  type ConnectOutcome, type ProxyRequestInfo, type ProxyServerOptions, type UdpAssociateOutcome,
} from './server';
export { newSocksUdpStats, SocksUdpPolicyDrop, type SocksUdpDropKey, type SocksUdpStats } from './udp-association';
export { encodeUdpDatagram, parseUdpDatagram, type SocksUdpDatagram } from './udp-header';
export { Socks5Error, HttpProxyError, SocksUdpDrop, SocksUdpError, type SocksUdpDropReason } from './errors';
export { Socks5Parser, Socks5Command, Socks5Method, Socks5Reply, type Socks5Event } from './socks5-parser';
export { HttpConnectParser, MAX_HEAD_BYTES, parseBasicCredentials, type HttpConnectEvent } from './http-connect-parser';
export { isLoopbackHost } from './listen-policy';
