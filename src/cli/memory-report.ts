// `kill -USR2 PID` on zksd, `zks exit-peer`, `zks socks5` or `zks p2p-client` prints one line with the process's
// memory after a full, memory-reducing garbage collection: what its live state really costs, without the garbage
// a burst of traffic leaves behind (plain RSS counts that until V8 gets round to it). `npm run bench -- udp`
// reads it to measure memory per idle UDP flow. The collector is exposed only when the first report is asked
// for, and a report is a GC pause of a few ms per 10 MB of heap: nothing happens unless someone sends the signal.
// V8 gives back the young generation it grew for a burst (up to 32 MiB) only once allocation has been low for
// ~5 s, as measured between collections: a report right after a burst still counts it; the next report, after
// a few idle seconds, does not (the first report's collection marks where the burst ended).

import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { reduceMemory, trimMalloc } from '../native/datapath';
import { withDefaultHeapGrowing } from './throughput-tuning';

type Gc = (options: { type: 'major' | 'minor'; execution: 'sync' }) => void;

let gc: Gc | null = null;

/** Collections per report at most (it stops earlier once one frees under 64 KiB). */
const MAX_PASSES = 6;
/** How long a report waits at most for RSS to stop falling after the collection, and how often it looks. */
const SETTLE_MAX_MS = 3_000;
const SETTLE_STEP_MS = 100;

/** The line for one report: byte counts as key=value, so people and scripts read the same thing. */
export function memoryAfterGc(): Promise<string> {
  return withDefaultHeapGrowing(collectAndMeasure);
}

async function collectAndMeasure(): Promise<string> {
  if (gc === null) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  // A memory-reducing collection (what V8 does under memory pressure: compaction, caches dropped), through the
  // addon: Node 20's gc() knows only a plain full collection (its `flavor: 'last-resort'` option came with a later
  // V8), which leaves the old generation as fragmented as the last burst left it — with 2 000 new SOCKS5 UDP
  // associations, twice their live bytes. Without the addon, that plain collection is what the report gets.
  // At least twice, with event-loop turns between: the first one's weak callbacks free Node's native request
  // objects (a socket send's SendWrap...) outside the collection, and only the next one collects their JS side;
  // more while a pass still frees something (after a burst, layers of such requests).
  let before = Infinity;
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    if (!reduceMemory()) gc({ type: 'major', execution: 'sync' });
    // A scavenge is where V8 shrinks the young generation when allocation has been low (a major GC does not).
    gc({ type: 'minor', execution: 'sync' });
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage();
    const now = used.heapUsed + used.external;
    if (pass >= 1 && now >= before - 64 * 1024) break;
    before = now;
  }
  // The heap as the collection left it: read now, since the RSS wait below lets the process allocate again (a
  // data-path process with a young generation grown for a burst collects it only seconds later).
  const heap = process.memoryUsage();
  // Data-path processes keep up to 8 MiB of freed malloc memory for reuse (native/datapath.ts): not live state.
  trimMalloc();
  // V8 hands the freed pages back from a background thread, a few hundred ms later (measured: RSS read at once
  // was 12 MB above the same process half a second after): wait until RSS has not fallen for 3 looks.
  let low = process.memoryUsage.rss();
  for (let steady = 0, waited = 0; steady < 3 && waited < SETTLE_MAX_MS; waited += SETTLE_STEP_MS) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_STEP_MS));
    const rss = process.memoryUsage.rss();
    steady = rss < low ? 0 : steady + 1;
    low = Math.min(low, rss);
  }
  // The young generation's size says why two reports differ: V8 shrinks it back to 1 MiB only at some scavenge
  // after a burst (memory per flow: npm run bench -- udp takes the lowest of several reports).
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  return `memory after GC: rss=${low} heapUsed=${heap.heapUsed} heapTotal=${heap.heapTotal} external=${heap.external} arrayBuffers=${heap.arrayBuffers} young=${spaces.new_space ?? 0} old=${spaces.old_space ?? 0}`;
}

/** Prints memoryAfterGc() to stdout on every SIGUSR2 (which would otherwise end the process). */
export function reportMemoryOnSigusr2(): void {
  process.on('SIGUSR2', () => void memoryAfterGc().then((line) => console.log(line)));
}
