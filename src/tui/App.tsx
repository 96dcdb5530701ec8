// The live view: header, flow table (or help), relay/route panels, log line, key hints. It renders whenever the
// feed has a new event (≈4×/s) and never clears the screen itself; its height stays one row under the
// terminal's, which keeps Ink on its line-by-line update path instead of a full clear (no flicker).

import { Box, useApp, useInput } from 'ink';
import { useMemo, useRef, useState } from 'react';
import type { ControlFeed } from './feed';
import { filterFlows, liveTotals, sortFlows } from './model';
import { INITIAL_UI, reduceKey, scrollTop, selectedRow, type Effect, type UiState } from './keys';
import { tableLayout } from './table';
import { FlowTable } from './components/FlowTable';
import { Footer } from './components/Footer';
import { Header } from './components/Header';
import { Help } from './components/Help';
import { LogLine, type Notice } from './components/LogLine';
import { Panels } from './components/Panels';
import { Waiting } from './components/Waiting';
import { useFeed } from './hooks/useFeed';
import { useTerminalSize, type TerminalSize } from './hooks/useTerminalSize';

export interface AppProps {
  feed: ControlFeed;
  /** Fixed size (tests); otherwise the terminal's, following resizes. */
  size?: Partial<TerminalSize>;
  onQuit?: () => void;
}

/** Rows for the table and the panels: header 2 (3 for a tunnel), table title + column header 2, panel title 1, log 1, keys 1. */
function rowsFor(terminalRows: number, extraHeader: number): { table: number; panel: number } {
  const height = terminalRows - 1 - extraHeader;
  const panel = terminalRows >= 40 ? 5 : terminalRows >= 30 ? 4 : terminalRows >= 20 ? 3 : 1;
  return { table: Math.max(1, height - 7 - panel), panel };
}

export function App({ feed, size: fixedSize, onQuit }: AppProps) {
  const state = useFeed(feed);
  const size = useTerminalSize(fixedSize);
  const { exit } = useApp();
  const [ui, setUi] = useState<UiState>(INITIAL_UI);
  const [notice, setNotice] = useState<Notice | null>(null);
  // Keys can arrive faster than React re-renders: the reducer always starts from the latest state.
  const uiRef = useRef(ui);

  const sorted = useMemo(() => sortFlows(state.flows), [state.flows]);
  const visible = useMemo(() => filterFlows(sorted, ui.filter), [sorted, ui.filter]);
  const live = useMemo(() => liveTotals(state.flows), [state.flows]);
  const rowIds = useMemo(() => visible.map((f) => f.id), [visible]);
  const layout = useMemo(() => tableLayout(size.columns), [size.columns]);
  const rows = rowsFor(size.rows, state.status?.mode === 'expose' ? 1 : 0);
  const killSwitch = state.status?.killSwitch ?? null;

  const say = (text: string, error = false): void => setNotice({ at: Date.now(), text, error });
  const run = (effect: Effect): void => {
    const failed = (what: string) => (err: unknown) => say(`${what}: ${(err as Error).message}`, true);
    switch (effect.kind) {
      case 'quit':
        onQuit?.();
        exit();
        return;
      case 'notice':
        return say(effect.text);
      case 'killswitch':
        void feed.setKillSwitch(effect.on).then((on) => say(`kill switch ${on ? 'ON' : 'OFF'}`), failed('kill switch unchanged'));
        return;
      case 'route.add':
        void feed.addBypass(effect.cidr).then(() => say(`bypass added: ${effect.cidr}`), failed(`bypass ${effect.cidr} refused`));
        return;
      case 'flow.close':
        void feed.closeFlow(effect.id).then(() => say(`closed flow ${effect.id}`), failed(`flow ${effect.id} not closed`));
        return;
    }
  };

  useInput((input, key) => {
    // Before a daemon answers only quitting makes sense.
    if (state.phase !== 'connected') {
      if (input === 'q' || (key.ctrl && input === 'c')) run({ kind: 'quit' });
      return;
    }
    const r = reduceKey(uiRef.current, input, key, { rows: rowIds, pageRows: rows.table, killSwitch });
    uiRef.current = r.ui;
    setUi(r.ui);
    if (r.effect) run(r.effect);
  });

  if (state.phase !== 'connected') return <Waiting state={state} />;

  const selected = selectedRow(ui, rowIds);
  return (
    <Box flexDirection="column" width={size.columns} height={size.rows - 1}>
      <Header status={state.status} live={live} />
      {ui.mode === 'help' ? (
        <Help height={rows.table + 2} />
      ) : (
        <FlowTable
          flows={visible}
          total={sorted.length}
          layout={layout}
          height={rows.table}
          selected={selected}
          top={scrollTop(selected, visible.length, rows.table)}
          filter={ui.filter}
        />
      )}
      <Panels status={state.status} width={size.columns} height={rows.panel} />
      <LogLine log={state.log} notice={notice} />
      <Footer ui={ui} killSwitch={killSwitch} />
    </Box>
  );
}
