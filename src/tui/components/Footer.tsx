// The bottom line: key hints, or the open prompt (filter, bypass CIDR, kill-switch confirmation).

import { Text } from 'ink';
import type { UiState } from '../keys';

const HINTS: Array<[string, string]> = [
  ['q', 'quit'], ['↑↓', 'select'], ['/', 'filter'], ['x', 'close flow'], ['k', 'kill switch'], ['b', 'bypass'], ['?', 'help'],
];

export function Footer({ ui, killSwitch }: { ui: UiState; killSwitch: boolean | null }) {
  switch (ui.mode) {
    case 'filter':
      return (
        <Text wrap="truncate-end">
          <Text color="cyan">filter: </Text>
          {ui.filter}
          <Text inverse> </Text>
          <Text dimColor>  Enter keeps · Esc clears</Text>
        </Text>
      );
    case 'bypass':
      return (
        <Text wrap="truncate-end">
          <Text color="cyan">bypass CIDR (sent outside the tunnel): </Text>
          {ui.draft}
          <Text inverse> </Text>
          <Text dimColor>  Enter adds · Esc cancels</Text>
        </Text>
      );
    case 'confirm-kill':
      return killSwitch ? (
        <Text wrap="truncate-end" color="yellow">
          Turn the kill switch <Text bold color="red">OFF</Text>? Traffic may then leave outside the tunnel. (y/n)
        </Text>
      ) : (
        <Text wrap="truncate-end" color="yellow">
          Turn the kill switch <Text bold color="green">ON</Text>? Only tunnel traffic may then leave. (y/n)
        </Text>
      );
    default:
      return (
        <Text wrap="truncate-end">
          {HINTS.map(([k, what]) => (
            <Text key={k}>
              <Text bold color="cyan">{k}</Text> {what}{'  '}
            </Text>
          ))}
        </Text>
      );
  }
}
