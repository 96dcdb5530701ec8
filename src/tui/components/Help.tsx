// The `?` overlay: takes the table's place (same height) so nothing else moves.

import { Box, Text } from 'ink';

const KEYS: Array<[string, string]> = [
  ['↑↓ PgUp PgDn Home End', 'select a flow (it stays selected as rows re-sort)'],
  ['/', 'filter by id, address, path or state; Enter keeps, Esc clears'],
  ['x', 'close the selected flow (both ends see a reset)'],
  ['k', 'turn the kill switch on or off (asks first)'],
  ['b', 'add a bypass route: a CIDR sent outside the tunnel'],
  ['q  Ctrl-C', 'quit (the daemon keeps running)'],
];

export function Help({ height }: { height: number }) {
  return (
    <Box flexDirection="column" height={height} borderStyle="round" borderColor="cyan" paddingX={1}>
      <Text bold>zks-tui keys — any key closes this</Text>
      {KEYS.map(([k, what]) => (
        <Text key={k} wrap="truncate-end">
          <Text bold color="cyan">{k.padEnd(23)}</Text>
          {what}
        </Text>
      ))}
      <Text dimColor wrap="truncate-end">Rates: the daemon's 2 s window. Closed flows stay listed, dimmed.</Text>
    </Box>
  );
}
