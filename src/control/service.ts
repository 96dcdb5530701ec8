// What zksd and the proxies serve on their control socket, in one place: `status`, `flows` and `flow.close` from a
// FlowRegistry and a status function, the 250 ms ticker that samples rates and feeds the `flows` (every tick) and
// `status` (every 4th) events, and `log` events. Program-specific commands (zksd's routes, kill switch, down) go to
// `handle`; without one they are refused as not available in this mode.

import { ZksError } from '../errors/zks-error';
import type { FlowRegistry, CountedFlow } from './flow-registry';
import type { ControlCommand, StatusSnapshot } from './protocol';
import { startControlServer, type ControlHandler, type ControlServerOptions } from './server';

export const TICK_MS = 250;
const STATUS_EVERY_TICKS = 4;

export interface ControlServiceOptions extends ControlServerOptions {
  path: string;
  flows: FlowRegistry<CountedFlow>;
  status: () => StatusSnapshot;
  /** Commands other than status, flows, flow.close and (un)subscribe. */
  handle?: ControlHandler;
  /** Where log lines also go locally (the program's own log). */
  onLog?: (message: string) => void;
}

export interface ControlService {
  readonly path: string;
  /** A line for `log` subscribers (and onLog). */
  log(message: string): void;
  close(): Promise<void>;
}

export async function startControlService(o: ControlServiceOptions): Promise<ControlService> {
  let publishLog: (message: string) => void = () => {};
  const log = (message: string) => {
    o.onLog?.(message);
    publishLog(message);
  };
  const server = await startControlServer(o.path, (cmd: ControlCommand, args) => {
    switch (cmd) {
      case 'status':
        return o.status();
      case 'flows':
        return o.flows.flows(args.closed === true);
      case 'flow.close': {
        if (typeof args.id !== 'number') throw new ZksError('ZKS_ERR_CONTROL_REQUEST', 'flow.close needs args.id (a flow id from `flows`)');
        if (!o.flows.abort(args.id)) throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `no live flow with id ${args.id}`);
        log(`flow ${args.id} closed by the operator`);
        return { closed: args.id };
      }
      case 'subscribe':
      case 'unsubscribe':
        return null; // answered by the control server (per connection)
      default:
        if (o.handle) return o.handle(cmd, args);
        throw new ZksError('ZKS_ERR_CONTROL_REQUEST', `${cmd} is not available in ${o.status().mode} mode (it is a zksd command)`);
    }
  }, { access: o.access, peerUid: o.peerUid });
  publishLog = (message) => server.publish('log', { at: Date.now(), message });
  let ticks = 0;
  // Events are built only when someone listens: an unwatched program pays for the rate samples alone.
  const ticker = setInterval(() => {
    o.flows.sampleRates(performance.now());
    if (server.subscribers('flows') > 0) server.publish('flows', o.flows.flows(true));
    if (++ticks % STATUS_EVERY_TICKS === 0 && server.subscribers('status') > 0) server.publish('status', o.status());
  }, TICK_MS);
  ticker.unref();
  return {
    path: o.path,
    log,
    async close() {
      clearInterval(ticker);
      await server.close();
    },
  };
}
