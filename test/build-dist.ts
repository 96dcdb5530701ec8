// vitest globalSetup: the tests run the commands as users do (bin/*.js load dist/), so every run, `npm test` or
// `npx vitest run <file>`, first compiles src/ to dist/ (scripts/build.mjs, well under a second): never stale.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function buildDist(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' });
}
