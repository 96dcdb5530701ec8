// The direct path's settings: --stun / --turn parsing (clear ZKS_ERR_CONFIG for anything else, never another
// exception), the saved `direct` setting, and the defaults: no ICE server unless given, loopback candidates only
// when the relay itself is on loopback.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { directSettings } from '../../src/cli/direct-options';
import { iceServersOf, parseStun, parseTurn } from '../../src/direct/config';
import { ZksError } from '../../src/errors/zks-error';

const none = () => undefined;

describe('--stun and --turn', () => {
  it('parses host, port (3478 by default), IPv6 in brackets, and the TURN transport', () => {
    expect(parseStun('stun.example.net')).toEqual({ host: 'stun.example.net', port: 3478 });
    expect(parseStun('stun:10.0.0.1:19302')).toEqual({ host: '10.0.0.1', port: 19302 });
    expect(parseStun('[2001:db8::1]:3479')).toEqual({ host: '2001:db8::1', port: 3479 });
    expect(parseTurn('turn:turn.example.net', 'u', 'p')).toEqual({ host: 'turn.example.net', port: 3478, username: 'u', password: 'p', transport: 'udp' });
    expect(parseTurn('turn:10.0.0.1:443?transport=tcp', 'u', 'p:@?')).toMatchObject({ port: 443, transport: 'tcp', password: 'p:@?' });
    expect(iceServersOf({ turn: [parseTurn('turn:h:1', 'u', 'p')], stun: [parseStun('s')] })).toEqual([
      { hostname: 's', port: 3478 }, { hostname: 'h', port: 1, username: 'u', password: 'p', relayType: 'TurnUdp' },
    ]);
  });

  it.each([
    ['turn without user', () => parseTurn('turn:h:1', undefined, 'p'), /--turn-user and --turn-pass/],
    ['turn without scheme', () => parseTurn('h:1', 'u', 'p'), /is not turn:HOST/],
    ['stun port 0', () => parseStun('h:0'), /port 1-65535/],
    ['stun port too large', () => parseStun('h:70000'), /port 1-65535/],
    ['stun with a path', () => parseStun('h/x'), /is not HOST\[:PORT\]/],
  ])('%s → ZKS_ERR_CONFIG', (_name, fn, message) => {
    expect(fn).toThrow(ZksError);
    expect(fn).toThrow(message);
  });

  it('any text either parses or fails with ZKS_ERR_CONFIG', () => {
    fc.assert(fc.property(fc.string(), fc.option(fc.string()), (text, user) => {
      for (const fn of [() => parseStun(text), () => parseTurn(text, user ?? undefined, 'p')]) {
        try {
          const v = fn();
          expect(v.port).toBeGreaterThanOrEqual(1);
        } catch (err) {
          expect(err).toBeInstanceOf(ZksError);
          expect((err as ZksError).code).toBe('ZKS_ERR_CONFIG');
        }
      }
    }));
  });
});

describe('directSettings', () => {
  it('on by default with no ICE server; off for a relay on loopback unless --direct-bind asks', () => {
    expect(directSettings({}, none, 'wss://relay.example.workers.dev')).toEqual({
      stun: [], turn: [], relayOnly: false, bindAddress: undefined, tcp: true, tcpPort: 0, tcpAdvertise: undefined,
    });
    expect(directSettings({}, none, 'ws://127.0.0.1:8787')).toBeUndefined();
    expect(directSettings({}, none, 'ws://localhost:8787')).toBeUndefined();
    expect(directSettings({ 'direct-bind': '127.0.0.1' }, none, 'ws://[::1]:8787')?.bindAddress).toBe('127.0.0.1');
  });

  it('--no-direct and `zks config set direct off` turn it off; flags and saved settings combine, flags win', () => {
    expect(directSettings({ 'no-direct': true }, none, 'ws://10.0.0.1:1')).toBeUndefined();
    const saved = (m: Record<string, string>) => (k: string) => m[k];
    expect(directSettings({}, saved({ direct: 'off' }), 'ws://10.0.0.1:1')).toBeUndefined();
    const c = directSettings({ 'turn-pass': 'flag' }, saved({ turn: 'turn:t:5349', 'turn-user': 'u', 'turn-pass': 'saved', stun: 's1, s2:1' }), 'ws://h:1');
    expect(c?.turn).toEqual([{ host: 't', port: 5349, username: 'u', password: 'flag', transport: 'udp' }]);
    expect(c?.stun).toEqual([{ host: 's1', port: 3478 }, { host: 's2', port: 1 }]);
  });

  it('the direct TCP path: on by default, --no-direct-tcp or `direct-tcp off`, the exit\'s port and advertised addresses', () => {
    const saved = (m: Record<string, string>) => (k: string) => m[k];
    expect(directSettings({ 'no-direct-tcp': true }, none, 'ws://h:1')?.tcp).toBe(false);
    expect(directSettings({}, saved({ 'direct-tcp': 'off' }), 'ws://h:1')?.tcp).toBe(false);
    const c = directSettings({ 'direct-tcp-port': '4443', 'direct-tcp-advertise': '203.0.113.7:443, [2001:db8::1]' }, none, 'ws://h:1');
    expect(c).toMatchObject({ tcp: true, tcpPort: 4443, tcpAdvertise: [{ host: '203.0.113.7', port: 443 }, { host: '2001:db8::1', port: undefined }] });
    expect(directSettings({}, saved({ 'direct-tcp-port': '5000' }), 'ws://h:1')?.tcpPort).toBe(5000);
  });

  it.each([
    [{ 'direct-tcp-port': '70000' }, /--direct-tcp-port must be a port 0-65535/],
    [{ 'direct-tcp-port': '-1' }, /--direct-tcp-port must be a port/],
    [{ 'direct-tcp-advertise': 'exit.example.net:443' }, /is not IP\[:PORT\]/],
    [{ 'direct-tcp-advertise': '10.0.0.1:0' }, /is not IP\[:PORT\]/],
  ])('refuses %o', (flags, message) => {
    expect(() => directSettings(flags, none, 'ws://h:1')).toThrow(message);
  });

  it('refuses a bad saved value and --turn-only without --turn', () => {
    expect(() => directSettings({}, (k) => (k === 'direct' ? 'maybe' : undefined), 'ws://h:1')).toThrow(/direct must be on or off/);
    expect(() => directSettings({}, (k) => (k === 'direct-tcp' ? 'yes' : undefined), 'ws://h:1')).toThrow(/direct-tcp must be on or off/);
    expect(() => directSettings({ 'turn-only': true }, none, 'ws://h:1')).toThrow(/--turn-only needs --turn/);
  });
});
