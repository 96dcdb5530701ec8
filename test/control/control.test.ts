// The control socket with real unix sockets: request/response in order, every kind of bad line answered with an
// error while the connection stays usable, the 64 KiB line cap, the socket's mode, an unprivileged user
// (setpriv to nobody) refused by the file mode, and a member of the socket's group (nobody with that supplementary
// group) who may read but not change (SO_PEERCRED through the addon).
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client';
import { LineSplitter, MAX_LINE_BYTES, parseRequest } from '../../src/control/protocol';
import { startControlServer, type ControlServer, type ControlServerOptions } from '../../src/control/server';
import { peerUid } from '../../src/daemon/tun/sockets';
import { ZksError } from '../../src/errors/zks-error';

let server: ControlServer | undefined;
let dir = '';

afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The daemon's own way of telling who connected (zksd passes the same). */
const ZKSD_PEER: ControlServerOptions = { peerUid };

async function start(options: ControlServerOptions = ZKSD_PEER): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'zks-ctl-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'zksd.sock');
  let killSwitch = true;
  server = await startControlServer(path, async (cmd, args) => {
    if (cmd === 'status') return { pid: process.pid, killSwitch };
    if (cmd === 'killswitch') return { killSwitch: (killSwitch = args.on === true) };
    if (cmd === 'route.add') {
      if (typeof args.cidr !== 'string') throw new ZksError('ZKS_ERR_CONTROL_REQUEST', 'route.add needs args.cidr');
      await new Promise((r) => setTimeout(r, 20)); // a slow handler must not reorder responses
      return { bypass: [args.cidr] };
    }
    throw new Error('boom');
  }, options);
  return path;
}

/** Sends raw text and collects `n` response lines. */
function raw(path: string, text: string, n: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`only got: ${buf}`)); }, 5_000);
    s.on('data', (d) => {
      buf += d.toString();
      const lines = buf.split('\n').filter(Boolean);
      if (lines.length >= n) {
        clearTimeout(timer);
        s.destroy();
        resolve(lines.map((l) => JSON.parse(l) as Record<string, unknown>));
      }
    });
    s.on('error', reject);
    s.write(text);
  });
}

describe('control socket', () => {
  it('answers in request order, with the request ids', async () => {
    const path = await start();
    const c = await ControlClient.connect(path);
    const [a, b, d] = await Promise.all([
      c.request('route.add', { cidr: '10.0.0.0/8' }),
      c.request('status'),
      c.request('route.add', { cidr: '192.168.0.0/16' }),
    ]);
    expect(a).toEqual({ bypass: ['10.0.0.0/8'] });
    expect(b).toEqual({ pid: process.pid, killSwitch: true });
    expect(d).toEqual({ bypass: ['192.168.0.0/16'] });
    c.close();
  });

  it('answers bad lines with errors and keeps the connection usable', async () => {
    const path = await start();
    const lines = [
      'not json',
      '[1,2]',
      '{"v":1,"cmd":"status"}',
      '{"v":2,"id":5,"cmd":"status"}',
      '{"v":1,"id":6,"cmd":"nope"}',
      '{"v":1,"id":7,"cmd":"status","args":[1]}',
      '{"v":1,"id":8,"cmd":"route.add"}',
      '{"v":1,"id":9,"cmd":"flows"}',
      '{"v":1,"id":10,"cmd":"status"}',
    ];
    const got = await raw(path, lines.join('\n') + '\n', lines.length);
    const codes = got.map((r) => (r.ok ? 'ok' : (r.error as { code: string }).code));
    expect(codes).toEqual([
      'ZKS_ERR_CONTROL_REQUEST', 'ZKS_ERR_CONTROL_REQUEST', 'ZKS_ERR_CONTROL_REQUEST', 'ZKS_ERR_CONTROL_VERSION',
      'ZKS_ERR_CONTROL_REQUEST', 'ZKS_ERR_CONTROL_REQUEST', 'ZKS_ERR_CONTROL_REQUEST', 'ZKS_ERR_INTERNAL', 'ok',
    ]);
    expect(got.map((r) => r.id)).toEqual([null, null, null, 5, 6, 7, 8, 9, 10]);
    expect(got.every((r) => r.v === 1)).toBe(true);
  });

  it('skips a line over 64 KiB without buffering it, then serves the next request', async () => {
    const path = await start();
    const huge = `{"v":1,"id":1,"cmd":"status","args":{"x":"${'a'.repeat(MAX_LINE_BYTES + 10)}"}}`;
    const got = await raw(path, `${huge}\n{"v":1,"id":2,"cmd":"status"}\n`, 2);
    expect(got[0]).toMatchObject({ ok: false, id: null, error: { code: 'ZKS_ERR_CONTROL_REQUEST' } });
    expect(got[1]).toMatchObject({ ok: true, id: 2 });
  });

  it('creates the socket 0660 and refuses a user who is neither root nor in the zks group', async () => {
    const path = await start();
    expect(statSync(path).mode & 0o777).toBe(0o660);
    const script = `require('node:net').connect(${JSON.stringify(path)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const out = await new Promise<string>((resolve) => {
      execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { timeout: 10_000 }, (_e, stdout) => resolve(String(stdout).trim()));
    });
    expect(out).toBe('EACCES');
  });

  it('group member may turn the kill switch off: a zks-group member reads status, but its killswitch off is refused; root\'s works', async () => {
    const path = await start();
    const GROUP = 4242; // stands in for group `zks` (no /etc/group entry needed for setpriv)
    // What zksd does when group `zks` exists (run-dir.ts, server.ts): the dir 0710 and the socket in that group.
    chownSync(dir, 0, GROUP);
    chmodSync(dir, 0o710);
    chownSync(path, 0, GROUP);
    // A real other user: nobody, with the socket's group as its only supplementary group.
    const script = `const s = require('node:net').connect(${JSON.stringify(path)});
      let buf = ''; s.on('data', (d) => { buf += d; if (buf.split('\\n').length > 4) { console.log(buf.trim()); process.exit(0); } });
      s.on('error', (e) => { console.log(JSON.stringify({ connectError: e.code })); process.exit(0); });
      s.write(['{"v":1,"id":1,"cmd":"status"}', '{"v":1,"id":2,"cmd":"killswitch","args":{"on":false}}',
        '{"v":1,"id":3,"cmd":"route.add","args":{"cidr":"0.0.0.0/2"}}', '{"v":1,"id":4,"cmd":"down"}'].join('\\n') + '\\n');`;
    const out = await new Promise<string>((resolve) => {
      execFile('setpriv', ['--reuid=65534', '--regid=65534', `--groups=${GROUP}`, process.execPath, '-e', script], { timeout: 10_000 },
        (_e, stdout, stderr) => resolve(String(stdout).trim() || String(stderr)));
    });
    const [status, killswitch, route, down] = out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(status).toMatchObject({ id: 1, ok: true, result: { killSwitch: true } });
    for (const [r, id] of [[killswitch, 2], [route, 3], [down, 4]] as const) {
      expect(r).toMatchObject({ id, ok: false, error: { code: 'ZKS_ERR_CONTROL_FORBIDDEN' } });
      expect((r!.error as { message: string }).message).toMatch(/uid 65534.*run it with sudo/);
    }
    const root = await ControlClient.connect(path);
    expect(await root.request('status')).toMatchObject({ killSwitch: true }); // the refused request changed nothing
    expect(await root.request('killswitch', { on: false })).toEqual({ killSwitch: false });
    root.close();
  });

  it('changing commands are refused when the server cannot tell who asks (never granted by default)', async () => {
    const path = await start({});
    const c = await ControlClient.connect(path);
    const err = await c.request('killswitch', { on: false }).catch((e: unknown) => e);
    expect((err as ZksError).code).toBe('ZKS_ERR_CONTROL_FORBIDDEN');
    expect(await c.request('status')).toMatchObject({ killSwitch: true });
    c.close();
  });

  it('client: a missing socket is ZKS_ERR_NOT_RUNNING with a hint', async () => {
    const err = await ControlClient.connect('/nonexistent/zksd.sock').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZksError);
    expect((err as ZksError).code).toBe('ZKS_ERR_NOT_RUNNING');
    expect((err as ZksError).message).toMatch(/sudo zksd up/);
  });
});

describe('control protocol parsers (property)', () => {
  it('parseRequest never throws and returns a request or an error', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (line) => {
      const r = parseRequest(line);
      expect('error' in r ? r.error instanceof ZksError : typeof r.cmd === 'string').toBe(true);
    }), { numRuns: 2000 });
  });

  it('LineSplitter yields the same lines however the stream is chunked', () => {
    fc.assert(fc.property(fc.array(fc.string({ minLength: 1 }).filter((s) => !s.includes('\n') && s.trim() !== ''), { maxLength: 20 }), fc.array(fc.nat(50), { maxLength: 30 }), (lines, cuts) => {
      const text = lines.map((l) => `${l}\n`).join('');
      const got: string[] = [];
      const sp = new LineSplitter((l) => got.push(l), () => got.push('<oversized>'));
      let off = 0;
      for (const c of cuts) { sp.push(text.slice(off, off + c)); off = Math.min(text.length, off + c); }
      sp.push(text.slice(off));
      expect(got).toEqual(lines);
    }), { numRuns: 500 });
  });
});
