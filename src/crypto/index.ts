// Runtime-agnostic entry point of the crypto layer (safe for the Worker bundle).
// The Node backend is imported separately from './node' so node:crypto never reaches the Worker.
export * from './types';
export * from './hkdf';
export * from './handshake';
export * from './record';
export { webCrypto } from './webcrypto';
export { concatBytes, fromHex, toHex } from './bytes';
