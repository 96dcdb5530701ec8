// HTTP tunnels with real parts (docs/PROTOCOL.md §12): the Worker in workerd (`zks worker`), `zks expose
// http://…` agents as processes, nginx as the local web server (Range, ETag/304, HEAD, gzip), a small Node origin
// that hashes what it receives and reports the headers it got, and curl as the client. Checked: bodies intact
// both ways (100 MB, sha256) with the Worker's memory flat, chunked uploads, hop-by-hop and forwarded headers,
// Basic auth, limits (429/413), agents lost and back, two agents standing in for each other, and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childWorkerdPids, rssOf, run, sha256, startCli, until, type CliProcess } from '../integration/harness';
import { haveNginx, startNginx, type Nginx } from '../fixtures/nginx';
import { generateKey } from '../../src/cli/args';

const describeNginx = haveNginx || process.env.CI ? describe : describe.skip;
const procs: CliProcess[] = [];
let nginx: Nginx | undefined;
let origin: Server;
let originPort = 0;
let base = '';
let relay = '';
let workerPid = 0;
const key = generateKey();
const secret = generateKey();
const page = '<!doctype html><title>hello</title><link rel="stylesheet" href="style.css"><p>hello through the tunnel</p>\n';
// A page for a browser: relative links to a stylesheet, a script and an image, each proving it loaded.
const app = {
  'app.html': '<!doctype html><html><head><title>app</title><link rel="stylesheet" href="assets/app.css"><script src="assets/app.js" defer></script></head>' +
    '<body><p id="p">hello</p><img src="assets/logo.svg" onload="document.body.dataset.img = \'ok\'"></body></html>\n',
  'assets/app.css': 'p { color: rgb(0, 128, 128); }\n',
  'assets/app.js': 'document.body.dataset.js = "ok"; document.body.dataset.css = getComputedStyle(document.getElementById("p")).color;\n',
  'assets/logo.svg': '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="teal"/></svg>\n',
};
const CHROMIUM = '/usr/bin/chromium';
const style = 'p { color: teal; }\n'.repeat(200);
const big = randomBytes(100 * 1024 * 1024);
/** Requests the Node origin holds open until the test says so (/hold-head, /hold-body). */
const held: ServerResponse[] = [];
let originHits = 0;
const originUrls: string[] = [];

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  originHits++;
  originUrls.push(req.url ?? '');
  const hash = createHash('sha256');
  let n = 0;
  req.on('data', (c: Buffer) => (hash.update(c), (n += c.length)));
  req.on('end', () => {
    if (req.url === '/hold-head') return void held.push(res); // no answer until the test gives one
    if (req.url === '/hold-body') {
      // A head announcing 1000 bytes and only the first 8 of them, until the test ends it.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('started\n');
      return void held.push(res);
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, n, sha: hash.digest('hex'), headers: req.headers }));
  });
}

const expose = async (target: string, id: string, extra: string[], s = secret) => {
  const p = await startCli(['expose', target, '--id', id, '--secret', s, '--relay', relay, '--key', key, ...extra]);
  procs.push(p);
  return p;
};
const curl = (args: string[], input?: Buffer) => run('curl', ['-sS', ...args], { input, timeoutMs: 120_000 });
const status = async (args: string[]) => Number((await curl(['-o', '/dev/null', '-w', '%{http_code}', ...args])).stdout.toString());
const json = async (args: string[]) => JSON.parse((await curl(args)).stdout.toString()) as { method: string; url: string; n: number; sha: string; headers: Record<string, string> };

beforeAll(async () => {
  // The agents' control sockets (zks status) go to a private directory of this test, not the user's.
  process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'zks-expose-run-'));
  origin = createServer(originHandler);
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()));
  originPort = (origin.address() as { port: number }).port;
  const worker = await startCli(['worker', '--listen', '127.0.0.1:0', '--key', key]);
  procs.push(worker);
  workerPid = worker.pid;
  relay = /ws:\/\/\S+/.exec(worker.readyLine)![0];
  base = relay.replace(/^ws/, 'http');
});

afterAll(async () => {
  for (const r of held) r.destroy();
  await Promise.all(procs.map((p) => p.kill()));
  origin.close();
  nginx?.stop();
  rmSync(process.env.XDG_RUNTIME_DIR!, { recursive: true, force: true });
});

describeNginx('zks expose http:// — a real web server behind the tunnel', () => {
  beforeAll(async () => {
    nginx = await startNginx({ 'index.html': page, 'style.css': style, 'big.bin': big, ...app });
    await expose(`http://127.0.0.1:${nginx.port}`, 'site', ['--public']);
  });

  it('serves pages, HEAD, Range and 304 as nginx answers them, Content-Length kept', async () => {
    const r = await curl(['-D', '-', `${base}/tunnel/site/`]);
    const text = r.stdout.toString();
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain(page);
    expect(text).toMatch(new RegExp(`content-length: ${Buffer.byteLength(page)}`, 'i'));
    const etag = /etag: (".*")/i.exec(text)![1];
    expect(await status(['-H', `If-None-Match: ${etag}`, `${base}/tunnel/site/index.html`])).toBe(304);
    const head = (await curl(['-I', `${base}/tunnel/site/big.bin`])).stdout.toString();
    expect(head).toMatch(new RegExp(`content-length: ${big.length}`, 'i'));
    const rangeHead = (await curl(['-D', '-', '-o', '/dev/null', '-r', '1000-1999', `${base}/tunnel/site/big.bin`])).stdout.toString();
    expect(rangeHead).toMatch(/^HTTP\/1\.1 206/);
    expect(rangeHead).toMatch(/content-range: bytes 1000-1999\//i);
    const range = await curl(['-r', '1000-1999', `${base}/tunnel/site/big.bin`]);
    expect(range.stdout.equals(big.subarray(1000, 2000))).toBe(true);
    const gz = await curl(['--compressed', `${base}/tunnel/site/style.css`]);
    expect(gz.stdout.toString()).toBe(style);
  });

  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('headless Chromium loads a page and its stylesheet, script and image through the tunnel', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'zks-chromium-'));
    try {
      // Only 127.0.0.1 resolves and nothing runs in the background: the browser reaches the Worker and nothing else.
      const r = await run(CHROMIUM, [
        '--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-domain-reliability', '--no-pings',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--virtual-time-budget=10000', '--dump-dom', `${base}/tunnel/site/app.html`,
      ], { timeoutMs: 120_000 });
      const dom = r.stdout.toString();
      expect(dom, r.stderr).toContain('data-js="ok"');
      expect(dom).toContain('data-css="rgb(0, 128, 128)"');
      expect(dom).toContain('data-img="ok"');
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it('an answer the local server gives before the upload ends (nginx: 413 over 1 MB) reaches the client whole', async () => {
    const r = await curl(['-D', '-', '-o', '/dev/null', '--data-binary', '@-', `${base}/tunnel/site/index.html`], randomBytes(5 * 1024 * 1024));
    expect(r.stdout.toString()).toMatch(/^HTTP\/1\.1 413/);
  });

  it('downloads 100 MB intact', async () => {
    const r = await curl(['--fail', `${base}/tunnel/site/big.bin`]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(r.stdout)).toBe(sha256(big));
  });
});

describe('zks expose http:// — requests, bodies and headers', () => {
  beforeAll(async () => {
    await expose(`http://127.0.0.1:${originPort}`, 'echo', ['--public']);
  });

  it('streams a 100 MB upload (sha256 at the origin) while the Worker memory stays flat', async () => {
    const workerd = childWorkerdPids(workerPid);
    const rssBefore = workerd.reduce((s, p) => s + rssOf(p), 0);
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, workerd.reduce((s, p) => s + rssOf(p), 0))), 50);
    const r = await curl(['--fail', '--data-binary', '@-', '-H', 'content-type: application/octet-stream', `${base}/tunnel/echo/upload`], big);
    clearInterval(sampler);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout.toString()) as { n: number; sha: string };
    expect(body.n).toBe(big.length);
    expect(body.sha).toBe(sha256(big));
    // Whole-body buffering would add 100 MB; the stream windows bound what may sit in the Worker.
    expect(rssMax - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('passes a chunked upload on, strips the prefix, keeps the query, sets X-Forwarded-*, drops hop-by-hop fields', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const r = await curl(['--fail', '-H', 'Transfer-Encoding: chunked', '-H', 'Connection: keep-alive, X-Secret-Hop',
      '-H', 'X-Secret-Hop: 1', '-H', 'Keep-Alive: timeout=5', '--data-binary', '@-', `${base}/tunnel/echo/a/b?x=1&y=2`], body);
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout.toString()) as { url: string; n: number; sha: string; headers: Record<string, string> };
    expect(seen.url).toBe('/a/b?x=1&y=2');
    expect(seen.n).toBe(body.length);
    expect(seen.sha).toBe(sha256(body));
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(base).host);
    expect(seen.headers['x-secret-hop']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    for (const internal of ['x-zks-tunnel-role', 'x-zks-tunnel-id']) expect(seen.headers[internal]).toBeUndefined();
  });

  it('the agent logs one line per request (method, path without the query, status, bytes, ms); zks status shows the tunnel', async () => {
    const agent = await expose(`http://127.0.0.1:${originPort}`, 'logged', ['--public']);
    expect(await status([`${base}/tunnel/logged/some/path?token=hunter2`])).toBe(200);
    expect(await status([`${base}/tunnel/logged/other`])).toBe(200);
    await until(() => /GET \/some\/path 200 in 0 B out \d+ B [\d.]+ ms/.test(agent.output()) && /GET \/other 200/.test(agent.output()), 'the request log lines');
    expect(agent.output()).not.toContain('hunter2');
    const text = await run(process.execPath, ['bin/zks.js', 'status']);
    expect(text.stdout.toString()).toMatch(new RegExp(`tunnel +${base}/tunnel/logged/ → http://127\\.0\\.0\\.1:${originPort} \\(connected\\)`));
    const json = JSON.parse((await run(process.execPath, ['bin/zks.js', 'status', '--json'])).stdout.toString()) as { exposed: Array<{ mode: string; tunnel: { id: string; requests: number; inFlight: number } }> };
    const mine = json.exposed.find((s) => s.tunnel.id === 'logged')!;
    expect(mine.mode).toBe('expose');
    expect(mine.tunnel.requests).toBe(2);
    expect(mine.tunnel.inFlight).toBe(0);
  });
});

describe('zks expose http:// — under load', () => {
  it.skipIf(!existsSync('/usr/bin/wrk') && !process.env.CI)('wrk with 32 connections: every answer a 200 with its body, the tunnel still serving', async () => {
    await expose(`http://127.0.0.1:${originPort}`, 'load', ['--public', '--max-concurrent', '1000', '--rate', '100000']);
    const r = await run('wrk', ['-t2', '-c32', '-d3s', `${base}/tunnel/load/x`], { timeoutMs: 120_000 });
    const out = r.stdout.toString();
    expect(r.code, out).toBe(0);
    expect(out).not.toMatch(/Non-2xx|Socket errors/);
    expect(Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)).toBeGreaterThan(0);
    expect(await status([`${base}/tunnel/load/`])).toBe(200);
  });
});

describe('zks expose http:// — access, limits and failures', () => {
  it('--auth: no or wrong credentials get 401 with a Basic challenge; the right ones pass and stay in the Worker', async () => {
    await expose(`http://127.0.0.1:${originPort}`, 'private', ['--auth', 'alice:s3cret']);
    const r = await curl(['-D', '-', '-o', '/dev/null', `${base}/tunnel/private/`]);
    expect(r.stdout.toString()).toMatch(/^HTTP\/1\.1 401/);
    expect(r.stdout.toString()).toMatch(/www-authenticate: Basic realm="zks tunnel private"/i);
    expect(await status(['-u', 'alice:wrong', `${base}/tunnel/private/`])).toBe(401);
    const seen = await json(['-u', 'alice:s3cret', `${base}/tunnel/private/x`]);
    expect(seen.url).toBe('/x');
    expect(seen.headers.authorization).toBeUndefined();
  });

  it('refuses to start an HTTP tunnel that is neither --public nor behind --auth', async () => {
    const r = await run(process.execPath, ['bin/zks.js', 'expose', `http://127.0.0.1:${originPort}`, '--id', 'open', '--secret', secret, '--relay', relay, '--key', key]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--auth USER:PASSWORD .* or --public/);
  });

  it('another secret cannot claim a taken id; the tunnel goes on serving', async () => {
    await expose(`http://127.0.0.1:${originPort}`, 'claimed', ['--public']);
    const r = await run(process.execPath, ['bin/zks.js', 'expose', `http://127.0.0.1:${originPort}`, '--id', 'claimed', '--public',
      '--secret', generateKey(), '--relay', relay, '--key', key], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ZKS_ERR_TUNNEL_TAKEN/);
    expect(r.stderr).not.toContain(secret);
    expect(await status([`${base}/tunnel/claimed/`])).toBe(200);
    const wrongKey = await run(process.execPath, ['bin/zks.js', 'expose', `http://127.0.0.1:${originPort}`, '--id', 'claimed', '--public',
      '--secret', secret, '--relay', relay, '--key', generateKey()], { timeoutMs: 60_000 });
    expect(wrongKey.stderr).toMatch(/ZKS_ERR_AUTH/);
  });

  it('--max-concurrent: a request over the limit gets 429 with Retry-After; --max-body: 413', async () => {
    await expose(`http://127.0.0.1:${originPort}`, 'small', ['--public', '--max-concurrent', '1', '--max-body', '1k']);
    const heldBefore = held.length;
    const first = curl([`${base}/tunnel/small/hold-head`]);
    await until(() => held.length > heldBefore, 'the first request at the origin');
    const second = await curl(['-D', '-', '-o', '/dev/null', `${base}/tunnel/small/`]);
    expect(second.stdout.toString()).toMatch(/^HTTP\/1\.1 429/);
    expect(second.stdout.toString()).toMatch(/retry-after: 1/i);
    held[held.length - 1].end('done\n');
    expect((await first).stdout.toString()).toBe('done\n');
    expect(await status(['--data-binary', 'small enough', `${base}/tunnel/small/`])).toBe(200);
    const hits = originHits;
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--data-binary', '@-', `${base}/tunnel/small/`], randomBytes(2048));
    expect(r.stdout.toString()).toBe('413');
    expect(originHits).toBe(hits);
    // Chunked: no length to refuse up front; the upload is cut where it passes the limit, still a 413.
    const chunked = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `${base}/tunnel/small/`], randomBytes(64 * 1024));
    expect(chunked.stdout.toString()).toBe('413');
  });

  it('the agent lost mid-request: 502 before the response head, a short body (never a silent success) after it', async () => {
    const agent = await expose(`http://127.0.0.1:${originPort}`, 'flaky', ['--public']);
    const heldBefore = held.length;
    const noHead = curl(['-o', '/dev/null', '-w', '%{http_code}', `${base}/tunnel/flaky/hold-head`]);
    let received = '';
    const partBody = run('curl', ['-sS', '-N', `${base}/tunnel/flaky/hold-body`], { timeoutMs: 60_000, onStdout: (c) => (received += c.toString()) });
    await until(() => held.length >= heldBefore + 2 && received === 'started\n', 'both requests at the origin, the first bytes at curl');
    process.kill(-agent.pid, 'SIGKILL');
    expect((await noHead).stdout.toString()).toBe('502');
    const cut = await partBody;
    expect(cut.code).toBe(18); // curl: "transfer closed with 992 bytes remaining"
    expect(cut.stdout.toString()).toBe('started\n');
    const gone = await curl(['-D', '-', '-o', '/dev/null', `${base}/tunnel/flaky/`]);
    expect(gone.stdout.toString()).toMatch(/^HTTP\/1\.1 502/);
    await expose(`http://127.0.0.1:${originPort}`, 'flaky', ['--public']);
    expect(await status([`${base}/tunnel/flaky/`])).toBe(200);
  });

  it('two agents: one killed, the other takes every request once the tunnel has seen it go', async () => {
    const a = await expose(`http://127.0.0.1:${originPort}`, 'pair', ['--public']);
    const b = await expose(`http://127.0.0.1:${originPort}`, 'pair', ['--public']);
    process.kill(-a.pid, 'SIGKILL');
    // The switch: the first request after the tunnel noticed the loss (a WebSocket close) is served.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) ok = (await status([`${base}/tunnel/pair/`])) === 200;
    expect(ok).toBe(true);
    const served = (b.output().match(/GET \/ 200/g) ?? []).length;
    for (let i = 0; i < 20; i++) expect(await status([`${base}/tunnel/pair/`])).toBe(200);
    await until(() => (b.output().match(/GET \/ 200/g) ?? []).length >= served + 20, 'the other agent serving');
  });
});

describe('zks expose http:// — bad input', () => {
  beforeAll(async () => {
    await expose(`http://127.0.0.1:${originPort}`, 'web', ['--public']);
  });

  it('unknown ids and paths that leave the tunnel get the Worker\'s bare 401; nothing reaches the origin', async () => {
    const hits = originHits;
    for (const path of ['/tunnel/nobody/', '/tunnel/web/../x', '/tunnel/web/%2e%2e/nobody', '/tunnel/web/%2E%2E/%2e%2e/etc/passwd', '/tunnel/Web/', '/tunnel/-x/']) {
      const r = await curl(['--path-as-is', '-D', '-', `${base}${path}`]);
      expect(r.stdout.toString(), path).toMatch(/^HTTP\/1\.1 401/);
      expect(r.stdout.toString()).toMatch(/\r\n\r\nUnauthorized$/);
    }
    expect(originHits).toBe(hits);
  });

  it('request smuggling and oversized or folded headers: a clean 4xx (or the runtime\'s own error), the tunnel unharmed', async () => {
    const hits = originHits;
    expect(await status(['-H', 'Transfer-Encoding: chunked', '-H', 'Content-Length: 5', '--data-binary', 'hello', `${base}/tunnel/web/`])).toBe(400);
    // A chunked body on a DELETE holding a second request: the origin gets one DELETE with that body, nothing else.
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const del = await json(['-X', 'DELETE', '-H', 'Transfer-Encoding: chunked', '--data-binary', smuggled, `${base}/tunnel/web/d`]);
    expect([del.method, del.url, del.n]).toEqual(['DELETE', '/d', smuggled.length]);
    expect(originHits).toBe(hits + 1);
    expect(originUrls).not.toContain('/smuggled');
    const conflicting = await rawRequest('POST /tunnel/web/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!');
    expect(conflicting).toMatch(/^HTTP\/1\.1 [45]\d\d /);
    const huge = await rawRequest(`GET /tunnel/web/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(200_000)}\r\nConnection: close\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(originHits).toBe(hits + 1);
    // obs-fold is replaced by spaces before the origin sees it (RFC 9112 §5.2 allows either that or a 400).
    const folded = await rawRequest('GET /tunnel/web/f HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n');
    const seen = JSON.parse(folded.slice(folded.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
    expect(seen.headers['x-a']).toMatch(/^a\s+b$/);
    expect(await status([`${base}/tunnel/web/`])).toBe(200);
  });

  it('the origin down: 502 with a plain page, the agent stays up', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const port = (dead.address() as { port: number }).port;
    await new Promise<void>((r) => dead.close(() => r()));
    await expose(`http://127.0.0.1:${port}`, 'down', ['--public']);
    const r = await curl(['-D', '-', `${base}/tunnel/down/`]);
    expect(r.stdout.toString()).toMatch(/^HTTP\/1\.1 502/);
    expect(r.stdout.toString()).toContain('refused the connection');
  });
});

/** One raw HTTP/1.1 exchange on a fresh connection: what curl will not send. */
function rawRequest(text: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('end', () => resolve(out));
    s.on('error', (e) => (out ? resolve(out) : reject(e)));
    s.write(text);
  });
}
