// Shown while no control socket answers (not started yet, restarting, or refused by file mode); the feed
// retries by itself, so this screen turns into the live view without a key press.

import { Box, Text } from 'ink';
import { clock } from '../format';
import type { FeedState } from '../feed';
import { waitingLine } from '../sockets';

export function Waiting({ state }: { state: FeedState }) {
  const last = state.log.at(-1);
  return (
    <Box flexDirection="column">
      <Text bold color="yellow" wrap="truncate-end">{waitingLine(state.candidates)}</Text>
      <Text wrap="truncate-end">Start it with `sudo zksd up` (or `zks socks5`); this view reconnects by itself.</Text>
      {state.problem !== null && <Text color="red" wrap="truncate-end">{state.problem}</Text>}
      {last !== undefined && <Text dimColor wrap="truncate-end">{clock(last.at)} {last.message}</Text>}
      <Text> </Text>
      <Text dimColor>q quits</Text>
    </Box>
  );
}
