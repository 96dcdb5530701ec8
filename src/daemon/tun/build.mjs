// `npm install` / `npm ci` hook: builds the TUN addon with node-gyp against the headers of the Node that runs it.
// Uses npm's `nodedir` setting when present, else this Node's own <prefix>/include/node (distribution packages
// ship it), so node-gyp never tries to download headers. A failed build fails the install, loudly, in a source
// checkout; in an installed package (npm install -g) it only warns, since just zksd needs the addon. The built CLI
// (dist/daemon/tun/index.js) loads the addon from its own build/ folder: the result is copied there too.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
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
// node-gyp is a devDependency; an installed package uses the one npm bundles (npm passes its path).
let nodeGyp = process.env.npm_config_node_gyp;
try {
  nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  if (!nodeGyp) fail('node-gyp was not found (run this through npm, or install node-gyp)');
}
const args = [nodeGyp, 'rebuild', '-C', here, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) fail('building it failed; it needs g++, make and python3');
const dist = join(here, '..', '..', '..', 'dist');
if (existsSync(dist)) {
  const to = join(dist, 'daemon', 'tun', 'build', 'Release');
  mkdirSync(to, { recursive: true });
  copyFileSync(join(here, 'build', 'Release', 'zks_tun.node'), join(to, 'zks_tun.node'));
}

function fail(why) {
  const sourceCheckout = existsSync(join(here, '..', '..', 'cli', 'main.ts'));
  console.error(`zks: the TUN addon (src/daemon/tun): ${why}.` +
    (sourceCheckout ? '' : ' zks works without it; zksd needs it: install those, then `npm rebuild -g --allow-scripts=zks-tunnel zks-tunnel`.'));
  process.exit(sourceCheckout ? 1 : 0);
}
