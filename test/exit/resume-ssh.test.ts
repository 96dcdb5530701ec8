// An interactive ssh session survives a Worker restart (PROTOCOL.md §11.7), with the real command line: `zks worker`
// (workerd), `zks exit-peer`, `zks p2p-client`, a throw-away sshd and `ssh -tt` through the client's SOCKS5 port
// (ProxyCommand nc -X 5), all on loopback. The shell sets a variable; workerd is stopped (every WebSocket and the room
// are gone), a command is typed while it is down, workerd starts again on the same port. Once the session has resumed,
// the same shell answers both the command typed during the outage and a new one: same variable, same pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { generateKey } from '../../src/cli/args';
import { haveSshTools, startSshd } from '../fixtures/sshd';
import { freePort, startCli, until, type CliProcess } from '../integration/harness';

const haveTools = haveSshTools && existsSync('/usr/bin/nc');
// CI installs openssh-server and netcat-openbsd (.ci/run); elsewhere a missing tool skips rather than fails.
const describeSsh = haveTools || process.env.CI ? describe : describe.skip;

/** A failure deadline only: every wait below ends on an event (a log line, the shell's output). */
const EVENT_MS = 60_000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
});

/** `ssh -tt` with its stdin a pipe: a terminal on the far side, typed lines from the test. */
interface Terminal {
  type(line: string): void;
  /** Resolves with the match once the output so far (from `from` on) matches `re`; rejects if ssh exits first. */
  expect(re: RegExp, from?: number): Promise<RegExpMatchArray>;
  readonly output: string;
  exited: Promise<number>;
}

function terminal(child: ChildProcess): Terminal {
  let output = '';
  let code: number | null = null;
  const waiters = new Set<() => void>();
  const wake = () => { for (const w of [...waiters]) w(); };
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); wake(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); wake(); });
  const exited = new Promise<number>((resolve) => child.on('close', (c) => { code = c ?? -1; wake(); resolve(code); }));
  return {
    type: (line) => void child.stdin!.write(`${line}\n`),
    expect: (re, from = 0) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${re} from the shell within ${EVENT_MS} ms; it printed:\n${output.slice(from)}`)), EVENT_MS);
      const done = (err: Error | null, m?: RegExpMatchArray) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (err) reject(err);
        else resolve(m!);
      };
      const check = () => {
        const m = re.exec(output.slice(from));
        if (m) return done(null, m);
        if (code !== null) done(new Error(`ssh exited (${code}) before printing ${re}:\n${output.slice(from)}`));
      };
      waiters.add(check);
      check();
    }),
    get output() { return output; },
    exited,
  };
}

describeSsh('resume through the command line: interactive ssh', () => {
  it('an interactive ssh session survives a workerd restart and keeps its shell', async () => {
    const key = generateKey();
    const room = generateKey();
    const workerPort = await freePort();
    const relay = `ws://127.0.0.1:${workerPort}`;
    const startWorker = async (): Promise<CliProcess> => {
      const w = await startCli(['worker', '--listen', `127.0.0.1:${workerPort}`, '--key', key]);
      cleanups.push(() => w.kill());
      return w;
    };
    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    let worker = await startWorker();
    const exit = await startCli(['exit-peer', '--relay', relay, '--key', key, '--room', room, '--allow-lan', '--no-direct']);
    cleanups.push(() => exit.kill());
    const client = await startCli(['p2p-client', '--relay', relay, '--key', key, '--room', room, '--listen', '127.0.0.1:0', '--no-direct']);
    cleanups.push(() => client.kill());
    const socksPort = Number(/:(\d+) \(/.exec(client.readyLine)![1]);
    onTestFailed(() => console.error(`--- p2p-client:\n${client.output()}\n--- exit-peer:\n${exit.output()}\n--- zks worker:\n${worker.output()}`));

    // A login with a terminal running an interactive sh, its input typed by the test.
    const ssh = spawn('ssh', ['-tt', ...sshd.sshArgs(`nc -X 5 -x 127.0.0.1:${socksPort} %h %p`, 'exec sh -i')], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.push(() => void ssh.kill('SIGKILL'));
    const term = terminal(ssh);
    // The terminal echoes what is typed ("$X", "$$"); only the shell's answer has digits in their place.
    term.type('X=before$$; echo "set:$X:$$"');
    const set = await term.expect(/set:before(\d+):(\d+)/);
    const pid = set[2]!;
    expect(set[1]).toBe(pid);

    // The Worker goes away; a command typed meanwhile waits in the session; the Worker comes back.
    const resumedBefore = (client.output().match(/session resumed .*after \d+ ms/g) ?? []).length;
    await worker.kill();
    const mark = term.output.length;
    term.type('echo "during:$X:$$"');
    worker = await startWorker();
    await until(() => (client.output().match(/session resumed .*after \d+ ms/g) ?? []).length > resumedBefore, 'the p2p-client to resume its session', EVENT_MS);
    const during = await term.expect(/during:before(\d+):(\d+)/, mark);
    expect([during[1], during[2]]).toEqual([pid, pid]);

    // A new command after the resume: still the same shell, with its variable.
    const mark2 = term.output.length;
    term.type('echo "after:$X:$$"');
    const after = await term.expect(/after:before(\d+):(\d+)/, mark2);
    expect([after[1], after[2]]).toEqual([pid, pid]);

    // The exit peer kept the session (and sshd's connection) rather than starting a new one; the shell ends cleanly.
    expect(exit.output()).toMatch(/lost its WebSocket .*kept 60 s/);
    expect(exit.output()).toMatch(/session \d+: resumed as session \d+/);
    expect(client.output()).toMatch(/WebSocket lost \(.*\); resuming the session/);
    term.type('exit');
    expect(await term.exited).toBe(0);
  }, 120_000);
});
