// Process-wide settings for the long-running data-path commands (zks socks5 / p2p-client / exit-peer / start,
// zksd up), applied once before they start. Both fix what a process sees after it once held many connections
// (measured in `npm run bench`: the client's CPU per GB doubled after its 1 000 idle streams were closed):
// - malloc: glibc's dynamic thresholds then trimmed the heap top after every burst and re-faulted ~300 000 fresh
//   pages per GB carried (src/native/datapath.ts);
// - V8: its old-generation limit, recomputed from a ~10 MB heap, left ~8 MB of headroom, which the socket and
//   WebSocket read buffers (external memory, 2 bytes per byte carried) used up every ~30 ms: a major GC 30 times
//   a second. A fixed growing factor of 4 — V8's own upper bound, which it picks when GC is cheap — gives the
//   same heap ~4x room; the live heap of these processes is small, so this costs little memory.
import { setFlagsFromString } from 'node:v8';
import { tuneMallocForThroughput } from '../native/datapath';

/** V8's heap growing factor is 1 + this / 100. */
const HEAP_GROWING_PERCENT = 300;

let applied = false;

export function tuneProcessForThroughput(): void {
  if (applied) return;
  applied = true;
  tuneMallocForThroughput();
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/**
 * Runs `collect` with V8's own heap growing rule (memory reports): with the fixed factor, V8's memory-reducing
 * collections left ~3 KiB per idle SOCKS5 UDP association in heapUsed that a heap snapshot shows is not live.
 */
export async function withDefaultHeapGrowing<T>(collect: () => Promise<T>): Promise<T> {
  if (!applied) return collect();
  setFlagsFromString('--heap-growing-percent=0');
  try {
    return await collect();
  } finally {
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
}
