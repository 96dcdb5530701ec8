// Constant-time check of proxy credentials (RFC 1929 username/password, HTTP Basic). Both fields are always
// compared in full and the results combined without short-circuit, so timing reveals neither which field was
// wrong nor how long a matching prefix was. JavaScript under a JIT cannot promise more (see SECURITY.md).

import { timingSafeEqual } from 'node:crypto';

export interface ProxyCredentials {
  username: string;
  password: string;
}

const utf8 = new TextEncoder();

/** `got` compared against `expected` over expected's length; a length mismatch is folded into the result. */
function equalBytes(expected: Uint8Array, got: Uint8Array): boolean {
  const padded = new Uint8Array(expected.length);
  padded.set(got.subarray(0, expected.length));
  const same = expected.length === 0 ? true : timingSafeEqual(expected, padded);
  padded.fill(0);
  return same && got.length === expected.length;
}

export function credentialsMatch(expected: ProxyCredentials, username: Uint8Array, password: Uint8Array): boolean {
  const wantUser = utf8.encode(expected.username);
  const wantPass = utf8.encode(expected.password);
  const userOk = equalBytes(wantUser, username);
  const passOk = equalBytes(wantPass, password);
  wantPass.fill(0);
  return userOk && passOk; // both comparisons already ran; && here only combines two booleans
}
