// `npm run soak -- [flags]`: the run's length, its chaos (WebSocket kills, workerd restarts) and the traffic each
// lane carries. Every flag has a default sized for this 2-core machine; fractional minutes make short runs.
import { parseArgs } from 'node:util';

export interface SoakOptions {
  minutes: number;
  killEverySec: number;
  restartEverySec: number;
  zksd: boolean;
  build: boolean;
  sampleEverySec: number;
  bulkMB: number;
  bulkRateMBps: number;
  shortPerSec: number;
  idle: number;
  udpFlows: number;
  udpShortPerSec: number;
  /** A flow not done in this long (plus its transfer time at the bulk rate) fails. */
  flowTimeoutSec: number;
}

export const USAGE = `npm run soak -- [--minutes 30] [--kill-every 30] [--restart-every 300] [--no-zksd] [--no-build]
  [--sample-every 5] [--bulk-mb 16] [--bulk-rate 4] [--short-per-sec 5] [--idle 20] [--udp-flows 4]
  [--udp-short-per-sec 1] [--flow-timeout 150]
Relay mode through SOCKS5 (zks p2p-client) and through zksd (root: a namespace topology), with every WebSocket
cut every --kill-every seconds and workerd restarted every --restart-every seconds (0: never). Writes
bench/results/soak-<time>.md, .svg and a log directory; exits 1 if any relay-mode flow failed.`;

const SPEC = {
  minutes: { type: 'string', default: '30' },
  'kill-every': { type: 'string', default: '30' },
  'restart-every': { type: 'string', default: '300' },
  'no-zksd': { type: 'boolean', default: false },
  'no-build': { type: 'boolean', default: false },
  'sample-every': { type: 'string', default: '5' },
  'bulk-mb': { type: 'string', default: '16' },
  'bulk-rate': { type: 'string', default: '4' },
  'short-per-sec': { type: 'string', default: '5' },
  idle: { type: 'string', default: '20' },
  'udp-flows': { type: 'string', default: '4' },
  'udp-short-per-sec': { type: 'string', default: '1' },
  'flow-timeout': { type: 'string', default: '150' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function num(values: Record<string, unknown>, name: string, min: number, max: number): number {
  const x = Number(values[name]);
  if (!Number.isFinite(x) || x < min || x > max) throw new Error(`--${name} must be a number from ${min} to ${max}\n${USAGE}`);
  return x;
}

/** Parses argv; null for --help. */
export function parseSoakOptions(argv: string[]): SoakOptions | null {
  const { values } = parseArgs({ args: argv, options: SPEC, strict: true, allowPositionals: false });
  if (values.help) return null;
  return {
    minutes: num(values, 'minutes', 0.1, 24 * 60),
    killEverySec: num(values, 'kill-every', 0, 3600),
    restartEverySec: num(values, 'restart-every', 0, 24 * 3600),
    zksd: !values['no-zksd'],
    build: !values['no-build'],
    sampleEverySec: num(values, 'sample-every', 1, 600),
    bulkMB: num(values, 'bulk-mb', 0, 4096),
    bulkRateMBps: num(values, 'bulk-rate', 0, 10_000),
    shortPerSec: num(values, 'short-per-sec', 0, 200),
    idle: num(values, 'idle', 0, 2000),
    udpFlows: num(values, 'udp-flows', 0, 200),
    udpShortPerSec: num(values, 'udp-short-per-sec', 0, 100),
    flowTimeoutSec: num(values, 'flow-timeout', 10, 3600),
  };
}
