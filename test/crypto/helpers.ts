// Shared test helpers: both backends (and webcrypto forced onto its @noble X25519 fallback), hex, error asserts.
import { expect } from 'vitest';
import { ZksError } from '../../src/errors/zks-error';
import type { ZksErrorCode } from '../../src/errors/zks-error';
import { fromHex, toHex } from '../../src/crypto/bytes';
import { nodeCrypto } from '../../src/crypto/node';
import { webCrypto } from '../../src/crypto/webcrypto';
import type { CryptoBackend } from '../../src/crypto/types';

export const BACKENDS: Array<[string, CryptoBackend]> = [
  ['node', nodeCrypto],
  ['webcrypto', webCrypto],
];
export const h = fromHex;
export const hex = toHex;

export function expectZksError(value: unknown, code: ZksErrorCode, message?: RegExp): void {
  expect(value).toBeInstanceOf(ZksError);
  expect((value as ZksError).code).toBe(code);
  if (message) expect((value as ZksError).message).toMatch(message);
}

export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}
