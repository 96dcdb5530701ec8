// `npm install` / `npm ci` hook (after the TUN addon's): builds the ICMP echo addon (addon/icmp.cc) with node-gyp
// against the headers of the Node that runs it, the same way src/daemon/tun/build.mjs does (npm's `nodedir`, else
// this Node's own <prefix>/include/node, so nothing is downloaded). A failed build fails the install in a source
// checkout; in an installed package it only warns: the exit peer then times TCP connects instead of real pings.
// The built CLI (dist/native/icmp-socket.js) loads the addon from its own build/ folder: the result is copied there.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.platform !== 'linux') {
  console.error('zks: the ICMP addon is Linux-only; skipping its build on', process.platform);
  process.exit(0);
}
const here = dirname(fileURLToPath(import.meta.url));
const prefix = dirname(dirname(process.execPath));
const nodedir =
  process.env.npm_config_nodedir ||
  (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
let nodeGyp = process.env.npm_config_node_gyp;
try {
  nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  if (!nodeGyp) fail('node-gyp was not found (run this through npm, or install node-gyp)');
}
const args = [nodeGyp, 'rebuild', '-C', here, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) fail('building it failed; it needs g++, make and python3');
const dist = join(here, '..', '..', 'dist');
if (existsSync(dist)) {
  const to = join(dist, 'native', 'build', 'Release');
  mkdirSync(to, { recursive: true });
  copyFileSync(join(here, 'build', 'Release', 'zks_icmp.node'), join(to, 'zks_icmp.node'));
}

function fail(why) {
  const sourceCheckout = existsSync(join(here, '..', 'cli', 'main.ts'));
  console.error(`zks: the ICMP addon (src/native): ${why}.` +
    (sourceCheckout ? '' : ' zks works without it; the exit peer then answers pings with TCP connect times.'));
  process.exit(sourceCheckout ? 1 : 0);
}
