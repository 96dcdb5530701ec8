// Child-process entry: runs one fixture Worker (default test/fixtures/worker/bare-pipe.ts) in workerd through
// startDevWorker, on 127.0.0.1 only, and prints `fixture ready on ws://127.0.0.1:PORT`. Its own process so
// Miniflare's host side never shares a CPU account with the bench client. The key binding is unused.
// Usage: node --import tsx bench/lib/serve-fixture.ts [entry.ts]

import { fileURLToPath } from 'node:url';
import { startDevWorker } from '../../src/cli/dev-worker';

const entry = process.argv[2] ?? fileURLToPath(new URL('../../test/fixtures/worker/bare-pipe.ts', import.meta.url));
const worker = await startDevWorker({ entry, key: 'unused', host: '127.0.0.1', port: 0 });
console.log(`fixture ready on ${worker.url}`);
const stop = () => void worker.dispose().finally(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const parent = process.ppid;
setInterval(() => process.ppid !== parent && stop(), 1_000).unref(); // orphaned: the bench died
