// The soak runs its zks / zksd processes from a private copy of bin/ and dist/ (beside its report, inside the repo
// so node_modules still resolves): a build during the soak — every vitest run does one — rewrites dist/'s native
// addons in place (scripts/build.mjs, copyFileSync), and a process with the old file mapped then dies with SIGSEGV
// or SIGBUS mid-transfer. The copy also keeps the code the same across workerd restarts. `zks worker` of the zksd
// topology still runs from the repo (test/daemon/topology.ts), which is harmless: it loads no addon of ours.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lane';

/** As scripts/build.mjs lists them. */
const ADDONS = ['daemon/tun/build/Release/zks_tun.node', 'native/build/Release/zks_icmp.node', 'native/build/Release/zks_datapath.node'];

export interface Bin {
  zks: string;
  zksd: string;
}

/** Copies what bin/zks.js and bin/zksd.js load into `dir`; returns the copied entry points. */
export function snapshotApp(dir: string): Bin {
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  for (const p of ['bin', 'dist', 'package.json', 'scripts/setup-routes.sh']) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  // The addons again from where the build copies them from: dist/'s may be mid-rewrite right now.
  for (const addon of ADDONS) if (existsSync(join(ROOT, 'src', addon))) cpSync(join(ROOT, 'src', addon), join(dir, 'dist', addon));
  return { zks: join(dir, 'bin/zks.js'), zksd: join(dir, 'bin/zksd.js') };
}
