// TCP tunnels with real parts (docs/design/expose.md): the Worker in workerd (`zks worker`), `zks expose
// tcp://127.0.0.1:PORT` as the agent, `zks access` as the other end — a local port for curl, and --stdio as ssh's
// ProxyCommand to a real sshd. Checked: bytes both ways intact; a wrong secret or another id reaches nothing; the
// agent sends every stream to its one service whatever the client asks (no open proxy); two agents stand in for
// each other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, sha256, startCli, until, type CliProcess } from '../integration/harness';
import { haveSshTools, startSshd, type Sshd } from '../fixtures/sshd';
import { generateKey } from '../../src/cli/args';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys, tunnelRoomSecret } from '../../src/crypto/room';
import { decodeBase64Url } from '../../src/crypto/bytes';
import { TunnelPool } from '../../src/client/pool';

const describeSsh = haveSshTools || process.env.CI ? describe : describe.skip;
const procs: CliProcess[] = [];
const servers: Server[] = [];
let sshd: Sshd | undefined;
let url = '';
const key = generateKey();
const secret = generateKey();

/** An HTTP service on 127.0.0.1 that says who it is and echoes POST bodies' sha256. */
async function service(name: string): Promise<number> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => res.end(req.method === 'POST' ? sha256(Buffer.concat(parts)) : `service ${name}\n`));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as { port: number }).port;
}

const relayArgs = () => ['--relay', url, '--key', key];
const expose = async (port: number, id: string, s = secret) => {
  const p = await startCli(['expose', `tcp://127.0.0.1:${port}`, '--id', id, '--secret', s, ...relayArgs()]);
  procs.push(p);
  return p;
};
const access = async (id: string, s = secret) => {
  const p = await startCli(['access', '--id', id, '--secret', s, '--listen', '127.0.0.1:0', ...relayArgs()]);
  procs.push(p);
  return Number(/:(\d+)$/.exec(p.readyLine)![1]);
};
const curl = (port: number, extra: string[] = [], input?: Buffer) => run('curl', ['-sS', '--fail', ...extra, `http://127.0.0.1:${port}/`], { input, timeoutMs: 60_000 });

beforeAll(async () => {
  // The agents' control sockets (zks status) go to a private directory of this test, not the user's.
  process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'zks-tcp-run-'));
  const worker = await startCli(['worker', '--listen', '127.0.0.1:0', '--key', key]);
  procs.push(worker);
  url = /ws:\/\/\S+/.exec(worker.readyLine)![0];
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  for (const s of servers) s.close();
  sshd?.stop();
  rmSync(process.env.XDG_RUNTIME_DIR!, { recursive: true, force: true });
});

describe('zks expose tcp:// + zks access', () => {
  it('carries a local service both ways through the Worker: 20 MB POSTed, its sha256 answered', async () => {
    const port = await service('A');
    await expose(port, 'web');
    const local = await access('web');
    expect((await curl(local)).stdout.toString()).toBe('service A\n');
    const body = randomBytes(20 * 1024 * 1024);
    const r = await curl(local, ['--data-binary', '@-', '-H', 'content-type: application/octet-stream'], body);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe(sha256(body));
    // zks status lists the tunnel with its two connections (closed by now: curl is done).
    type Exposed = { tunnel: { id: string; kind: string; requests: number; inFlight: number; access: string } };
    let web: Exposed | undefined;
    for (let i = 0; i < 50 && !(web && web.tunnel.requests === 2 && web.tunnel.inFlight === 0); i++) {
      const json = JSON.parse((await run(process.execPath, ['bin/zks.js', 'status', '--json'])).stdout.toString()) as { exposed: Exposed[] };
      web = json.exposed.find((x) => x.tunnel.id === 'web');
    }
    expect(web?.tunnel).toMatchObject({ kind: 'tcp', requests: 2, inFlight: 0, access: 'secret' });
  });

  it('a wrong secret, or another id, reaches nothing: access says the tunnel is not reachable', async () => {
    const port = await service('B');
    await expose(port, 'private');
    for (const args of [['--id', 'private', '--secret', generateKey()], ['--id', 'other', '--secret', secret]]) {
      const r = await run(process.execPath, ['bin/zks.js', 'access', ...args, '--stdio', ...relayArgs()], { timeoutMs: 60_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/tunnel "(private|other)" is not reachable .*ZKS_ERR_EXIT_OFFLINE/);
      expect(r.stderr).not.toContain(secret);
    }
  });

  it('no open proxy: a client of the tunnel that names another target still lands on the one service', async () => {
    const a = await service('C');
    const elsewhere = await service('D');
    await expose(a, 'only');
    const room = await deriveRoomKeys(nodeCrypto, await tunnelRoomSecret(nodeCrypto, secret, 'only'));
    const pool = new TunnelPool({ url, key: decodeBase64Url(key)!, room });
    try {
      const r = await pool.open({ host: '127.0.0.1', port: elsewhere });
      if (!r.ok) throw new Error(r.message);
      const got: Buffer[] = [];
      const answered = new Promise<string>((resolve) => {
        r.stream.onData = (c) => (got.push(Buffer.from(c)), r.stream.consume(c.length));
        r.stream.onEnd = () => resolve(Buffer.concat(got).toString());
        r.stream.onClose = () => resolve(Buffer.concat(got).toString());
      });
      r.stream.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      expect(await answered).toMatch(/service C\n$/);
    } finally {
      await pool.stop();
    }
  });

  it('two agents with the same id and secret: the second stands by and takes over when the first goes', async () => {
    const port = await service('E');
    const first = await expose(port, 'ha');
    const second = await expose(port, 'ha');
    expect(second.readyLine).toMatch(/standing by/);
    const local = await access('ha');
    expect((await curl(local)).stdout.toString()).toBe('service E\n');
    const before = second.output().length;
    await first.kill();
    // The standing-by agent retries on its own schedule and attaches once the room is free.
    await until(() => /attached to the room/.test(second.output().slice(before)), 'the second agent attached', 60_000);
    // The access side's link went with the first agent: curl retries while its pool reconnects (a bounded loop).
    const r = await curl(local, ['--retry', '20', '--retry-all-errors', '--retry-delay', '1']);
    expect(r.stdout.toString(), r.stderr).toBe('service E\n');
  });
});

describeSsh('ssh through zks access --stdio (ProxyCommand)', () => {
  it('runs a command and moves 8 MB both ways', async () => {
    sshd = await startSshd();
    await expose(sshd.port, 'ssh');
    const proxy = [process.execPath, `${process.cwd()}/bin/zks.js`, 'access', '--id', 'ssh', '--secret', secret, '--stdio', ...relayArgs()].join(' ');
    const hello = await run('ssh', sshd.sshArgs(proxy, 'echo hello-through-a-tunnel'), { timeoutMs: 60_000 });
    expect(hello.stderr).toBe('');
    expect(hello.stdout.toString()).toBe('hello-through-a-tunnel\n');
    const data = randomBytes(8 * 1024 * 1024);
    const up = await run('ssh', sshd.sshArgs(proxy, 'sha256sum'), { input: data, timeoutMs: 60_000 });
    expect(up.stdout.toString().split(' ')[0]).toBe(sha256(data));
    const down = await run('ssh', sshd.sshArgs(proxy, 'head -c 8388608 /dev/zero'), { timeoutMs: 60_000 });
    expect(down.stdout.length).toBe(8 * 1024 * 1024);
  });
});
