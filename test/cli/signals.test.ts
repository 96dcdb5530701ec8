// A command signalled the moment it says ready must hear the signal: taking the termination signals over from
// the libraries (Miniflare) used to drop one that had arrived but not yet been read (a `zks start` ran on, idle,
// after a SIGTERM — twice in CI).
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { run } from '../integration/harness';

const FIXTURE = fileURLToPath(new URL('./fixtures/signal-takeover.ts', import.meta.url));

describe('takeOverSignals', () => {
  it('a signal that arrived before the takeover reaches our handler, not the library\'s', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', FIXTURE], { timeoutMs: 30_000 });
    expect(r.stderr.toString()).toBe('');
    expect(JSON.parse(r.stdout.toString())).toEqual(['ours:SIGTERM']);
  });
});
