// Key handling as a pure reducer: (ui state, key, what is on screen) → new ui state and at most one effect for
// the App to run (quit or a control request). Prompts (filter, bypass CIDR, kill-switch confirmation, help) are
// modes; while one is open every key belongs to it, so typing "q" into the filter never quits.

export type UiMode = 'normal' | 'filter' | 'bypass' | 'confirm-kill' | 'help';

export interface UiState {
  mode: UiMode;
  filter: string;
  /** The bypass prompt's text. */
  draft: string;
  /** Selection follows the flow, not the row, as rows re-sort by rate. */
  selectedId: number | null;
  selectedIndex: number;
}

export const INITIAL_UI: UiState = { mode: 'normal', filter: '', draft: '', selectedId: null, selectedIndex: 0 };

/** The subset of Ink's Key we use (so tests and the reducer do not depend on Ink). */
export interface KeyInfo {
  upArrow?: boolean;
  downArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  backspace?: boolean;
  delete?: boolean;
  ctrl?: boolean;
  meta?: boolean;
  tab?: boolean;
}

export interface KeyContext {
  /** Ids of the rows on screen, in order (after sort and filter). */
  rows: readonly number[];
  pageRows: number;
  killSwitch: boolean | null;
}

export type Effect =
  | { kind: 'quit' }
  | { kind: 'killswitch'; on: boolean }
  | { kind: 'route.add'; cidr: string }
  | { kind: 'flow.close'; id: number }
  | { kind: 'notice'; text: string };

export interface KeyResult {
  ui: UiState;
  effect?: Effect;
}

/** Where the selection is now: the selected flow's row, or the same index (clamped) once that flow is gone. */
export function selectedRow(ui: UiState, rows: readonly number[]): number {
  if (rows.length === 0) return -1;
  const at = ui.selectedId === null ? -1 : rows.indexOf(ui.selectedId);
  return at >= 0 ? at : Math.min(Math.max(ui.selectedIndex, 0), rows.length - 1);
}

function select(ui: UiState, rows: readonly number[], index: number): UiState {
  if (rows.length === 0) return { ...ui, selectedId: null, selectedIndex: 0 };
  const i = Math.min(Math.max(index, 0), rows.length - 1);
  return { ...ui, selectedId: rows[i], selectedIndex: i };
}

/** Printable input for a text prompt (Ink hands pasted text as one string). */
function printable(input: string, key: KeyInfo): string {
  if (key.ctrl || key.meta || key.tab || key.return || key.escape) return '';
  return [...input].filter((ch) => ch >= ' ' && ch !== '\x7f').join('');
}

function editText(text: string, input: string, key: KeyInfo): string {
  if (key.backspace || key.delete) return text.slice(0, -1);
  return text + printable(input, key);
}

export function reduceKey(ui: UiState, input: string, key: KeyInfo, ctx: KeyContext): KeyResult {
  if (key.ctrl && input === 'c') return { ui, effect: { kind: 'quit' } };
  // Text typed fast (or pasted) arrives as one chunk, Enter included: "10.0.0.0/8\r" is typing then Return.
  const nl = input.search(/[\r\n]/);
  if (input.length > 1 && nl >= 0 && (ui.mode === 'filter' || ui.mode === 'bypass')) {
    const typed = nl > 0 ? reduceKey(ui, input.slice(0, nl), {}, ctx).ui : ui;
    return reduceKey(typed, '\r', { return: true }, ctx);
  }
  switch (ui.mode) {
    case 'help':
      return { ui: { ...ui, mode: 'normal' } };
    case 'confirm-kill':
      if (input === 'y' || input === 'Y') return { ui: { ...ui, mode: 'normal' }, effect: { kind: 'killswitch', on: !ctx.killSwitch } };
      return { ui: { ...ui, mode: 'normal' }, effect: { kind: 'notice', text: 'kill switch unchanged' } };
    case 'filter':
      if (key.escape) return { ui: select({ ...ui, mode: 'normal', filter: '' }, ctx.rows, 0) };
      if (key.return) return { ui: { ...ui, mode: 'normal' } };
      return { ui: { ...ui, filter: editText(ui.filter, input, key), selectedId: null, selectedIndex: 0 } };
    case 'bypass': {
      if (key.escape) return { ui: { ...ui, mode: 'normal', draft: '' } };
      if (key.return) {
        const cidr = ui.draft.trim();
        const next = { ...ui, mode: 'normal' as const, draft: '' };
        return cidr ? { ui: next, effect: { kind: 'route.add', cidr } } : { ui: next };
      }
      return { ui: { ...ui, draft: editText(ui.draft, input, key) } };
    }
    case 'normal':
      return normalKey(ui, input, key, ctx);
  }
}

function normalKey(ui: UiState, input: string, key: KeyInfo, ctx: KeyContext): KeyResult {
  const at = selectedRow(ui, ctx.rows);
  if (key.upArrow) return { ui: select(ui, ctx.rows, at - 1) };
  if (key.downArrow) return { ui: select(ui, ctx.rows, at + 1) };
  if (key.pageUp) return { ui: select(ui, ctx.rows, at - ctx.pageRows) };
  if (key.pageDown) return { ui: select(ui, ctx.rows, at + ctx.pageRows) };
  if (key.home) return { ui: select(ui, ctx.rows, 0) };
  if (key.end) return { ui: select(ui, ctx.rows, ctx.rows.length - 1) };
  if (key.escape && ui.filter) return { ui: { ...ui, filter: '' } };
  switch (input) {
    case 'q':
      return { ui, effect: { kind: 'quit' } };
    case '?':
      return { ui: { ...ui, mode: 'help' } };
    case '/':
      return { ui: { ...ui, mode: 'filter' } };
    case 'b':
      return { ui: { ...ui, mode: 'bypass', draft: '' } };
    case 'k':
      // socks5 / p2p-client have no kill switch: say so instead of asking.
      if (ctx.killSwitch === null) return { ui, effect: { kind: 'notice', text: 'no kill switch in this mode (only zksd has one)' } };
      return { ui: { ...ui, mode: 'confirm-kill' } };
    case 'x':
      if (at < 0) return { ui, effect: { kind: 'notice', text: 'no flow selected' } };
      return { ui, effect: { kind: 'flow.close', id: ctx.rows[at] } };
  }
  return { ui };
}

/** First row shown so the selected one is on screen (stateless: the page containing the selection). */
export function scrollTop(selected: number, total: number, pageRows: number): number {
  if (pageRows <= 0 || selected < 0 || total <= pageRows) return 0;
  return Math.min(Math.floor(selected / pageRows) * pageRows, Math.max(0, total - pageRows));
}
