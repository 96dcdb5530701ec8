// Builds one native addon with node-gyp against the headers of the Node that runs it, for the `npm install` /
// `npm ci` hooks (src/daemon/tun/build.mjs, src/native/build.mjs). Uses npm's `nodedir` setting when present, else
// this Node's own <prefix>/include/node (distribution packages ship it), so node-gyp never downloads headers. A
// failed build fails the install, loudly, in a source checkout; in an installed package (npm install -g) it only
// warns (`whenMissing` says what still works). The built CLI loads the addon from dist/<distDir>/build/Release:
// the result is copied there too when dist/ exists.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** `dir`: the folder with binding.gyp (absolute); `target`: the .node name(s); `label`: "the TUN addon". */
export function buildAddon({ dir, target, label, whenMissing }) {
  const targets = Array.isArray(target) ? target : [target];
  if (process.platform !== 'linux') {
    // zksd (TUN) and the exit's ICMP sockets are Linux-only; the proxy modes work everywhere: do not fail their install.
    console.error(`zks: ${label} is Linux-only; skipping its build on`, process.platform);
    return;
  }
  const where = relative(root, dir);
  const fail = (why) => {
    const sourceCheckout = existsSync(join(root, 'src', 'cli', 'main.ts'));
    console.error(`zks: ${label} (${where}): ${why}.${sourceCheckout ? '' : ` ${whenMissing}`}`);
    process.exit(sourceCheckout ? 1 : 0);
  };
  const prefix = dirname(dirname(process.execPath));
  const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
  // node-gyp is a devDependency; an installed package uses the one npm bundles (npm passes its path).
  let nodeGyp = process.env.npm_config_node_gyp;
  try {
    nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    if (!nodeGyp) fail('node-gyp was not found (run this through npm, or install node-gyp)');
  }
  const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '-C', dir, ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { stdio: 'inherit' });
  if (r.status !== 0) fail('building it failed; it needs g++, make and python3');
  const dist = join(root, 'dist');
  if (existsSync(dist)) {
    // src/<x> is dist/<x> in the built CLI.
    const to = join(dist, relative(join(root, 'src'), dir), 'build', 'Release');
    mkdirSync(to, { recursive: true });
    for (const t of targets) copyFileSync(join(dir, 'build', 'Release', t), join(to, t));
  }
}
