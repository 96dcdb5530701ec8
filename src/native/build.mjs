// `npm install` / `npm ci` hook (after the TUN addon's): builds the ICMP echo addon (addon/icmp.cc) for the exit
// peer's real pings (scripts/build-addon.mjs).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../scripts/build-addon.mjs';

buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  target: 'zks_icmp.node',
  label: 'the ICMP addon',
  whenMissing: 'zks works without it; the exit peer then answers pings with TCP connect times.',
});
