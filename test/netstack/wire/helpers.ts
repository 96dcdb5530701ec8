// Test helpers for the wire layer: hex literals and result unwrapping.
import { expect } from 'vitest';
import { WireError, type WireErrorReason, type WireResult } from '../../../src/netstack/wire/index';

/** Hex with any whitespace → bytes. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex literal: ${s}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** The value of a result that must not be an error. */
export function ok<T>(r: WireResult<T>): T {
  if (r instanceof WireError) throw new Error(`unexpected ${r.toString()}`);
  return r;
}

/** Asserts the result is a WireError (code ZKS_ERR_MALFORMED_PACKET) for `reason`, message matching `message`. */
export function expectWireError(r: unknown, reason: WireErrorReason, message?: RegExp): void {
  expect(r).toBeInstanceOf(WireError);
  const e = r as WireError;
  expect(e.code).toBe('ZKS_ERR_MALFORMED_PACKET');
  expect(e.reason).toBe(reason);
  if (message) expect(e.message).toMatch(message);
}
