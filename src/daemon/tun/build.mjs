// `npm install` / `npm ci` hook: builds the TUN addon with node-gyp against the headers of the Node that runs it.
// Uses npm's `nodedir` setting when present, else this Node's own <prefix>/include/node (distribution packages
// ship it), so node-gyp never tries to download headers. A failed build fails the install, loudly.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.platform !== 'linux') {
  // zksd (TUN) is Linux-only; the proxy modes work everywhere, so do not fail their install.
  console.error('zks: the TUN addon is Linux-only; skipping its build on', process.platform);
  process.exit(0);
}
const here = dirname(fileURLToPath(import.meta.url));
const prefix = dirname(dirname(process.execPath));
const nodedir =
  process.env.npm_config_nodedir ||
  (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const args = [nodeGyp, 'rebuild', '-C', here, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('zks: building the TUN addon (src/daemon/tun) failed; it needs g++, make and python3.');
  process.exit(r.status ?? 1);
}
