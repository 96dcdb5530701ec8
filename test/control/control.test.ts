// The control socket with real unix sockets: request/response in order, every kind of bad line answered with an
// error while the connection stays usable, the 64 KiB line cap, the socket's mode, and an unprivileged user
// (setpriv to nobody) refused by the file mode.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client';
import { LineSplitter, MAX_LINE_BYTES, parseRequest } from '../../src/control/protocol';
import { startControlServer, type ControlServer } from '../../src/control/server';
import { ZksError } from '../../src/errors/zks-error';

let server: ControlServer | undefined;
let dir = '';

afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'zks-ctl-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'zksd.sock');
  server = await startControlServer(path, async (cmd, args) => {
    if (cmd === 'status') return { pid: process.pid };
    if (cmd === 'route.add') {
      if (typeof args.cidr !== 'string') throw new ZksError('ZKS_ERR_CONTROL_REQUEST', 'route.add needs args.cidr');
      await new Promise((r) => setTimeout(r, 20)); // a slow handler must not reorder responses
      return { bypass: [args.cidr] };
    }
    throw new Error('boom');
  });
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
    expect(b).toEqual({ pid: process.pid });
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
