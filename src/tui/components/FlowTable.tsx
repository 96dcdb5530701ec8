// The flow table: a title with counts and the filter, the column header, then exactly `height` rows (blank
// rows pad it) so the panels below never move. The selected row is inverse; closed flows are dim, failed red.

import { Box, Text } from 'ink';
import { isEnded, type TuiFlow } from '../model';
import type { TableLayout } from '../table';

export interface FlowTableProps {
  flows: readonly TuiFlow[];
  /** All flows before filtering (for the counts). */
  total: number;
  layout: TableLayout;
  height: number;
  selected: number;
  top: number;
  filter: string;
}

function FlowRow({ flow, text, selected }: { flow: TuiFlow; text: string; selected: boolean }) {
  const failed = flow.state === 'failed';
  return (
    <Text wrap="truncate-end" inverse={selected} dimColor={!selected && isEnded(flow) && !failed} color={failed ? 'red' : undefined}>
      {text}
    </Text>
  );
}

export function FlowTable({ flows, total, layout, height, selected, top, filter }: FlowTableProps) {
  const live = flows.filter((f) => !isEnded(f)).length;
  const shown = flows.slice(top, top + height);
  const more = flows.length - (top + shown.length);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text bold>FLOWS</Text> {live} live, {flows.length - live} closed
        {filter !== '' && <Text color="cyan">{` · filter "${filter}" (${flows.length} of ${total})`}</Text>}
        {top > 0 && <Text dimColor>{` · ↑ ${top} above`}</Text>}
        {more > 0 && <Text dimColor>{` · ↓ ${more} below`}</Text>}
      </Text>
      <Text bold underline wrap="truncate-end">{layout.header}</Text>
      <Box flexDirection="column" height={height}>
        {flows.length === 0 ? (
          <Text dimColor>{filter ? 'no flow matches the filter (Esc clears it)' : 'no flows yet: traffic through the tunnel shows up here'}</Text>
        ) : (
          shown.map((f, i) => <FlowRow key={f.id} flow={f} text={layout.row(f)} selected={top + i === selected} />)
        )}
      </Box>
    </Box>
  );
}
