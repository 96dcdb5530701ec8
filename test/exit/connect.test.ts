// How the exit maps resolver and socket errors onto CONNECT_RESULT codes (docs/PROTOCOL.md §9.1).
import { describe, expect, it } from 'vitest';
import { classifyConnectError, classifyLookupError } from '../../src/exit/connect';
import { ConnectResult } from '../../src/protocol/constants';

const errno = (code: string) => Object.assign(new Error(`some syscall ${code}`), { code });

describe('classifyLookupError', () => {
  it.each([
    ['ENOTFOUND', ConnectResult.HOST_UNREACHABLE],
    ['EAI_NONAME', ConnectResult.HOST_UNREACHABLE],
    ['EAI_NODATA', ConnectResult.HOST_UNREACHABLE],
    ['EAI_AGAIN', ConnectResult.HOST_UNREACHABLE],
    ['EAI_FAIL', ConnectResult.GENERAL_FAILURE],
    ['ESERVFAIL', ConnectResult.GENERAL_FAILURE],
  ])('%s → %i', (code, want) => {
    const r = classifyLookupError('example.test', errno(code));
    expect(r.code).toBe(want);
    if (want === ConnectResult.HOST_UNREACHABLE) expect(r.message).toMatch(/^example\.test: no such host/);
    else expect(r.message).toMatch(/could not look up example\.test/);
  });
});

describe('classifyConnectError', () => {
  it.each([
    ['ECONNREFUSED', ConnectResult.REFUSED, /connection refused/],
    ['EHOSTUNREACH', ConnectResult.HOST_UNREACHABLE, /no route to host/],
    ['ENOTFOUND', ConnectResult.HOST_UNREACHABLE, /no such host/],
    ['ENETUNREACH', ConnectResult.NETWORK_UNREACHABLE, /network unreachable/],
    ['ETIMEDOUT', ConnectResult.TIMEOUT, /timed out/],
    ['EADDRNOTAVAIL', ConnectResult.GENERAL_FAILURE, /connect failed: some syscall EADDRNOTAVAIL/],
  ])('%s → %i', (code, want, message) => {
    const r = classifyConnectError(errno(code));
    expect(r.code).toBe(want);
    expect(r.message).toMatch(message);
  });

  it('an error without errno is a general failure that keeps its message', () => {
    expect(classifyConnectError(new Error('boom'))).toEqual({ code: ConnectResult.GENERAL_FAILURE, message: 'connect failed: boom' });
  });
});
