// `npm install` / `npm ci` hook: builds the TUN addon (addon/tun.cc) that zksd needs (scripts/build-addon.mjs).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../../scripts/build-addon.mjs';

buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  target: 'zks_tun.node',
  label: 'the TUN addon',
  whenMissing: 'zks works without it; zksd needs it: install those, then `npm rebuild -g --allow-scripts=zks-tunnel zks-tunnel`.',
});
