// The Ink view, rendered with ink-testing-library and fed by the daemon's real control server over a unix socket
// (test/tui/scripted-daemon.ts): one frame per state (no daemon, connected, flows, kill switch off, client mode),
// and the keys that send requests — what arrives at the server is asserted, not a mock's call log.
import './force-color';
import { stripVTControlCharacters as plain } from 'node:util';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../src/tui/App';
import { ControlFeed } from '../../src/tui/feed';
import { flow, scriptedDaemon, zksdStatus, type ScriptedDaemon } from './scripted-daemon';

const KEY = { up: '\u001B[A', down: '\u001B[B', esc: '\u001B', enter: '\r' };
const RED = '\u001B[31m';
const GREEN = '\u001B[32m';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Harness {
  d: ScriptedDaemon;
  feed: ControlFeed;
  ui: ReturnType<typeof render>;
  quit: { called: boolean };
  /** The newest frame without colour codes. */
  text(): string;
  /** Waits for a frame (plain text) that satisfies `pred`. */
  frame(pred: (text: string, raw: string) => boolean, what: string): Promise<string>;
  press(...keys: string[]): Promise<void>;
}

async function start(opts: { columns?: number; rows?: number; stopped?: boolean; setup?: (d: ScriptedDaemon) => void } = {}): Promise<Harness> {
  const d = await scriptedDaemon();
  cleanup.push(() => d.destroy());
  opts.setup?.(d);
  if (opts.stopped) await d.stop();
  const feed = new ControlFeed({ sockets: [d.path], retryMaxMs: 200 });
  cleanup.push(() => feed.stop());
  feed.start();
  const quit = { called: false };
  const ui = render(createElement(App, { feed, size: { columns: opts.columns ?? 80, rows: opts.rows ?? 24 }, onQuit: () => (quit.called = true) }));
  cleanup.push(() => ui.unmount());
  const text = (): string => plain(ui.lastFrame() ?? '');
  const h: Harness = {
    d, feed, ui, quit, text,
    async frame(pred, what) {
      const deadline = Date.now() + 30_000; // only a failure deadline
      while (Date.now() < deadline) {
        const raw = ui.lastFrame() ?? '';
        if (pred(plain(raw), raw)) return plain(raw);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no frame with ${what}; last:\n${text()}`);
    },
    async press(...keys) {
      for (const k of keys) {
        ui.stdin.write(k);
        await new Promise((r) => setTimeout(r, 30)); // one keypress per read, as a person types
      }
    },
  };
  return h;
}

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000; // only a failure deadline
  while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (!pred()) throw new Error(`timed out waiting for ${what}`);
}

const rowOf = (text: string, needle: string): string => text.split('\n').find((l) => l.includes(needle)) ?? '';

describe('zks-tui frames', () => {
  it('no daemon: "waiting for zksd at <socket>", then the live view once it starts', async () => {
    const h = await start({ stopped: true });
    const waiting = await h.frame((t) => t.includes('waiting for zksd'), 'the waiting line');
    expect(waiting).toContain(`waiting for zksd at ${h.d.path}`);
    expect(waiting).toContain('reconnects by itself');
    await h.d.start();
    await h.frame((t) => t.includes('zksd direct'), 'the header after the daemon started');
  });

  it('connected: header (mode, kill switch ON in green, rates), relay links with RTT, bypass routes', async () => {
    const h = await start();
    const t = await h.frame((x) => x.includes('zksd direct'), 'the header');
    expect(rowOf(t, 'zksd direct')).toBe('zksd direct · kill switch ON · ↓ 0 B/s ↑ 0 B/s · 0 flows · up 1m01s');
    expect(h.ui.lastFrame()).toContain(`${GREEN}ON`);
    expect(t).toContain('relay wss://zks.example.workers.dev · total ↓ 9.9 MB ↑ 81.2 kB');
    expect(t).toContain('#1  3 streams  rtt 21.4 ms');
    expect(t).toContain('#2  0 streams  rtt –');
    expect(rowOf(t, 'BYPASS ROUTES')).toContain('BYPASS ROUTES 1');
    expect(t).toContain('192.168.0.0/16');
    expect(t).toContain('no flows yet');
    expect(t).toContain(`connected to zksd at ${h.d.path}`);
  });

  it('flows: destination and byte counts, sorted by rate, updated from the event stream', async () => {
    const h = await start();
    await h.frame((t) => t.includes('no flows yet'), 'the empty table');
    h.d.flows = [
      flow(1, { destination: '93.184.216.34:443', target: '93.184.216.34:443', rateDown: 48_210, bytesDown: 152_334 }),
      flow(2, { destination: '10.79.1.1:80', target: '10.79.1.1:80', rateDown: 2_000_000, bytesDown: 12_345_678, bytesUp: 431 }),
      flow(3, { destination: '100.77.0.53:53', target: '8.8.8.8:53', path: 'dns', state: 'closed', rateDown: 0, bytesDown: 90 }),
    ];
    h.d.publish();
    const t = await h.frame((x) => x.includes('10.79.1.1:80'), 'the flow rows');
    const rows = t.split('\n').filter((l) => /^\s+\d+ /.test(l));
    expect(rows.map((l) => l.trim().split(/\s+/)[0])).toEqual(['2', '1', '3']); // by rate, closed last
    expect(rows[0]).toMatch(/^\s+2 10\.79\.1\.1:80\s+worker established\s+2\.0 MB\s+0 B\s+12\.3 MB\s+431 B$/);
    expect(rows[2]).toMatch(/^\s+3 100\.77\.0\.53:53 → 8… dns/); // DNS: resolver address → upstream, cut to fit 80 columns
    expect(t).toContain('FLOWS 2 live, 1 closed');
    // The header sums the live flows of the same event (the status event comes only once a second).
    expect(rowOf(t, 'zksd direct')).toBe('zksd direct · kill switch ON · ↓ 2.0 MB/s ↑ 0 B/s · 2 flows · up 1m01s');
    for (const line of h.ui.lastFrame()!.split('\n')) expect(plain(line).length).toBeLessThanOrEqual(80);
  });

  it('kill switch off: OFF in red', async () => {
    const h = await start({ setup: (d) => (d.status = zksdStatus({ killSwitch: false })) });
    const t = await h.frame((x) => x.includes('kill switch OFF'), 'kill switch OFF');
    expect(t).not.toContain('kill switch ON');
    expect(h.ui.lastFrame()).toContain(`${RED}OFF`);
  });

  it('zks socks5 (client socket): no kill switch, no bypass routes; k says so without asking', async () => {
    const h = await start({
      setup: (d) => (d.status = { mode: 'socks5', relay: 'wss://r.example', killSwitch: null, connections: [{ id: 1, streams: 1, rttMs: 9 }], flows: 0 }),
    });
    const t = await h.frame((x) => x.includes('kill switch n/a'), 'the socks5 header');
    expect(rowOf(t, 'kill switch')).toMatch(/^zks socks5 · kill switch n\/a · /);
    expect(t).toContain('none in socks5 mode');
    await h.press('k');
    await h.frame((x) => x.includes('no kill switch in this mode'), 'the notice');
    expect(h.d.requests.map((r) => r.cmd)).not.toContain('killswitch');
  });

  it('80×24 fits in 23 lines of ≤ 80 columns; 140×40 adds columns and rows', async () => {
    const setup = (d: ScriptedDaemon): void => {
      d.flows = Array.from({ length: 40 }, (_, i) => flow(i + 1, { destination: `10.0.0.${i + 1}:443`, target: `10.0.0.${i + 1}:443`, rateDown: 1_000 * (i + 1) }));
    };
    const small = await start({ setup });
    const s = await small.frame((x) => x.includes('10.0.0.40:443'), 'rows');
    expect(s.split('\n').length).toBeLessThanOrEqual(23);
    expect(Math.max(...s.split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(s).not.toContain('AGE');
    const smallRows = s.split('\n').filter((l) => l.includes('10.0.0.')).length;

    const big = await start({ columns: 140, rows: 40, setup });
    const b = await big.frame((x) => x.includes('10.0.0.40:443'), 'rows');
    expect(b.split('\n').length).toBeLessThanOrEqual(39);
    expect(rowOf(b, 'DESTINATION')).toMatch(/ID PROTO DESTINATION .* AGE$/);
    expect(b.split('\n').filter((l) => l.includes('10.0.0.')).length).toBeGreaterThan(smallRows);
    expect(b).toContain('↓ '); // "↓ N below": the rest is reachable by scrolling
  });
});

describe('zks-tui keys', () => {
  const threeFlows = (d: ScriptedDaemon): void => {
    d.flows = [
      flow(11, { destination: '10.79.1.1:80', target: '10.79.1.1:80', rateDown: 3_000 }),
      flow(12, { destination: '1.1.1.1:443', target: '1.1.1.1:443', rateDown: 2_000 }),
      flow(13, { destination: '9.9.9.9:853', target: '9.9.9.9:853', rateDown: 1_000 }),
    ];
  };

  it('↓ selects the next flow and x closes it: flow.close with that id arrives at the server', async () => {
    const h = await start({ setup: threeFlows });
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows');
    await h.press(KEY.down, KEY.down, KEY.up);
    await until(() => (h.ui.lastFrame() ?? '').includes('\u001B[7m   12 1.1.1.1:443'), 'flow 12 highlighted');
    await h.press('x');
    await until(() => h.d.requests.some((r) => r.cmd === 'flow.close'), 'flow.close');
    expect(h.d.requests.filter((r) => r.cmd === 'flow.close')).toEqual([{ cmd: 'flow.close', args: { id: 12 } }]);
    await h.frame((t) => t.includes('closed flow 12'), 'the notice');
  });

  it('x on a flow the daemon no longer has shows its error', async () => {
    const h = await start({ setup: threeFlows });
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows');
    h.d.flows = []; // gone at the daemon, still on screen until the next event
    await h.press('x');
    await h.frame((t) => t.includes('flow 11 not closed: no live flow with id 11'), 'the refusal');
  });

  it('/ filters as you type; Enter keeps the filter, Esc clears it', async () => {
    const h = await start({ setup: threeFlows });
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows');
    await h.press('/', '9', '.', '9');
    let t = await h.frame((x) => x.includes('filter "9.9"'), 'the filter');
    expect(t).not.toContain('10.79.1.1:80');
    expect(t).toContain('9.9.9.9:853');
    expect(t).toContain('filter: 9.9');
    await h.press(KEY.enter);
    t = await h.frame((x) => x.includes('q quit'), 'the key hints back');
    expect(t).toContain('(1 of 3)');
    await h.press('q'); // the prompt is closed: q quits again
    expect(h.quit.called).toBe(true);
  });

  it('typing q into the filter does not quit; Esc clears the filter', async () => {
    const h = await start({ setup: threeFlows });
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows');
    await h.press('/', 'q');
    await h.frame((t) => t.includes('filter "q"'), 'q in the filter');
    expect(h.quit.called).toBe(false);
    await h.press(KEY.esc);
    const t = await h.frame((x) => !x.includes('filter "') && x.includes('q quit'), 'no filter');
    expect(t).toContain('10.79.1.1:80');
  });

  it('k asks first: n leaves the kill switch alone, y sends killswitch {on:false} and shows OFF in red', async () => {
    const h = await start();
    await h.frame((t) => t.includes('kill switch ON'), 'the header');
    await h.press('k');
    await h.frame((t) => t.includes('Turn the kill switch OFF? Traffic may then leave outside the tunnel. (y/n)'), 'the prompt');
    await h.press('n');
    await h.frame((t) => t.includes('kill switch unchanged'), 'the notice');
    expect(h.d.requests.some((r) => r.cmd === 'killswitch')).toBe(false);

    await h.press('k', 'y');
    await until(() => h.d.requests.some((r) => r.cmd === 'killswitch'), 'killswitch');
    expect(h.d.requests.filter((r) => r.cmd === 'killswitch')).toEqual([{ cmd: 'killswitch', args: { on: false } }]);
    await h.frame((t, raw) => t.includes('kill switch OFF ·') && raw.includes(`${RED}OFF`), 'OFF in red');

    await h.press('k');
    await h.frame((t) => t.includes('Turn the kill switch ON?'), 'the prompt to turn it back on');
    await h.press('y');
    await until(() => h.d.requests.filter((r) => r.cmd === 'killswitch').length === 2, 'second killswitch');
    expect(h.d.requests.filter((r) => r.cmd === 'killswitch')[1].args).toEqual({ on: true });
  });

  it('b prompts for a CIDR: route.add arrives and the routes panel shows it; a refused one shows the daemon\'s error', async () => {
    const h = await start();
    await h.frame((t) => t.includes('zksd direct'), 'the header');
    await h.press('b', ...'10.0.0.0/8', KEY.enter);
    await until(() => h.d.requests.some((r) => r.cmd === 'route.add'), 'route.add');
    expect(h.d.requests.filter((r) => r.cmd === 'route.add')).toEqual([{ cmd: 'route.add', args: { cidr: '10.0.0.0/8' } }]);
    let t = await h.frame((x) => x.includes('bypass added: 10.0.0.0/8'), 'the notice');
    expect(t).toContain('BYPASS ROUTES 2');
    expect(t).toContain('10.0.0.0/8');

    await h.press('b', ...'ten/8x', '\u007F', KEY.enter); // the backspace takes the x back
    t = await h.frame((x) => x.includes('refused'), 'the refusal');
    expect(t).toContain('bypass ten/8 refused: bad CIDR "ten/8" (expected e.g. 10.0.0.0/8)');
    expect(h.ui.lastFrame()).toContain(`${RED}`);
  });

  it('a pasted CIDR with its Enter in one read is submitted', async () => {
    const h = await start();
    await h.frame((t) => t.includes('zksd direct'), 'the header');
    await h.press('b', '172.16.0.0/12\r');
    await until(() => h.d.requests.some((r) => r.cmd === 'route.add'), 'route.add');
    expect(h.d.requests.find((r) => r.cmd === 'route.add')!.args).toEqual({ cidr: '172.16.0.0/12' });
  });

  it('? shows the help overlay; any key closes it', async () => {
    const h = await start({ setup: threeFlows });
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows');
    await h.press('?');
    const t = await h.frame((x) => x.includes('zks-tui keys'), 'help');
    expect(t).toContain('close the selected flow');
    expect(t).not.toContain('9.9.9.9:853');
    await h.press('x'); // closes help only: no flow.close
    await h.frame((x) => x.includes('9.9.9.9:853'), 'the table back');
    expect(h.d.requests.some((r) => r.cmd === 'flow.close')).toBe(false);
  });

  it('q quits, also from the waiting screen', async () => {
    const h = await start({ stopped: true });
    await h.frame((t) => t.includes('waiting for zksd'), 'waiting');
    await h.press('q');
    expect(h.quit.called).toBe(true);
  });

  it('the daemon restarts under the view: waiting, then live again without a key press', async () => {
    const h = await start({ setup: threeFlows });
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows');
    await h.d.stop();
    const w = await h.frame((t) => t.includes('waiting for zksd'), 'waiting');
    expect(w).toContain(`lost the connection to ${h.d.path}; reconnecting`);
    await h.d.start();
    await h.frame((t) => t.includes('9.9.9.9:853'), 'rows again');
  });
});
