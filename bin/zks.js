#!/usr/bin/env node
// Entry point of the `zks` CLI: runs src/cli/main.ts as compiled to dist/ by scripts/build.mjs (`npm ci` builds it).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('zks: dist/ has not been built: run `npm run build` (npm ci and npm test do it)');
  process.exit(1);
}
await import(entry.href);
