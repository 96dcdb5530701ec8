// Compiles src/**/*.ts(x) to dist/ with esbuild, one .js per source file in the same folder layout, so that the
// commands start without a TypeScript compiler (bin/*.js load dist/) and every `new URL('…', import.meta.url)`
// still points where it did from src/ (scripts/, bin/, the Worker sources). Run by `npm ci`/`npm pack` (prepare),
// before `npm start` and before every test run (vitest globalSetup), so nothing ever runs a stale dist/.
// Usage: node scripts/build.mjs [--watch]
import { build, context } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SRC = join(ROOT, 'src');
const OUT = join(ROOT, 'dist');
// The TUN addon is built into src/daemon/tun/build by its own install hook; dist/daemon/tun/index.js loads it
// from the same relative place, so the copy below keeps it there (the hook refreshes it after a rebuild).
// The same for src/native's addons (the exit peer's ICMP sockets, in-place record sealing: src/native/build.mjs).
const ADDONS = ['daemon/tun/build/Release/zks_tun.node', 'native/build/Release/zks_icmp.node', 'native/build/Release/zks_datapath.node'];

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'build' || e.name === 'node_modules' ? [] : sources(path);
    return /\.tsx?$/.test(e.name) && !/\.(test|d)\.tsx?$/.test(e.name) ? [path] : [];
  });
}

const SUFFIXES = ['.ts', '.tsx', '/index.ts', '/index.tsx'];

// Every import stays an import: packages and node:* as they are, our own files rewritten to the .js file the
// build writes for them ('../exit' -> '../exit/index.js'), which is what Node's ESM loader needs.
const keepImports = {
  name: 'keep-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (!args.path.startsWith('.')) return { path: args.path, external: true };
      const base = resolve(args.resolveDir, args.path);
      const hit = SUFFIXES.map((s) => base + s).find((p) => existsSync(p) && statSync(p).isFile());
      if (!hit) return { errors: [{ text: `cannot resolve ${args.path} from ${relative(ROOT, args.importer)}` }] };
      let spec = relative(args.resolveDir, hit).replace(/\.tsx?$/, '.js');
      if (!spec.startsWith('.')) spec = `./${spec}`;
      return { path: spec, external: true };
    });
  },
};

const entryPoints = sources(SRC);
const outputs = new Set(entryPoints.map((p) => join(OUT, relative(SRC, p)).replace(/\.tsx?$/, '.js')));
const options = {
  entryPoints,
  outdir: OUT,
  outbase: SRC,
  bundle: true, // with every import external (above) this transpiles file by file but checks each import resolves
  format: 'esm',
  platform: 'node',
  target: 'node20',
  jsx: 'automatic',
  logLevel: 'warning',
  plugins: [keepImports],
};

// dist/ is rewritten in place, never emptied first: a command or test running from it meanwhile (a long-lived
// `zks start` imports modules lazily) never finds a module missing. Files whose source is gone are removed after.
function removeOrphans(dir = OUT) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!ADDONS.some((addon) => path === join(OUT, dirname(dirname(addon))))) removeOrphans(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
    } else if (!outputs.has(path)) {
      rmSync(path);
    }
  }
}

function copyAddon() {
  for (const addon of ADDONS) {
    const from = join(SRC, addon);
    if (!existsSync(from)) continue; // not built (not Linux, or no compiler): its user says so when it needs it
    const to = join(OUT, addon);
    mkdirSync(dirname(to), { recursive: true });
    // A new file renamed over the old one, never a write into it: a running zks has the old one mapped, and
    // overwriting a mapped shared object in place crashes it (SIGSEGV/SIGBUS), e.g. when a test run rebuilds.
    const tmp = `${to}.${process.pid}.tmp`;
    copyFileSync(from, tmp);
    renameSync(tmp, to);
  }
}

if (process.argv.includes('--watch')) {
  const ctx = await context(options);
  await ctx.watch();
  removeOrphans();
  copyAddon();
  console.error('zks build: watching src/ (new files need a restart)');
} else {
  await build(options);
  removeOrphans();
  copyAddon();
}
