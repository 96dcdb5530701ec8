// `zks expose tcp://…` and `zks expose http://…` (docs/design/expose.md): argument checks and the agent to start.
// TCP tunnels are an exit peer of the tunnel's room with one target; HTTP tunnels an agent of `/tunnel/<id>`.

import { ZksError } from '../errors/zks-error';
import { CLAIM_LIMITS } from '../protocol/tunnel-http';
import { parseCount, parseHostPort, parseKey, parseRoomSecret, singleRelay } from './args';
import { directSettings, type DirectFlags } from './direct-options';
import type { ConfigKey } from '../settings/user-config';

export const EXPOSE_OPTIONS = {
  public: { type: 'boolean' },
  auth: { type: 'string' },
  'max-concurrent': { type: 'string' },
  rate: { type: 'string' },
  'max-body': { type: 'string' },
  'keep-prefix': { type: 'boolean' },
} as const;

export type ExposeValues = DirectFlags & {
  relay?: string[]; key?: string; id?: string; secret?: string; quiet?: boolean;
  public?: boolean; auth?: string; 'max-concurrent'?: string; rate?: string; 'max-body'?: string; 'keep-prefix'?: boolean;
};

export interface Started {
  readyLine: string;
  close: () => Promise<void>;
}

const USAGE = 'usage: zks expose (http://HOST:PORT (--public | --auth USER:PASSWORD) | tcp://HOST:PORT) --id ID --secret SECRET --relay URL --key KEY';

export function tunnelId(text: string | undefined): string {
  if (!text) throw new ZksError('ZKS_ERR_CONFIG', 'name the tunnel: --id ID (1-63 of a-z, 0-9 and "-")');
  return text;
}

export function tunnelSecret(text: string | undefined): string {
  if (!text) throw new ZksError('ZKS_ERR_CONFIG', 'the tunnel needs --secret SECRET, the same for every agent (and for `zks access`); make one with `zks keygen`');
  return text;
}

/** A byte count: digits with an optional k/M/G suffix (powers of 1024). */
function parseBytes(text: string, flag: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text.trim());
  if (!m) throw new ZksError('ZKS_ERR_CONFIG', `${flag} takes a byte count such as 1048576, 512k, 100M or 2G`);
  const n = Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' ');
  if (n > CLAIM_LIMITS.maxBodyBytes[1]) throw new ZksError('ZKS_ERR_CONFIG', `${flag} is too large`);
  return n;
}

export async function startExpose(
  url: string | undefined, values: ExposeValues, getSetting: (name: ConfigKey) => string | undefined, log: ((line: string) => void) | undefined,
): Promise<Started> {
  const m = /^(tcp|http):\/\/([^/]+)\/?$/i.exec(url ?? '');
  if (!m) {
    throw new ZksError('ZKS_ERR_CONFIG', /^https:\/\//i.test(url ?? '')
      ? 'zks expose https://… : the agent speaks plain HTTP to the local server (the Worker is the TLS end); use http://HOST:PORT'
      : USAGE);
  }
  const target = parseHostPort(m[2], 0);
  if (target.port < 1) throw new ZksError('ZKS_ERR_CONFIG', `zks expose ${url}: name the port (${m[1].toLowerCase()}://HOST:PORT)`);
  const id = tunnelId(values.id);
  const relay = singleRelay(values.relay, getSetting('relay'), 'expose');
  const key = parseKey(values.key ?? getSetting('key'));
  const secret = parseRoomSecret(tunnelSecret(values.secret));
  if (m[1].toLowerCase() === 'tcp') {
    for (const flag of ['public', 'auth', 'max-concurrent', 'rate', 'max-body', 'keep-prefix'] as const) {
      if (values[flag] !== undefined) throw new ZksError('ZKS_ERR_CONFIG', `--${flag} is for HTTP tunnels; a TCP tunnel is reached only with its secret (zks access)`);
    }
    const [{ ExitPeer }, { tunnelRoomSecret }, { nodeCrypto }, { ConnectionCounters, startExposeControl }] = await Promise.all([
      import('../exit'), import('../crypto/room'), import('../crypto/node'), import('../expose/control'),
    ]);
    const counters = new ConnectionCounters(`tcp://${m[2]}`);
    const exit = await ExitPeer.start({
      relay, key, roomSecret: await tunnelRoomSecret(nodeCrypto, secret, id), fixedTarget: target,
      direct: directSettings(values, getSetting, relay), log, onClientStream: (stream) => counters.track(stream),
    });
    const control = await startExposeControl({
      id, relay, flows: counters.flows, log: log ?? (() => {}), connections: () => [],
      tunnel: () => ({
        id, kind: 'tcp', url: `zks access --id ${id}`, origin: `tcp://${m[2]}`, access: 'secret', connected: exit.attached,
        requests: counters.connections, inFlight: counters.flows.count, failed: counters.failed, requestRate: counters.rate.perSecond(),
      }),
    }).catch(() => null);
    return {
      readyLine: `zks expose ready: tunnel "${id}" → ${m[2]} (${exit.attached ? 'serving' : 'standing by: another agent serves it'})`,
      close: async () => {
        await exit.close();
        await control?.close();
      },
    };
  }
  if (!!values.public === (values.auth !== undefined)) {
    throw new ZksError('ZKS_ERR_CONFIG', 'an HTTP tunnel is reachable by anyone who has its URL: choose --auth USER:PASSWORD (HTTP Basic, checked by the Worker) or --public');
  }
  let access: 'public' | { user: string; password: string } = 'public';
  if (values.auth !== undefined) {
    const colon = values.auth.indexOf(':');
    if (colon < 1 || colon === values.auth.length - 1) throw new ZksError('ZKS_ERR_CONFIG', '--auth takes USER:PASSWORD (neither empty)');
    access = { user: values.auth.slice(0, colon), password: values.auth.slice(colon + 1) };
  }
  const { HttpExposeAgent } = await import('../expose/http-agent');
  const publicUrl = new URL(relay.replace(/^ws/, 'http'));
  publicUrl.pathname = `${publicUrl.pathname.replace(/\/+$/, '')}/tunnel/${id}/`;
  const agent = await HttpExposeAgent.start({
    relay, key, id, secret, origin: target, access,
    maxConcurrent: values['max-concurrent'] ? parseCount(values['max-concurrent'], '--max-concurrent', ...CLAIM_LIMITS.maxConcurrent) : 64,
    ratePerSecond: values.rate ? parseCount(values.rate, '--rate', ...CLAIM_LIMITS.ratePerSecond) : 100,
    maxBodyBytes: values['max-body'] ? parseBytes(values['max-body'], '--max-body') : null,
    keepPrefix: !!values['keep-prefix'],
    log,
    control: { url: publicUrl.toString() },
  });

  return {
    readyLine: `zks expose ready: ${publicUrl.toString()} → http://${m[2]}/ (${access === 'public' ? 'public' : 'password required'})`,
    close: () => agent.close(),
  };
}
