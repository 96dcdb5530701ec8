// Two header lines: what runs and whether it protects (mode, kill switch in colour, live rates), then where it
// goes (relay, room and exit peer in relay mode) and totals.

import { Text } from 'ink';
import { bytes, duration, rate } from '../format';
import { daemonName, type TuiStatus } from '../model';

function KillSwitch({ on }: { on: boolean | null }) {
  if (on === null) return <Text dimColor>kill switch n/a</Text>;
  return (
    <Text>
      kill switch <Text bold color={on ? 'green' : 'red'}>{on ? 'ON' : 'OFF'}</Text>
    </Text>
  );
}

function ExitPeer({ online }: { online: boolean | null }) {
  if (online === null) return null;
  return (
    <Text>
      {' · exit peer '}
      <Text color={online ? 'green' : 'red'}>{online ? 'online' : 'offline'}</Text>
    </Text>
  );
}

/** Live figures from the flows event (4×/s), fresher than the status event's (1×/s). */
export interface LiveTotals {
  flows: number;
  rateUp: number;
  rateDown: number;
}

export function Header({ status, live }: { status: TuiStatus | null; live: LiveTotals }) {
  if (status === null) return <Text>zks-tui · loading…</Text>;
  return (
    <>
      <Text wrap="truncate-end">
        <Text bold color="cyan">{daemonName(status.mode)}</Text>
        {status.mode === 'direct' || status.mode === 'relay' ? ` ${status.mode}` : ''} · <KillSwitch on={status.killSwitch} /> ·{' '}
        <Text color="green">↓ {rate(live.rateDown)}</Text> <Text color="yellow">↑ {rate(live.rateUp)}</Text> · {live.flows}{' '}
        flows · up {duration(status.uptimeMs)}
      </Text>
      {status.mode === 'expose' && (
        <Text wrap="truncate-end">
          tunnel <Text bold>{status.tunnel.url}</Text> → {status.tunnel.origin} ·{' '}
          <Text color={status.tunnel.connected ? 'green' : 'red'}>{status.tunnel.connected ? 'connected' : 'reconnecting'}</Text> ·{' '}
          {status.tunnel.requests} requests ({status.tunnel.requestRate.toFixed(1)}/s, {status.tunnel.failed} failed)
        </Text>
      )}
      <Text wrap="truncate-end">
        relay {status.relay || '?'}
        {status.room !== null && ` · room ${status.room}`}
        <ExitPeer online={status.exitPeer} /> · total ↓ {bytes(status.bytesDown)} ↑ {bytes(status.bytesUp)}
      </Text>
    </>
  );
}
