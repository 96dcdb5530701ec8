// The SOCKS5 UDP ASSOCIATE cases of socks-udp.test.ts again with node:dgram relay sockets, the fallback when the data
// path addon is not built (forced here with ZKS_UDP_SOCKETS=dgram, also the documented escape hatch).
import { afterAll } from 'vitest';

const previous = process.env.ZKS_UDP_SOCKETS;
process.env.ZKS_UDP_SOCKETS = 'dgram';
afterAll(() => {
  if (previous === undefined) delete process.env.ZKS_UDP_SOCKETS;
  else process.env.ZKS_UDP_SOCKETS = previous;
});
await import('./socks-udp.test');
