// Small socket helpers shared by test folders (no heavy imports, so any suite may use them).
import { createServer, type AddressInfo } from 'node:net';

/** A loopback port that was free a moment ago (nothing listens on it: connects are refused). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
