// `zksd` end to end in the namespace topology (test/daemon/topology.ts): the Worker, HTTP/DNS/sshd/iperf3 in
// "world"; zksd in "client", whose default route then points into zks0. Applications in "client" are configured
// for nothing: curl, dig, ssh and iperf3 reach world's tunnel-only address 10.79.1.1 (which world refuses from the
// veth) only through the netstack and the Worker. Kill switch, bypass routes, crash recovery and an exact
// restore on down are checked against captures on the client's veth and `ip`/`nft` listings.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDR, IFACES, PORTS, createTopology, destroyAllTopologies, expectedSha256, otherThan, withoutNeighbour, type Topology,
} from './topology';
import { snapshotHost, startZksd, zksIn, type ZksdProcess } from './zksd-helpers';
import { ControlClient } from '../../src/control/client';

const runnable = existsSync('/dev/net/tun') && process.getuid?.() === 0 && existsSync('/usr/sbin/nft');
const d = describe.skipIf(!runnable && !process.env.CI);
const MB = 1_000_000;
const T = ADDR.tunnelOnly;

afterAll(destroyAllTopologies);

interface FlowRow { id: number; source: string; destination: string; bytesDown: number; state: string }

/** The first flow in zksd's flow events that `match`es: how a test knows a transfer is under way. */
async function flowWhere(runDir: string, match: (f: FlowRow) => boolean, what: string): Promise<FlowRow> {
  const c = await ControlClient.connect(join(runDir, 'zksd.sock'));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<FlowRow>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no flow event showed ${what} within 30 s`)), 30_000); // failure deadline
      c.onEvent = (e) => {
        const f = e.event === 'flows' ? (e.data as FlowRow[]).find(match) : undefined;
        if (f) resolve(f);
      };
      c.request('subscribe', { topics: ['flows'] }).catch(reject);
    });
  } finally {
    clearTimeout(timer);
    c.close();
  }
}

d('zksd (direct mode) in a client namespace', () => {
  let topo: Topology;
  let zksd: ZksdProcess;
  let baseline: string;

  beforeAll(async () => {
    topo = await createTopology();
    baseline = await snapshotHost(topo);
    // The topology's Worker keeps direct-mode sessions: a short grace, so that the kill-switch test sees the tunnel
    // give up (and DNS answer SERVFAIL) soon after the Worker is gone, not after the default 60 s.
    zksd = await startZksd(topo, ['--resume-grace', '5']);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await topo?.destroy();
  });

  it('is up: status over the control socket, routes into zks0, kill switch table present', async () => {
    const st = await zksIn(topo, zksd, ['status', '--json']);
    expect(st.code).toBe(0);
    const s = JSON.parse(st.stdout.toString()) as Record<string, unknown>;
    expect(s).toMatchObject({ mode: 'direct', tun: 'zks0', killSwitch: true, ipv6: 'carry', resolver: '100.77.0.53' });
    const text = await zksIn(topo, zksd, ['status']);
    expect(text.stdout.toString()).toMatch(/kill switch\s+ON/);
    const route = await topo.exec('client', 'ip', ['route', 'get', T]);
    expect(route.stdout.toString()).toContain('dev zks0');
    const relay = await topo.exec('client', 'ip', ['route', 'get', ADDR.world]);
    expect(relay.stdout.toString()).toContain(`dev ${IFACES.clientToWorld}`);
    expect((await topo.exec('client', 'nft', ['list', 'table', 'inet', 'zks_killswitch'])).code).toBe(0);
  });

  it('relay exempt for every process: another process reaching the relay address:port is refused; zksd\'s link carries on', async () => {
    // The Worker answers plain HTTP on its port; without the mark check any process could talk to it (or, on
    // workers.dev, to any site on the same anycast address) outside the tunnel.
    const other = await topo.exec('client', 'curl', ['-sS', '--max-time', '5', `http://${ADDR.world}:${PORTS.worker}/`]);
    expect(other.code, other.stderr).toBe(7); // couldn't connect: refused locally by the kill switch
    expect(other.stderr).toMatch(/Connection refused|Couldn't connect/);
    const through = await topo.exec('client', 'curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', topo.url('/', T)]);
    expect(through.stdout.toString()).toBe('200');
  });

  it('group member may turn the kill switch off: a zks-group member reads status, its killswitch off / route.add / down are refused; root\'s work', async () => {
    const GROUP = 4242; // stands in for group `zks`: what zksd sets up when that group exists (run dir 0710, socket 0660)
    const sock = join(zksd.runDir, 'zksd.sock');
    chmodSync(topo.dir, 0o711);
    chownSync(zksd.runDir, 0, GROUP);
    chmodSync(zksd.runDir, 0o710);
    chownSync(sock, 0, GROUP);
    const script = `const s = require('node:net').connect(${JSON.stringify(sock)});
      let buf = ''; s.on('data', (d) => { buf += d; if (buf.split('\\n').length > 4) { console.log(buf.trim()); process.exit(0); } });
      s.on('error', (e) => { console.log(JSON.stringify({ connectError: e.code })); process.exit(0); });
      s.write(['{"v":1,"id":1,"cmd":"status"}', '{"v":1,"id":2,"cmd":"killswitch","args":{"on":false}}',
        '{"v":1,"id":3,"cmd":"route.add","args":{"cidr":"0.0.0.0/2"}}', '{"v":1,"id":4,"cmd":"down"}'].join('\\n') + '\\n');`;
    const member = await new Promise<string>((resolve) => {
      execFile('setpriv', ['--reuid=65534', '--regid=65534', `--groups=${GROUP}`, process.execPath, '-e', script], { timeout: 20_000 },
        (_e, stdout, stderr) => resolve(String(stdout).trim() || String(stderr)));
    });
    const [status, ...changes] = member.split('\n').map((l) => JSON.parse(l) as { ok: boolean; result?: { killSwitch?: boolean }; error?: { code: string } });
    expect(status).toMatchObject({ ok: true, result: { killSwitch: true } });
    expect(changes.map((r) => r.error?.code)).toEqual(['ZKS_ERR_CONTROL_FORBIDDEN', 'ZKS_ERR_CONTROL_FORBIDDEN', 'ZKS_ERR_CONTROL_FORBIDDEN']);
    expect((await topo.exec('client', 'nft', ['list', 'table', 'inet', 'zks_killswitch'])).code).toBe(0); // still on
    const root = await ControlClient.connect(sock);
    try {
      expect(await root.request('killswitch', { on: false })).toEqual({ killSwitch: false });
      expect((await topo.exec('client', 'nft', ['list', 'table', 'inet', 'zks_killswitch'])).code).not.toBe(0);
      expect(await root.request('killswitch', { on: true })).toEqual({ killSwitch: true });
    } finally {
      root.close();
    }
    expect((await topo.exec('client', 'nft', ['list', 'table', 'inet', 'zks_killswitch'])).code).toBe(0);
  });

  it('curl moves 100 MB down and 20 MB up intact, no proxy configured', async () => {
    const down = await topo.exec('client', 'curl', ['-sS', '--max-time', '120', '-o', '-', topo.url(`/bytes/${100 * MB}`, T)], { timeoutMs: 130_000 });
    expect(down.stderr).toBe('');
    expect(down.stdout.length).toBe(100 * MB);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(down.stdout).digest('hex')).toBe(expectedSha256(100 * MB));
    const body = down.stdout.subarray(0, 20 * MB);
    const up = await topo.exec('client', 'curl', ['-sS', '--max-time', '60', '--data-binary', '@-', topo.url('/sha256', T)], { input: body, timeoutMs: 70_000 });
    expect(up.stdout.toString().trim()).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('DNS: names resolve through the tunnel (TCP at the server), none over UDP from the client', async () => {
    await topo.dns.reset();
    const dig = await topo.exec('client', 'dig', ['+short', '+tries=1', '+time=3', 'tunnel-only.zks.test']);
    expect(dig.stdout.toString().trim()).toBe(T);
    const byName = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', 'http://tunnel-only.zks.test/ip']);
    expect(byName.code).toBe(0);
    const stats = await topo.dns.stats();
    expect(stats.tcp).toBeGreaterThanOrEqual(2);
    expect(stats.udp).toBe(0);
    const nx = await topo.exec('client', 'dig', ['+tries=1', '+time=3', 'nothing.zks.test']);
    expect(nx.stdout.toString()).toContain('NXDOMAIN');
  });

  it('IPv6 is carried: curl to an IPv6-only tunnel target goes through zks0', async () => {
    const route = await topo.exec('client', 'ip', ['-6', 'route', 'get', ADDR.tunnelOnly6]);
    expect(route.stdout.toString()).toContain('dev zks0');
    const r = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', '-o', '-', topo.url(`/bytes/${MB}`, ADDR.tunnelOnly6)], { timeoutMs: 15_000 });
    expect(r.stderr).toBe('');
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(expectedSha256(MB));
  });

  it('ssh runs a command and moves 8 MB through the tunnel', async () => {
    const hello = await topo.ssh('echo hello-through-zksd', undefined, { host: T });
    expect(hello.stdout.toString()).toBe('hello-through-zksd\n');
    const { randomBytes, createHash } = await import('node:crypto');
    const data = randomBytes(8 * 1024 * 1024);
    const r = await topo.ssh('sha256sum', data, { host: T, timeoutMs: 60_000 });
    expect(r.stdout.toString().split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('iperf3 both directions', async () => {
    for (const reverse of [false, true]) {
      const r = await topo.exec('client', 'iperf3', ['-c', T, '-p', String(PORTS.iperf), '-t', '2', '-J', ...(reverse ? ['-R'] : [])], { timeoutMs: 30_000 });
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout.toString()) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
      expect(j.end.sum_received.bytes).toBeGreaterThan(10 * MB);
    }
  });

  it('200 concurrent curls, each body intact', async () => {
    const dir = join(topo.dir, 'many');
    const r = await topo.exec('client', 'curl', [
      '-sS', '--no-progress-meter', '--parallel', '--parallel-max', '200', '--max-time', '60', '--create-dirs',
      '-o', `${dir}/#1`, topo.url('/bytes/[20000-20199]', T),
    ], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const { createHash } = await import('node:crypto');
    const files = readdirSync(dir);
    expect(files).toHaveLength(200);
    for (const f of files) expect(createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')).toBe(expectedSha256(Number(f)));
  });

  it('a closed port fails fast with "connection refused"', async () => {
    const r = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', `http://${T}:${PORTS.closed}/`], { timeoutMs: 15_000 });
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/refused|Couldn't connect/i); // an RST, not a timeout (curl exit code 28)
  });

  it('bypass: added live, seen leaving on the veth; tunnel flows untouched; persisted; removed again', async () => {
    const cap = await topo.capture('client', IFACES.clientToWorld);
    // A rate-limited download through the tunnel spans the route change.
    const slow = topo.exec('client', 'curl', ['-sS', '--limit-rate', '2M', '-o', '-', topo.url(`/bytes/${6 * MB}`, T)], { timeoutMs: 30_000 });
    await flowWhere(zksd.runDir, (f) => f.destination === `${T}:80` && f.bytesDown > 0, 'the download under way');
    const add = await zksIn(topo, zksd, ['route', 'add', '10.79.2.0/24', '--bypass']);
    expect(add.stdout.toString()).toContain('added bypass 10.79.2.0/24');
    const direct = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', topo.url('/ip', ADDR.bypass)]);
    expect(direct.stdout.toString().trim()).toBe(ADDR.client); // the server saw the client itself: not tunnelled
    const tunnelled = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', topo.url('/', T)]);
    expect(tunnelled.code).toBe(0);
    const done = await slow;
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(done.stdout).digest('hex')).toBe(expectedSha256(6 * MB));
    const { packets } = await cap.stop();
    expect(packets.some((p) => p.dst === ADDR.bypass && p.dstPort === 80)).toBe(true);
    expect(packets.some((p) => p.dst === T || p.src === T)).toBe(false);
    const list = await zksIn(topo, zksd, ['route', 'list']);
    expect(list.stdout.toString()).toContain('10.79.2.0/24 bypass');
    expect(JSON.parse(readFileSync(join(zksd.configDir, 'zksd.json'), 'utf8'))).toMatchObject({ bypass: ['10.79.2.0/24'] });
    const del = await zksIn(topo, zksd, ['route', 'del', '10.79.2.0/24']);
    expect(del.code).toBe(0);
    const again = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', topo.url('/ip', ADDR.bypass)]);
    expect(again.stdout.toString().trim()).not.toBe(ADDR.client); // through the Worker now
  });

  it('control socket: 50 subscribers get flow events with rates; flow.close resets a live flow', async () => {
    const path = join(zksd.runDir, 'zksd.sock');
    const subs = await Promise.all(Array.from({ length: 50 }, () => ControlClient.connect(path)));
    const seen: Array<Array<{ id: number; source: string; destination: string; bytesDown: number; rateDown: number; state: string; ageMs: number }>> = [];
    const logs: string[] = [];
    subs.forEach((c, i) => {
      c.onEvent = (e) => {
        if (i === 0 && e.event === 'flows') seen.push(e.data as (typeof seen)[number]);
        if (i === 0 && e.event === 'log') logs.push((e.data as { message: string }).message);
      };
    });
    await Promise.all(subs.map((c) => c.request('subscribe', { topics: ['flows', 'status', 'log'] })));
    try {
      // Rates: a rate-limited 20 MB download; the daemon's 2 s sliding-window rate must agree with the flow's
      // average rate (bytes ÷ time) — curl's limiter bursts, so its nominal limit is not the reference.
      const limited = await topo.exec('client', 'curl', ['-sS', '--limit-rate', '2M', '-o', '/dev/null', '-w', '%{local_port}', topo.url(`/bytes/${20 * MB}`, T)], { timeoutMs: 30_000 });
      expect(limited.code).toBe(0);
      const source = `100.77.0.1:${limited.stdout.toString()}`;
      const samples = seen.flat().filter((f) => f.source === source && f.state === 'established' && f.ageMs > 1_000);
      expect(samples.length, 'flow events while the download ran').toBeGreaterThan(4);
      const last = samples.at(-1)!;
      const average = (last.bytesDown * 1000) / last.ageMs;
      const rates = samples.map((f) => f.rateDown).sort((a, b) => a - b);
      const median = rates[Math.floor(rates.length / 2)]!;
      expect(median).toBeGreaterThan(average / 3);
      expect(median).toBeLessThan(average * 3);

      // flow.close on a live flow: the application sees a reset.
      const slow = topo.exec('client', 'curl', ['-sS', '--limit-rate', '2M', '-o', '/dev/null', topo.url(`/bytes/${20 * MB}`, T)], { timeoutMs: 30_000 });
      const flow = await flowWhere(zksd.runDir,
        (f) => f.destination === `${T}:80` && f.state === 'established' && f.source !== source && f.bytesDown > 0, 'the second download');
      const closed = await subs[1].request('flow.close', { id: flow.id });
      expect(closed).toEqual({ closed: flow.id });
      const r = await slow;
      expect(r.code).not.toBe(0); // the application saw a reset, not a clean end
      // zksd publishes the log event to every subscriber before it answers flow.close: on subscriber 0's own
      // connection, the answer to a later request comes after it.
      await subs[0].request('status');
      expect(logs.some((l) => l.includes(`flow ${flow.id} closed by the operator`))).toBe(true);
      const bad = await subs[2].request('flow.close', { id: 999_999 }).catch((e: Error) => e.message);
      expect(bad).toMatch(/no live flow/);
    } finally {
      for (const c of subs) c.close();
    }
  });

  it('kill switch: with the Worker gone nothing but relay traffic leaves — no TCP, no DNS, no IPv6', async () => {
    const cap = await topo.capture('client', IFACES.clientToWorld);
    const slow = topo.exec('client', 'curl', ['-sS', '--limit-rate', '1M', '-o', '/dev/null', topo.url(`/bytes/${20 * MB}`, T)], { timeoutMs: 40_000 });
    await flowWhere(zksd.runDir, (f) => f.destination === `${T}:80` && f.bytesDown > 0, 'the download under way');
    await zksd.killWorker();
    const interrupted = await slow;
    expect(interrupted.code).not.toBe(0); // an error, never a silently short file
    const attempts = await Promise.all([
      topo.exec('client', 'curl', ['-sS', '--max-time', '3', topo.url('/', T)]),
      topo.exec('client', 'curl', ['-sS', '--max-time', '3', topo.url('/', ADDR.world)]), // on-link: the connected route would take it
      topo.exec('client', 'curl', ['-sS', '--max-time', '3', topo.url('/', ADDR.world6)]),
      topo.exec('client', 'dig', ['+tries=1', '+time=2', `@${ADDR.world}`, 'target.zks.test']),
      topo.exec('client', 'dig', ['+tries=1', '+time=2', '+tcp', `@${ADDR.world}`, 'target.zks.test']),
    ]);
    attempts.forEach((a, i) => expect(a.code, `attempt ${i}: ${a.stdout.toString()} ${a.stderr}`).not.toBe(0));
    // The system resolver is zksd's: it answers at once, SERVFAIL, since the tunnel is down.
    const sys = await topo.exec('client', 'dig', ['+tries=1', '+time=3', 'target.zks.test']);
    expect(sys.stdout.toString()).toContain('SERVFAIL');
    const { packets } = await cap.stop();
    expect(otherThan(withoutNeighbour(packets), [{ host: ADDR.world, port: PORTS.worker }])).toEqual([]);
  });

  it('a crashed zksd (SIGKILL) leaves the kill switch up; `zksd down` then restores everything exactly', async () => {
    await zksd.kill('SIGKILL');
    expect((await topo.exec('client', 'nft', ['list', 'table', 'inet', 'zks_killswitch'])).code).toBe(0);
    const leak = await topo.exec('client', 'curl', ['-sS', '--max-time', '3', topo.url('/', ADDR.world)]);
    expect(leak.code).not.toBe(0);
    const down = await zksIn(topo, zksd, ['down'], 'zksd');
    expect(down.stdout.toString()).toMatch(/undid/);
    expect(await snapshotHost(topo)).toBe(baseline);
    const works = await topo.exec('client', 'curl', ['-sS', '--max-time', '5', topo.url('/', ADDR.world)]);
    expect(works.code).toBe(0);
  });
});

d('zksd (relay mode: room → exit peer)', () => {
  let topo: Topology;
  let zksd: ZksdProcess;
  let baseline: string;

  beforeAll(async () => {
    topo = await createTopology({ exitPeer: true, iperf: false });
    baseline = await snapshotHost(topo);
    zksd = await startZksd(topo, ['--room', topo.roomSecret!]);
  }, 90_000);
  afterAll(async () => {
    await zksd?.stop();
    await topo?.destroy();
  });

  it('curl 20 MB and ssh through the exit peer; flows show path "exit"', async () => {
    const down = await topo.exec('client', 'curl', ['-sS', '--max-time', '60', '-o', '-', topo.url(`/bytes/${20 * MB}`, T)], { timeoutMs: 70_000 });
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(down.stdout).digest('hex')).toBe(expectedSha256(20 * MB));
    const hello = await topo.ssh('echo via-exit', undefined, { host: T });
    expect(hello.stdout.toString()).toBe('via-exit\n');
    const flows = await zksIn(topo, zksd, ['flows', '--closed', '--json']);
    const list = JSON.parse(flows.stdout.toString()) as Array<{ path: string; destination: string; bytesDown: number }>;
    expect(list.some((f) => f.path === 'exit' && f.destination === `${T}:80` && f.bytesDown >= 20 * MB)).toBe(true);
    const st = JSON.parse((await zksIn(topo, zksd, ['status', '--json'])).stdout.toString()) as { mode: string };
    expect(st.mode).toBe('relay');
  });

  it('`zksd down` restores routes, rules, nftables, resolv.conf and links exactly', async () => {
    const down = await zksIn(topo, zksd, ['down'], 'zksd');
    expect(down.code).toBe(0);
    await zksd.exited();
    expect(await snapshotHost(topo)).toBe(baseline);
  });
});

d('zksd up without --foreground (the default a user runs)', () => {
  let topo: Topology;

  beforeAll(async () => {
    topo = await createTopology({ iperf: false, ssh: false });
  }, 90_000);
  afterAll(async () => {
    await topo?.destroy();
  });

  it('detaches once the tunnel works, prints status, and `zksd down` stops it and restores the host', async () => {
    const baseline = await snapshotHost(topo);
    const env = { ...process.env, ZKS_RUN_DIR: join(topo.dir, 'run'), ZKS_ZKSD_CONFIG_DIR: join(topo.dir, 'etc'), ZKS_CONFIG_DIR: join(topo.dir, 'cfg') };
    const bin = (name: string) => join(fileURLToPath(new URL('../../', import.meta.url)), `bin/${name}.js`);
    const up = await topo.exec('client', process.execPath, [bin('zksd'), 'up', '--relay', topo.relayUrl!, '--key', topo.key!, '--dns-upstream', `${ADDR.world}:${PORTS.dns}`], { env, timeoutMs: 60_000 });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.toString()).toMatch(/zksd up \(pid \d+, log .*zksd\.log\)/);
    expect(up.stdout.toString()).toMatch(/kill switch\s+ON/);
    const again = await topo.exec('client', process.execPath, [bin('zksd'), 'up', '--foreground', '--relay', topo.relayUrl!, '--key', topo.key!], { env, timeoutMs: 30_000 });
    expect(again.stderr.toString()).toMatch(/already running.*\[ZKS_ERR_ALREADY_RUNNING\]/);
    const curl = await topo.exec('client', 'curl', ['-sS', '--max-time', '10', topo.url('/ip', T)]);
    expect(curl.code).toBe(0);
    const down = await topo.exec('client', process.execPath, [bin('zksd'), 'down'], { env, timeoutMs: 30_000 });
    expect(down.stdout.toString()).toMatch(/zksd stopped/);
    expect(await snapshotHost(topo)).toBe(baseline);
    expect(readFileSync(join(topo.dir, 'run', 'zksd.log'), 'utf8')).toMatch(/stopping: down requested/);
  });
});
