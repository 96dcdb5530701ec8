// zks-tui in a real terminal (tmux) against a real zksd in the namespace topology (test/daemon/topology.ts):
// curl pulls bytes through the tunnel, the pane shows that flow with its destination and a non-zero byte count,
// `q` gives the shell back. The tmux server is private to this test (-S) and killed in finally.
// ZKS_TUI_CAPTURE=FILE writes the pane (as docs/TUI.md shows it) to FILE.
import { execFile } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, createTopology, destroyAllTopologies, type Topology } from '../daemon/topology';
import { startZksd, type ZksdProcess } from '../daemon/zksd-helpers';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0 && existsSync('/usr/sbin/nft');
const hasTmux = existsSync('/usr/bin/tmux') || existsSync('/usr/local/bin/tmux');
const d = describe.skipIf((!runnable || !hasTmux) && !process.env.CI);
const BIN = fileURLToPath(new URL('../../bin/zks-tui.js', import.meta.url));
const SERVER = join(tmpdir(), `zks-tui-test-${process.pid}.tmux`); // a private tmux server socket
const SESSION = 'zks-tui-test';
const PROMPT = 'zks-tui-e2e$ ';
const run = promisify(execFile);

const tmux = (...args: string[]): Promise<{ stdout: string }> => run('tmux', ['-S', SERVER, ...args], { timeout: 10_000 });
const capture = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', SESSION)).stdout;

async function paneUntil(pred: (pane: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let pane = '';
  while (Date.now() < deadline) {
    pane = await capture();
    if (pred(pane)) return pane;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the pane never showed ${what}; last capture:\n${pane}`);
}

afterAll(destroyAllTopologies);

d('zks-tui in tmux against zksd', () => {
  let topo: Topology;
  let zksd: ZksdProcess;

  beforeAll(async () => {
    topo = await createTopology();
    zksd = await startZksd(topo, []);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await topo?.destroy();
  });

  it('shows a curl flow through the tunnel with its destination and bytes; q gives the shell back', async () => {
    try {
      // A plain shell in a 100×30 terminal; zks-tui is typed into it like a user would.
      await tmux('new-session', '-d', '-s', SESSION, '-x', '100', '-y', '30', `env PS1='${PROMPT}' bash --norc --noprofile`);
      await paneUntil((p) => p.includes(PROMPT.trimEnd()), 'the shell prompt'); // capture-pane drops trailing blanks
      await tmux('send-keys', '-t', SESSION, `ZKS_RUN_DIR=${zksd.runDir} ${process.execPath} ${BIN}; echo "zks-tui exited $?"`, 'Enter');
      await paneUntil((p) => p.includes('zksd direct · kill switch ON'), 'the live header');

      // About 6 s of download at 1 MB/s, so the flow is live (with a rate) while we look.
      const curl = topo.exec('client', 'curl', ['-sS', '--limit-rate', '1M', '-o', '/dev/null', topo.url('/bytes/6000000', ADDR.tunnelOnly)], { timeoutMs: 30_000 });
      const row = /^\s*\d+ 10\.79\.1\.1:80\s+worker\s+established\s+(\S+ [kMG]?B)\s+\S+ [kMG]?B\s+(\S+ [kMG]?B)\s+(\S+ [kMG]?B)\s+\d+\w*$/m;
      const pane = await paneUntil((p) => {
        const m = row.exec(p);
        return m !== null && m[1] !== '0 B' && m[2] !== '0 B';
      }, 'the curl flow with a rate and bytes down');
      const [line, rateDown, down] = row.exec(pane)!;
      expect(line).toContain('10.79.1.1:80');
      expect(down).not.toBe('0 B');
      expect(rateDown).not.toBe('0 B');
      expect(pane).toMatch(/RELAY LINKS [1-9]/);
      expect(pane).toMatch(/#\d+ +\d+ streams +rtt /); // a number once the first keepalive is answered
      for (const l of pane.split('\n')) expect(l.length).toBeLessThanOrEqual(100);
      if (process.env.ZKS_TUI_CAPTURE) writeFileSync(process.env.ZKS_TUI_CAPTURE, pane);

      await tmux('send-keys', '-t', SESSION, 'q');
      const after = await paneUntil((p) => p.includes('zks-tui exited 0'), 'the shell after q');
      // The alternate screen is gone: the shell's screen is back, without the TUI's rows.
      expect(after).not.toContain('RELAY LINKS');
      expect(after.trimEnd().split('\n').at(-1)).toBe(PROMPT.trimEnd());
      expect((await curl).code).toBe(0);
    } finally {
      await tmux('kill-server').catch(() => {});
      rmSync(SERVER, { force: true }); // kill-server leaves the socket file
    }
    await expect(tmux('has-session', '-t', SESSION)).rejects.toThrow();
  });
});
