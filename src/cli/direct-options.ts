// The direct path's flags (`zks p2p-client` and `zks exit-peer`, PROTOCOL.md §3.6) and their saved settings:
// on by default in relay mode, host candidates only unless STUN or TURN is configured (no public default).

import { isIP } from 'node:net';
import { ZksError } from '../errors/zks-error';
import { iceConfig, type DirectConfig } from '../direct/config';
import type { ConfigKey } from '../settings/user-config';

export const DIRECT_OPTIONS = {
  'no-direct': { type: 'boolean' },
  stun: { type: 'string' },
  turn: { type: 'string' },
  'turn-user': { type: 'string' },
  'turn-pass': { type: 'string' },
  'turn-only': { type: 'boolean' },
  'direct-bind': { type: 'string' },
  'no-direct-tcp': { type: 'boolean' },
  'direct-tcp-port': { type: 'string' },
  'direct-tcp-advertise': { type: 'string' },
} as const;

export interface DirectFlags {
  'no-direct'?: boolean;
  stun?: string;
  turn?: string;
  'turn-user'?: string;
  'turn-pass'?: string;
  'turn-only'?: boolean;
  'direct-bind'?: string;
  'no-direct-tcp'?: boolean;
  'direct-tcp-port'?: string;
  'direct-tcp-advertise'?: string;
}

/**
 * A relay reached over loopback means client and exit run on this machine: the room is then as short as a path can
 * be, and faster than a DataChannel (`npm run bench:direct`), so the direct path is off unless --direct-bind asks.
 */
function loopbackRelay(relayUrl: string): boolean {
  const host = new URL(relayUrl).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The direct path settings from flags (which win) and `zks config`; undefined when it is off (see loopbackRelay). */
export function directSettings(values: DirectFlags, setting: (name: ConfigKey) => string | undefined, relayUrl: string): DirectConfig | undefined {
  const saved = setting('direct');
  if (saved !== undefined && saved !== 'on' && saved !== 'off') throw new ZksError('ZKS_ERR_CONFIG', `setting direct must be on or off, not "${saved}"`);
  if (values['no-direct'] || (saved === 'off' && values.stun === undefined && values.turn === undefined)) return undefined;
  if (values['direct-bind'] === undefined && loopbackRelay(relayUrl)) return undefined;
  return {
    ...iceConfig({
      stun: values.stun ?? setting('stun'), turn: values.turn ?? setting('turn'),
      turnUser: values['turn-user'] ?? setting('turn-user'), turnPass: values['turn-pass'] ?? setting('turn-pass'),
      turnOnly: !!values['turn-only'],
    }),
    bindAddress: values['direct-bind'],
    ...tcpSettings(values, setting),
  };
}

/** The direct TCP path's part (PROTOCOL.md §3.7): on unless --no-direct-tcp or `direct-tcp off`; the exit's port and addresses. */
function tcpSettings(values: DirectFlags, setting: (name: ConfigKey) => string | undefined): Pick<DirectConfig, 'tcp' | 'tcpPort' | 'tcpAdvertise'> {
  const saved = setting('direct-tcp');
  if (saved !== undefined && saved !== 'on' && saved !== 'off') throw new ZksError('ZKS_ERR_CONFIG', `setting direct-tcp must be on or off, not "${saved}"`);
  const portText = values['direct-tcp-port'] ?? setting('direct-tcp-port');
  const port = portText === undefined ? 0 : Number(portText);
  if (!/^\d+$/.test(portText ?? '0') || port > 65535) throw new ZksError('ZKS_ERR_CONFIG', `--direct-tcp-port must be a port 0-65535 (0: any free port), not "${portText}"`);
  const advertise = values['direct-tcp-advertise'] ?? setting('direct-tcp-advertise');
  return {
    tcp: !values['no-direct-tcp'] && saved !== 'off',
    tcpPort: port,
    tcpAdvertise: advertise === undefined ? undefined : advertise.split(',').map((t) => parseAdvertised(t.trim())),
  };
}

/** `ADDRESS[:PORT]` (IPv6 in brackets): an address the exit's TCP listener is reachable at (a forwarded port). */
function parseAdvertised(text: string): { host: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:\[\]\s]+)(?::(\d+))?$/.exec(text);
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!m || isIP(m[1]!) === 0 || (port !== undefined && (port < 1 || port > 65535))) {
    throw new ZksError('ZKS_ERR_CONFIG', `--direct-tcp-advertise "${text}" is not IP[:PORT] (an IP address; [2001:db8::1]:4443 for IPv6)`);
  }
  return { host: m[1]!, port };
}
