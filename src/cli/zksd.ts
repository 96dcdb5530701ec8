// `zksd`, the privileged full-system VPN daemon: `sudo zksd up` routes the whole machine through the tunnel,
// `zksd down` restores it exactly, `zksd status` shows what runs. Flag parsing and process handling only; the
// lifecycle is in daemon/daemon.ts. Settings: flags, then root's /etc/zks/zksd.json (settings/daemon-settings.ts),
// never the invoking user's `zks config`.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nodeCrypto } from '../crypto/node';
import { deriveRoomKeys } from '../crypto/room';
import { ZksError } from '../errors/zks-error';
import { ControlClient } from '../control/client';
import { controlSocketPath, runDir } from '../control/paths';
import { ensureRunDir } from '../control/run-dir';
import { Daemon } from '../daemon/daemon';
import { HostNetwork, parseCidr } from '../daemon/system/index';
import {
  daemonConfigPath, daemonSetting, listDaemonSettings, saveBypass, savedBypass, setDaemonSetting, unsetDaemonSetting,
} from '../settings/daemon-settings';
import { attachOptionValues, parseExitKey, parseHostPort, parseKey, parseResumeGrace, parseRoomSecret, relayUrls } from './args';
import type { RoomPath } from '../client/connection';
import { isIP } from 'node:net';
import { iceConfig, type DirectConfig } from '../direct/config';
import { printStatus } from './daemon-commands';
import { formatStatus } from './status-view';
import { runMain } from './run-main';
import { reportMemoryOnSigusr2 } from './memory-report';
import { tuneProcessForThroughput } from './throughput-tuning';
import { takeOverSignals } from './signals';

const HELP = `zksd — ZKS-Tunnel full-system VPN daemon (needs root)

  sudo zksd up [--relay URL [--relay URL2 …] --key KEY] [--room SECRET [--exit-id EXITID]] [options]
      Create the TUN device, route all traffic through the tunnel, turn the kill switch on and send DNS
      through the tunnel. Relay/key/room/exit-id not given as flags come from \`sudo zksd config\` (/etc/zks/zksd.json),
      never from a user's \`zks config\`. Detaches once the tunnel is up (log: /run/zks/zksd.log) unless
      --foreground.
        --exit-id EXITID       relay mode: accept only the exit peer holding this exit's key (\`zks keygen --exit\`)
        --via exit|worker      relay mode: everything to the exit peer (default), or TCP through the Worker first
                               and the exit peer for UDP, ping, port 25 and what the Worker cannot reach
        --name zks0            TUN interface name
        --mtu 1500             TUN MTU
        --address 100.77.0.1/24   TUN IPv4 address (the resolver is .53 in that subnet)
        --dns-upstream 8.8.8.8:53 DNS server reached over TCP through the tunnel
        --no-dns               leave the system's DNS configuration alone
        --no-kill-switch       do not install the nftables kill switch
        --ipv6 carry|blackhole carry IPv6 through the tunnel (default) or drop it
        --no-offload           plain 1500-byte packets instead of TSO/checksum offload
        --udp-max-flows 512    relay mode: live UDP flows (one per application socket); datagrams of more are dropped
        --resume-grace 60      seconds a lost relay WebSocket is resumed while applications' TCP connections
                               stall (no reset): relay mode, and direct mode where the Worker keeps sessions
                               (ZKS_DIRECT_RESUME); 0: they reset at once
        --direct               relay mode: also try a path straight to the exit peer (signalled through the room,
                               which stays the fallback): a TCP connection to the exit's addresses, else WebRTC;
                               --no-direct-tcp (WebRTC only), --stun IP[:PORT], --turn turn:IP[:PORT]
                               --turn-user U --turn-pass P, --turn-only as for \`zks p2p-client\`. Its TCP socket
                               carries zksd's mark, its UDP leaves from ports 40760-40799, both routed outside the
                               tunnel to the peer's addresses only
        --foreground           stay attached (for systemd and tests)
  sudo zksd down              stop the daemon and undo every change (also after a crash)
  zksd status [--json]        what runs (same as \`zks status\`)
  sudo zksd config set|get|unset relay|key|room|exit-id [VALUE] | list | path
                              zksd's own settings in /etc/zks/zksd.json (root-owned, mode 0600): a root daemon
                              reads only these and its flags, never a user's \`zks config\` (a file a user can
                              write must not steer a root process)

Bypass routes: zks route add 10.0.0.0/8 --bypass | zks route del CIDR | zks route list`;

const log = (line: string) => console.error(`[zksd] ${new Date().toISOString()} ${line}`);

function option(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** 100.77.0.1/24 → the resolver address .53 in the same /24 (or the given --resolver). */
function resolverFor(address4: string): string {
  const c = parseCidr(address4);
  if (c.family !== 4 || c.prefix > 24) throw new ZksError('ZKS_ERR_CONFIG', '--address must be an IPv4 CIDR of /24 or wider (e.g. 100.77.0.1/24)');
  const host = address4.split('/')[0].split('.');
  return `${host[0]}.${host[1]}.${host[2]}.53`;
}

/** CAP_NET_ADMIN in the effective set (root normally has it; a capability-less root or a user does not). */
function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n;
  } catch {
    // no /proc: fall back to the uid
  }
  return process.getuid?.() === 0;
}

/** `--direct` and its ICE flags (PROTOCOL.md §3.6); STUN/TURN servers must be IP addresses (they are routed outside the TUN). */
function zksdDirect(values: Record<string, unknown>): DirectConfig {
  const config = iceConfig({
    stun: option(values, 'stun'), turn: option(values, 'turn'), turnUser: option(values, 'turn-user'), turnPass: option(values, 'turn-pass'),
    turnOnly: values['turn-only'] === true,
  });
  config.tcp = values['no-direct-tcp'] !== true;
  for (const s of [...config.stun!, ...config.turn!]) {
    if (isIP(s.host) === 0) throw new ZksError('ZKS_ERR_CONFIG', `zksd needs STUN/TURN servers as IP addresses (it routes them outside the tunnel), not "${s.host}"`);
  }
  return config;
}

async function up(values: Record<string, unknown>, argv: string[]): Promise<void> {
  if (!hasNetAdmin()) {
    throw new ZksError('ZKS_ERR_TUN', 'zksd up needs root (CAP_NET_ADMIN: it creates a TUN device and changes routes): run `sudo zksd up`');
  }
  const relayFlags = Array.isArray(values.relay) ? (values.relay as string[]) : undefined;
  const savedRelay = relayFlags?.length ? undefined : daemonSetting('relay');
  if (!relayFlags?.length && savedRelay === undefined) throw new ZksError('ZKS_ERR_CONFIG', `no relay: pass --relay URL or run \`sudo zksd config set relay URL\` (${daemonConfigPath()}; zksd never reads a user's \`zks config\`)`);
  const keyText = option(values, 'key') ?? daemonSetting('key');
  if (keyText === undefined) throw new ZksError('ZKS_ERR_CONFIG', `no key: pass --key KEY or run \`sudo zksd config set key KEY\` (${daemonConfigPath()}; zksd never reads a user's \`zks config\`)`);
  // Several relays: `--relay` more than once, or a comma-separated list in the config.
  const [relay, ...moreRelays] = relayUrls(relayFlags, savedRelay);
  const key = parseKey(keyText);
  const roomText = option(values, 'room') ?? (values.relay === undefined ? daemonSetting('room') : undefined);
  let room: RoomPath | undefined = roomText ? await deriveRoomKeys(nodeCrypto, parseRoomSecret(roomText)) : undefined;
  // A saved exit id pins the saved room only: a room given as a flag is pinned by a flag or not at all.
  const exitIdText = option(values, 'exit-id') ?? (values.room === undefined && values.relay === undefined ? daemonSetting('exit-id') : undefined);
  if (exitIdText !== undefined) {
    if (!room) throw new ZksError('ZKS_ERR_CONFIG', '--exit-id pins the exit peer of a room: it needs --room');
    room = { ...room, exitId: parseExitKey(exitIdText, 'exit id') };
  }
  const via = option(values, 'via');
  if (via !== undefined && via !== 'worker' && via !== 'exit') throw new ZksError('ZKS_ERR_CONFIG', `--via must be worker or exit, got "${via}"`);
  if (via === 'worker' && !room) throw new ZksError('ZKS_ERR_CONFIG', '--via worker puts the Worker beside the exit peer of a room: it needs --room (without one everything goes through the Worker)');
  const direct = values.direct ? zksdDirect(values) : undefined;
  if (direct && !room) throw new ZksError('ZKS_ERR_CONFIG', '--direct sets up a path to the exit peer of a room: it needs --room');
  const mtu = Number(option(values, 'mtu') ?? 1500);
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) throw new ZksError('ZKS_ERR_CONFIG', '--mtu must be an integer from 1280 to 65535');
  const ipv6 = option(values, 'ipv6') ?? 'carry';
  if (ipv6 !== 'carry' && ipv6 !== 'blackhole') throw new ZksError('ZKS_ERR_CONFIG', '--ipv6 must be carry or blackhole');
  const address4 = option(values, 'address') ?? '100.77.0.1/24';
  const resolver = resolverFor(address4);
  const upstream = parseHostPort(option(values, 'dns-upstream') ?? '8.8.8.8:53', 53);
  const name = option(values, 'name') ?? 'zks0';
  const maxUdpFlows = Number(option(values, 'udp-max-flows') ?? 512);
  if (!Number.isInteger(maxUdpFlows) || maxUdpFlows < 1) throw new ZksError('ZKS_ERR_CONFIG', '--udp-max-flows must be a positive integer');
  const dir = runDir();

  if (!values.foreground) return detach(argv, dir);

  tuneProcessForThroughput();
  const daemon = await Daemon.start({
    relay: relay!, moreRelays, key, room, via, tunName: name, mtu, address4, address6: 'fd77::1/64', resolver, dnsUpstream: upstream,
    configureDns: !values['no-dns'], resolvConfPath: process.env.ZKS_RESOLV_CONF || undefined,
    killSwitch: !values['no-kill-switch'], ipv6, bypass: savedBypass(), offload: !values['no-offload'],
    runDir: dir, persistBypass: saveBypass, log, maxUdpFlows, direct, resumeGraceMs: parseResumeGrace(option(values, 'resume-grace')),
  });
  // Before the line that says it is up: whoever waits for that line may signal at once.
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    void daemon.stop(`${sig} received`);
  };
  takeOverSignals(onSignal);
  reportMemoryOnSigusr2();
  const s = daemon.status();
  console.log(`zksd up: ${s.tun} carries all traffic via ${s.relays ? s.relays.map((r) => r.url).join(', ') : s.relay} (${s.mode} mode); kill switch ${s.killSwitch ? 'on' : 'off'}; ` +
    `DNS ${values['no-dns'] ? 'unchanged' : `via ${resolver} → ${upstream.host}:${upstream.port} through the tunnel`}`);
  await daemon.stopped;
  console.log('zksd down: routes, kill switch and DNS restored');
  process.exit(0);
}

/** Starts `zksd up --foreground` in the background, logging to the run dir, and waits until it answers. */
async function detach(argv: string[], dir: string): Promise<void> {
  ensureRunDir(dir); // root's, 0710 + group zks (or 0700): the log goes in before the daemon's control socket
  const logPath = `${dir}/zksd.log`;
  const fd = openSync(logPath, 'a', 0o640);
  const entry = fileURLToPath(new URL('../../bin/zksd.js', import.meta.url));
  const child = spawn(process.execPath, [entry, 'up', ...argv, '--foreground'], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    if (exited !== null) {
      const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n');
      throw new ZksError('ZKS_ERR_CONFIG', `zksd exited during start-up (code ${exited}); last log lines (${logPath}):\n${tail}`);
    }
    const c = await ControlClient.connect(controlSocketPath(), 500).catch(() => null);
    if (c) {
      const status = await c.status().finally(() => c.close());
      child.unref();
      console.log(`zksd up (pid ${child.pid}, log ${logPath})`);
      console.log(formatStatus(status));
      return;
    }
  }
  child.kill('SIGTERM');
  throw new ZksError('ZKS_ERR_TIMEOUT', `zksd did not come up within 30 s; see ${logPath}`);
}

async function down(): Promise<void> {
  const dir = runDir();
  const c = await ControlClient.connect(controlSocketPath(), 1_000).catch(() => null);
  if (c) {
    const { pid } = await c.status();
    // Refused (not root: ZKS_ERR_CONTROL_FORBIDDEN) is an answer to pass on; a connection dropped by the
    // stopping daemon is not an error.
    const refused = await c.request('down').then(() => null, (e: unknown) =>
      e instanceof ZksError && e.code !== 'ZKS_ERR_NOT_RUNNING' ? e : null);
    c.close();
    if (refused) throw refused;
    // Wait for the process to finish restoring (it removes its state file last).
    for (let i = 0; pid !== null && i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log('zksd stopped: routes, kill switch and DNS restored');
    return;
  }
  if (process.getuid?.() !== 0) throw new ZksError('ZKS_ERR_SYSTEM', 'zksd down needs root to undo host-network changes: run `sudo zksd down`');
  if (await HostNetwork.recover(`${dir}/state.json`)) console.log('zksd was not running: undid the changes it left (routes, kill switch, DNS)');
  else console.log('zksd is not running; nothing to undo');
}

/** `zksd config …`: the settings of a root daemon, in its own root-owned file. */
function config([op, name, value]: string[]): void {
  if (op === 'set' && name && value !== undefined) setDaemonSetting(name, value);
  else if (op === 'unset' && name) unsetDaemonSetting(name);
  else if (op === 'get' && name) console.log(listDaemonSettings().find(([k]) => k === name)?.[1] ?? '');
  else if (op === 'list') for (const [k, v] of listDaemonSettings()) console.log(`${k}=${v}`);
  else if (op === 'path') console.log(daemonConfigPath());
  else throw new ZksError('ZKS_ERR_CONFIG', 'usage: zksd config set|get|unset relay|key|room [VALUE] | list | path');
}

const OPTIONS = {
  relay: { type: 'string', multiple: true }, via: { type: 'string' }, key: { type: 'string' }, room: { type: 'string' }, name: { type: 'string' },
  'exit-id': { type: 'string' }, 'udp-max-flows': { type: 'string' }, 'resume-grace': { type: 'string' },
  mtu: { type: 'string' }, address: { type: 'string' }, 'dns-upstream': { type: 'string' }, ipv6: { type: 'string' },
  'no-dns': { type: 'boolean' }, 'no-kill-switch': { type: 'boolean' }, 'no-offload': { type: 'boolean' },
  foreground: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  direct: { type: 'boolean' }, stun: { type: 'string' }, turn: { type: 'string' }, 'turn-user': { type: 'string' },
  'turn-pass': { type: 'string' }, 'turn-only': { type: 'boolean' }, 'no-direct-tcp': { type: 'boolean' },
} as const;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: attachOptionValues(rest, OPTIONS),
    strict: true,
    allowPositionals: command === 'config',
    options: OPTIONS,
  });
  switch (command) {
    case undefined: case 'help': case '--help': case '-h':
      console.log(HELP);
      return;
    case 'up':
      return up(values, rest.filter((a) => a !== '--foreground'));
    case 'down':
      return down();
    case 'status':
      return printStatus(values.json === true, false);
    case 'config':
      return config(positionals);
    default:
      throw new ZksError('ZKS_ERR_CONFIG', `unknown command "${command}"; run \`zksd help\``);
  }
}

runMain('zksd', main);
