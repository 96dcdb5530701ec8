// `zks ping HOST [-c N] [-i S] [-W S] [-s SIZE] [--tcp PORT]`: its flags (merge PING_OPTIONS into the command
// line's parseArgs options, then pingSettings()) and its loop over any DatagramDialer (TunnelPool through the
// tunnel; the exit's own Pinger in tests). Like ping(8): one request every interval without waiting for answers,
// a line per answer (ping-view.ts), nothing for a lost one, the summary at the end or when `signal` aborts (Ctrl-C).

import { ZksError } from '../errors/zks-error';
import { EchoFailure, type DatagramDialer, type EchoResult } from '../protocol/datagram-types';
import { realTimers, type Timers } from '../exit/pinger';
import { MAX_ECHO_PAYLOAD } from '../exit/icmp-wire';
import { PingStats, formatEchoLine, formatPingHeader } from './ping-view';

import { PING_OPTIONS } from './ping-options';

export { PING_OPTIONS };

export const PING_USAGE = 'zks ping HOST [-c COUNT] [-i SECONDS] [-W SECONDS] [-s SIZE] [--tcp PORT]';
/** Below this, pings would flood the exit (ping(8) allows less only to root). */
export const MIN_INTERVAL_S = 0.2;

export interface PingSettings {
  host: string;
  /** Requests to send; Infinity until Ctrl-C. */
  count: number;
  intervalMs: number;
  /** How long each request waits for its answer. */
  timeoutMs: number;
  payloadSize: number;
  /** --tcp PORT: time a TCP connect to PORT instead of an ICMP echo. */
  tcpPort: number | undefined;
}

type PingValues = { [K in keyof typeof PING_OPTIONS]?: string };

const bad = (why: string) => new ZksError('ZKS_ERR_CONFIG', `${why} (usage: ${PING_USAGE})`);

function number(text: string | undefined, name: string, fallback: number, ok: (n: number) => boolean, rule: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || !ok(n)) throw bad(`${name} "${text}": ${rule}`);
  return n;
}

/** The settings from parsed flags and positionals; a ZksError (ZKS_ERR_CONFIG) saying what is wrong. */
export function pingSettings(values: PingValues, positionals: readonly string[]): PingSettings {
  if (positionals.length !== 1 || positionals[0] === '') throw bad(positionals.length === 0 ? 'no host to ping' : `one host only, not "${positionals.join(' ')}"`);
  const isInt = (lo: number, hi: number) => (n: number) => Number.isInteger(n) && n >= lo && n <= hi;
  const count = number(values.count, '-c', Infinity, isInt(1, 2 ** 31 - 1), 'a whole number of requests, at least 1');
  const interval = number(values.interval, '-i', 1, (n) => n >= MIN_INTERVAL_S && n <= 3600, `seconds between requests, ${MIN_INTERVAL_S} to 3600`);
  const timeout = number(values.timeout, '-W', 10, (n) => n > 0 && n <= 3600, 'seconds to wait for each answer, above 0');
  const payloadSize = number(values.size, '-s', 56, isInt(0, MAX_ECHO_PAYLOAD), `data bytes per request, 0 to ${MAX_ECHO_PAYLOAD}`);
  const tcpPort = values.tcp === undefined ? undefined : number(values.tcp, '--tcp', 443, isInt(1, 65535), 'a TCP port, 1 to 65535');
  return { host: positionals[0], count, intervalMs: Math.round(interval * 1000), timeoutMs: Math.max(1, Math.round(timeout * 1000)), payloadSize, tcpPort };
}

export interface PingRunOptions {
  /** Ctrl-C: stop sending, print the summary without waiting for answers in flight. */
  signal?: AbortSignal;
  timers?: Timers;
}

/** ping(8)'s exit status: 0 with any reply, 1 with none, 2 when the request itself was refused. */
export type PingExitCode = 0 | 1 | 2;

/** Runs the pings, printing through `print`; resolves with the exit status once the summary is printed. */
export async function runPing(
  dialer: Pick<DatagramDialer, 'echo'>,
  s: PingSettings,
  print: (line: string) => void,
  opts: PingRunOptions = {},
): Promise<PingExitCode> {
  const timers = opts.timers ?? realTimers;
  const stats = new PingStats();
  // ping(8)'s default pattern after its timestamp: bytes counting up from 8.
  const payload = Uint8Array.from({ length: s.payloadSize }, (_, i) => (i + 8) & 0xff);
  print(formatPingHeader(s.host, s.payloadSize, s.tcpPort));
  const started = timers.now();
  let refused = false;

  await new Promise<void>((done) => {
    let inFlight = 0;
    let seq = 0;
    let timer: unknown;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      timers.clearTimeout(timer);
      opts.signal?.removeEventListener('abort', finish);
      done();
    };
    const sendNext = () => {
      if (finished) return;
      if (seq >= s.count || refused) {
        if (inFlight === 0) finish();
        return;
      }
      const mySeq = ++seq;
      stats.sent();
      inFlight++;
      const tcp = s.tcpPort === undefined ? {} : { tcpOnly: true, tcpPort: s.tcpPort };
      void dialer.echo({ host: s.host, seq: mySeq, payload, timeoutMs: s.timeoutMs, ...tcp }).then((result: EchoResult) => {
        inFlight--;
        if (finished) return;
        stats.record(result);
        const line = formatEchoLine(mySeq, result);
        if (line !== null) print(line);
        // A policy refusal or a peer without echo support answers every request the same: stop at the first.
        if (!result.ok && (result.code === EchoFailure.FORBIDDEN || result.code === EchoFailure.UNSUPPORTED)) refused = true;
        if ((seq >= s.count || refused) && inFlight === 0) finish();
      });
      if (seq < s.count) timer = timers.setTimeout(sendNext, s.intervalMs);
    };
    if (opts.signal?.aborted) return finish();
    opts.signal?.addEventListener('abort', finish);
    sendNext();
  });

  print('');
  for (const line of stats.summary(s.host, timers.now() - started)) print(line);
  return stats.received > 0 ? 0 : refused ? 2 : 1;
}
