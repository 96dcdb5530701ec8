// `zks-tui` as a process with stdout on a pipe: plain-text snapshots instead of the Ink view, the socket it
// picks (zksd's, else the zks client's, or --socket), the answer when nothing runs, and --watch.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { flow, scriptedDaemon, type ScriptedDaemon } from './scripted-daemon';

const BIN = fileURLToPath(new URL('../../bin/zks-tui.js', import.meta.url));

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function daemon(name?: string): Promise<ScriptedDaemon> {
  const d = await scriptedDaemon(name);
  cleanup.push(() => d.destroy());
  return d;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs zks-tui to completion; with `until`, sends SIGTERM once stdout satisfies it. Killed after 20 s regardless. */
function run(args: string[], env: NodeJS.ProcessEnv = {}, until?: (out: string) => boolean, onOut?: (out: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Run = { code: null, stdout: '', stderr: '' };
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      r.stdout += c;
      onOut?.(r.stdout);
      if (until?.(r.stdout)) child.kill('SIGTERM');
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (r.stderr += c));
    child.on('close', (code) => {
      clearTimeout(kill);
      r.code = code;
      resolve(r);
    });
  });
}

describe('zks-tui without a terminal', () => {
  it('prints one snapshot (status + flow table) and exits 0', async () => {
    const d = await daemon();
    d.flows = [flow(5, { destination: '10.79.1.1:80', target: '10.79.1.1:80', bytesDown: 1_048_576, rateDown: 300_000 })];
    const r = await run(['--socket', d.path]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/\u001B/); // no colour, no cursor movement
    expect(r.stdout).toContain(`socket       ${d.path}`);
    expect(r.stdout).toContain('mode         direct (the Worker connects)');
    expect(r.stdout).toContain('kill switch  ON');
    expect(r.stdout).toContain('relay links  #1 3 streams rtt 21.4 ms; #2 0 streams rtt –');
    expect(r.stdout).toContain('bypass       192.168.0.0/16');
    expect(r.stdout).toMatch(/ID PROTO DESTINATION\s+PATH\s+STATE\s+DOWN\/s\s+UP\/s\s+DOWN\s+UP\s+AGE\n/);
    expect(r.stdout).toMatch(/\n\s+5 tcp\s+10\.79\.1\.1:80\s+worker established\s+300\.0 kB\s+0 B\s+1\.0 MB\s+812 B\s+5s\n/);
  });

  it('watches zksd at $ZKS_RUN_DIR/zksd.sock by default, else the zks client socket under $XDG_RUNTIME_DIR', async () => {
    const zksd = await daemon('zksd.sock');
    // The client's socket under its own temp dir, as <XDG_RUNTIME_DIR>/zks-<uid>/client.sock.
    const client = await daemon(join('xdg', `zks-${process.getuid!()}`, 'client.sock'));
    client.status = { mode: 'p2p-client', relay: 'wss://r.example', killSwitch: null, connections: [], flows: 0 };
    const env = { ZKS_RUN_DIR: zksd.dir, XDG_RUNTIME_DIR: join(client.dir, 'xdg') };

    const both = await run([], env);
    expect(both.stdout).toContain(`socket       ${zksd.path}`);
    await zksd.stop();
    const onlyClient = await run([], env);
    expect(onlyClient.code).toBe(0);
    expect(onlyClient.stdout).toContain(`socket       ${client.path}`);
    expect(onlyClient.stdout).toContain('mode         p2p-client');
    expect(onlyClient.stdout).toContain('kill switch  n/a');
    expect(onlyClient.stdout).toContain('no flows');
  });

  it('nothing running: exit 1 naming both sockets and what to do', async () => {
    const d = await daemon();
    await d.stop();
    const r = await run([], { ZKS_RUN_DIR: d.dir, XDG_RUNTIME_DIR: d.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `zks-tui: zksd is not running: nothing answers at ${d.dir}/zksd.sock (nor a zks client at ${d.dir}/zks-${process.getuid!()}/client.sock)\n` +
        'Start it with `sudo zksd up` (or `zks socks5`), or pass --socket PATH.\n',
    );
  });

  it('--watch: waits for the daemon, then a snapshot every second until SIGTERM', async () => {
    const d = await daemon();
    await d.stop();
    d.flows = [flow(9)];
    let started = false;
    const r = await run(['--watch', '--socket', d.path], {}, (out) => out.split('--- ').length >= 3, (out) => {
      if (!started && out.includes('waiting for zksd')) {
        started = true;
        void d.start();
      }
    });
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`waiting for zksd at ${d.path}\n`)).toBe(true);
    const snaps = r.stdout.split(/^--- /m).slice(1);
    expect(snaps.length).toBeGreaterThanOrEqual(2);
    for (const s of snaps) expect(s).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z\nsocket {7}/);
    expect(snaps[0]).toContain('93.184.216.34:443');
  });

  it('a bad argument: exit 2 with the usage', async () => {
    const r = await run(['--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('zks-tui: unknown argument "--frobnicate"');
    expect(r.stderr).toContain('usage: zks-tui [--socket PATH] [--watch]');
  });
});
