#!/usr/bin/env node
// Entry point of `zks-tui`, the live view of zksd or a zks client: runs src/tui/main.ts as compiled to dist/ by
// scripts/build.mjs (`npm ci` builds it).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/tui/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('zks-tui: dist/ has not been built: run `npm run build` (npm ci and npm test do it)');
  process.exit(1);
}
await import(entry.href);
