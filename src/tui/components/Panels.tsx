// Side by side under the table: relay links with their RTT, and the bypass routes (zksd only).

import { Box, Text } from 'ink';
import { linkPathSuffix, rtt } from '../format';
import type { TuiStatus } from '../model';

function List({ lines, height, empty }: { lines: string[]; height: number; empty: string }) {
  if (lines.length === 0) return <Text dimColor>{empty}</Text>;
  // The last visible line says how many did not fit rather than hiding them silently.
  const shown = lines.length > height ? [...lines.slice(0, height - 1), `+${lines.length - height + 1} more`] : lines;
  return (
    <>
      {shown.map((l, i) => (
        <Text key={i} wrap="truncate-end">{l}</Text>
      ))}
    </>
  );
}

export function Panels({ status, width, height }: { status: TuiStatus | null; width: number; height: number }) {
  const half = Math.floor(width / 2);
  const conns = status?.connections ?? [];
  const links = conns.map((c) => `#${c.id}  ${c.streams} streams  ${rtt(c.rttMs)}${linkPathSuffix(c)}`);
  const bypass = status?.bypass;
  return (
    <Box height={height + 1}>
      <Box flexDirection="column" width={half}>
        <Text bold>RELAY LINKS {conns.length}</Text>
        <List lines={links} height={height} empty="none (reconnecting)" />
      </Box>
      <Box flexDirection="column" width={width - half}>
        <Text bold>BYPASS ROUTES {bypass ? bypass.length : ''}</Text>
        {bypass === null || bypass === undefined ? (
          <Text dimColor>{status ? `none in ${status.mode} mode` : ''}</Text>
        ) : (
          <List lines={bypass} height={height} empty="none (b adds one)" />
        )}
      </Box>
    </Box>
  );
}
