// One line: the newest of the daemon's log events and the TUI's own notices (results of k, b, x).

import { Text } from 'ink';
import { clock } from '../format';
import type { LogEntry } from '../model';

export interface Notice {
  at: number;
  text: string;
  error: boolean;
}

/** A notice (the answer to a key press) stays this long even when log events arrive meanwhile. */
const NOTICE_MS = 5_000;

export function LogLine({ log, notice }: { log: readonly LogEntry[]; notice: Notice | null }) {
  const last = log.at(-1);
  if (notice !== null && (last === undefined || notice.at >= last.at || Date.now() - notice.at < NOTICE_MS)) {
    return (
      <Text wrap="truncate-end" color={notice.error ? 'red' : 'green'}>
        {clock(notice.at)} {notice.text}
      </Text>
    );
  }
  if (last === undefined) return <Text> </Text>;
  return (
    <Text wrap="truncate-end" dimColor>
      {clock(last.at)} {last.message}
    </Text>
  );
}
