// Small helpers for the CLI: "host:port" parsing and the key format. No protocol logic here.

import { decodeBase64Url, encodeBase64Url } from '../crypto/handshake';
import { roomSecretBytes } from '../crypto/room';
import { ZksError } from '../errors/zks-error';
import { parseRelayUrl as parseRelayUrlChecked } from '../link/relay-url';

export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new ZksError('ZKS_ERR_CONFIG', `"${text}" is not host:port (use [::1]:1080 for IPv6)`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ZksError('ZKS_ERR_CONFIG', `port in "${text}" must be 0-65535`);
  return { host: m[1], port };
}

export function parseKey(text: string | undefined): Uint8Array {
  if (!text) throw new ZksError('ZKS_ERR_CONFIG', 'no key: pass --key (create one with `zks keygen`) or run `zks config set key ...`');
  const key = decodeBase64Url(text.trim());
  if (!key || key.length !== 32) throw new ZksError('ZKS_ERR_CONFIG', 'the key must be 32 bytes of base64url (43 characters), as printed by `zks keygen`');
  return key;
}

/**
 * A fresh key; never starting with "-", so `--key KEY` cannot be mistaken for a flag. The global WebCrypto loads on
 * first use, so commands that never make a key do not pay for node:crypto at start-up.
 */
export function generateKey(): string {
  for (;;) {
    const key = encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)));
    if (!key.startsWith('-')) return key;
  }
}

export { parseRelayUrl } from '../link/relay-url';

/**
 * The relays: `--relay` given once or more, else the saved `relay` setting (several separated by commas), each
 * checked and canonical, duplicates dropped. None at all is the "no relay" configuration error.
 */
export function relayUrls(flags: string[] | undefined, saved: string | undefined): string[] {
  const texts = flags && flags.length > 0 ? flags : (saved ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (texts.length === 0) return [parseRelayUrlChecked(undefined)];
  return [...new Set(texts.map(parseRelayUrlChecked))];
}

/** A command that talks to one relay: the first, and a clear error when several were given as flags. */
export function singleRelay(flags: string[] | undefined, saved: string | undefined, command: string): string {
  if (flags && flags.length > 1) throw new ZksError('ZKS_ERR_CONFIG', `zks ${command} takes one --relay (several relays: zks socks5, p2p-client, exit-peer)`);
  return relayUrls(flags, saved)[0]!;
}

/** A fresh exit key pair (`zks keygen --exit`): the private half for the exit peer, the public "exit id" for clients. */
export async function generateExitKeypair(): Promise<{ exitKey: string; exitId: string }> {
  const { nodeCrypto } = await import('../crypto/node');
  for (;;) {
    const pair = await nodeCrypto.x25519Keypair();
    const exitKey = encodeBase64Url(pair.privateKey);
    const exitId = encodeBase64Url(pair.publicKey);
    pair.privateKey.fill(0);
    if (!exitKey.startsWith('-') && !exitId.startsWith('-')) return { exitKey, exitId };
  }
}

/** --exit-key or --exit-id: 32 bytes of base64url, as printed by `zks keygen --exit`. */
export function parseExitKey(text: string, what: 'exit key' | 'exit id'): Uint8Array {
  const key = decodeBase64Url(text.trim());
  if (!key || key.length !== 32) {
    throw new ZksError('ZKS_ERR_CONFIG', `the ${what} must be 32 bytes of base64url (43 characters), as printed by \`zks keygen --exit\``);
  }
  return key;
}

export function parseRoomSecret(text: string | undefined): string {
  if (!text) throw new ZksError('ZKS_ERR_CONFIG', 'no room: pass --room SECRET (the same on the exit peer and its clients; make one with `zks keygen`)');
  roomSecretBytes(text).fill(0); // throws ZKS_ERR_CONFIG, naming `zks keygen`, for anything weaker
  return text.trim();
}

/** A whole number flag within [min, max], or ZKS_ERR_CONFIG naming the flag. */
/** `--resume-grace SECONDS` (0: off, at most an hour) in milliseconds; undefined when not given (the default then). */
export function parseResumeGrace(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseCount(text, '--resume-grace', 0, 3600) * 1000;
}

export function parseCount(text: string, flag: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ZksError('ZKS_ERR_CONFIG', `${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/**
 * `--key VALUE` → `--key=VALUE` for the options that take a value. Keys and room secrets are base64url, so one in
 * 64 begins with '-', and node:util's parseArgs refuses `--key -abc…` as "ambiguous" (it might be a forgotten value
 * followed by another flag): a user pasting a fresh key must not have to know the `=` form.
 */
export function attachOptionValues(args: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : null;
    if (name !== null && options[name]?.type === 'string' && i + 1 < args.length) {
      out.push(`${arg}=${args[++i]}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}
