// checkListenPolicy: loopback is always fine; anything else needs allowRemote AND auth, and the error names
// exactly what is missing.

import { describe, expect, it } from 'vitest';
import { checkListenPolicy } from '../../src/socks/server';

const AUTH = { username: 'u', password: 'p' };

describe('checkListenPolicy', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])(
    'allows loopback %s without flags', (host) => {
      expect(checkListenPolicy(host, {})).toBeNull();
    });

  it.each(['0.0.0.0', '::', '', '192.168.1.10', '128.0.0.1', 'localhost.example.com', '::2', 'myhost'])(
    'refuses %s without flags, naming both', (host) => {
      const err = checkListenPolicy(host, {});
      expect(err?.code).toBe('ZKS_ERR_CONFIG');
      expect(err?.message).toContain('allowRemote');
      expect(err?.message).toContain('auth');
    });

  it('names only auth when allowRemote is set', () => {
    const err = checkListenPolicy('0.0.0.0', { allowRemote: true });
    expect(err?.message).toContain('Missing: auth');
    expect(err?.message).not.toContain('allowRemote');
  });

  it('names only allowRemote when auth is set', () => {
    const err = checkListenPolicy('0.0.0.0', { auth: AUTH });
    expect(err?.message).toContain('Missing: allowRemote');
    expect(err?.message).not.toContain('auth (');
  });

  it('treats an empty password as missing auth', () => {
    expect(checkListenPolicy('0.0.0.0', { allowRemote: true, auth: { username: 'u', password: '' } })?.message)
      .toContain('Missing: auth');
  });

  it('allows a remote address when both are set', () => {
    expect(checkListenPolicy('0.0.0.0', { allowRemote: true, auth: AUTH })).toBeNull();
    expect(checkListenPolicy('::', { allowRemote: true, auth: AUTH })).toBeNull();
  });
});
