// IPv6 literal targets through the real Worker (direct mode: workerd's connect() needs the literal bracketed) and
// through the room and exit peer (relay mode): an origin on [::1] answers through the SOCKS5 front.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startStack } from './harness';

let origin: Server;
let port = 0;
beforeAll(async () => {
  origin = createServer((_q, r) => r.end('hello over IPv6\n'));
  await new Promise<void>((r) => origin.listen(0, '::1', r));
  port = (origin.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => origin.close(() => r())));

describe.each(['direct', 'relay'] as const)('IPv6 literal target (%s mode)', (mode) => {
  it('reaches http://[::1]:port/ through the tunnel', async () => {
    const stack = await startStack({ mode });
    try {
      const r = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${stack.socks.port}`, `http://[::1]:${port}/`]);
      expect(r.stderr).toBe('');
      expect(r.stdout.toString()).toBe('hello over IPv6\n');
    } finally {
      await stack.close();
    }
  });
});
