// `npm install` / `npm ci` hook (after the TUN addon's): builds the ICMP echo addon (addon/icmp.cc) for the exit
// peer's real pings and the data path's addon (addon/datapath.cc: records sealed in place; addon/udp.cc: batched UDP
// sockets) (scripts/build-addon.mjs).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../scripts/build-addon.mjs';

buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  target: ['zks_icmp.node', 'zks_datapath.node'],
  label: 'the native addons',
  whenMissing: 'zks works without them: the exit peer then answers pings with TCP connect times, and records are sealed through node:crypto (more CPU per GB) and UDP goes through node:dgram (a system call per datagram).',
});
