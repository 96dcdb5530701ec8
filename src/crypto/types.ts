// The one interface both crypto backends implement (node:crypto in Node, WebCrypto + noble in the Worker).
// Spec: docs/PROTOCOL.md "Handshake and record layer". Invariants: AEAD nonces are 12 bytes, tags 16 bytes
// appended to the ciphertext; open() releases no plaintext before the tag has been checked.
// No node:* imports here: the Worker bundle includes this file.

export type CipherSuite = 'aes-256-gcm' | 'chacha20-poly1305';

/** Wire identifiers (HELLO preferredSuite / REPLY suite); suiteMask bit = 1 << (id - 1). */
export const SUITE_ID: Record<CipherSuite, number> = { 'aes-256-gcm': 1, 'chacha20-poly1305': 2 };
export const ALL_SUITES: readonly CipherSuite[] = ['aes-256-gcm', 'chacha20-poly1305'];

export const AEAD_KEY_SIZE = 32;
export const AEAD_NONCE_SIZE = 12;
export const AEAD_TAG_SIZE = 16;
export const X25519_KEY_SIZE = 32;

/** One key. `aad` is optional and unused by the record layer (it exists for the RFC test vectors). */
export interface Aead {
  /** Rejects with ZksError('ZKS_ERR_SEAL') when the cipher refuses (e.g. a bad nonce length). */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  /** Rejects with ZksError('ZKS_ERR_DECRYPT') on a bad tag or a ciphertext shorter than the tag. */
  open(nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional synchronous forms, offered by backends whose cipher is synchronous (node:crypto), so the record
   * layer needs no promise per record. sealSync returns `headroom` bytes left free for the caller's own
   * header (room mode's session id) followed by ciphertext || tag, all in one buffer. Same errors, thrown.
   */
  sealSync?(nonce: Uint8Array, plaintext: Uint8Array, headroom: number): Uint8Array;
  openSync?(nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  /**
   * Optional in-place forms (the Node backend with the datapath addon): no buffer is allocated per record.
   * sealInPlace turns buf[offset, +length) into ciphertext and writes the tag right after it (the caller leaves
   * 16 bytes free there). openInPlace takes ciphertext || tag at buf[offset, +length) and returns the plaintext as
   * a view of buf[offset, +length-16); a bad tag throws ZKS_ERR_DECRYPT and leaves that region wiped.
   */
  sealInPlace?(nonce: Uint8Array, buf: Uint8Array, offset: number, length: number): void;
  openInPlace?(nonce: Uint8Array, buf: Uint8Array, offset: number, length: number): Uint8Array;
}

export interface X25519Keypair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export interface CryptoBackend {
  readonly name: string; // 'node' | 'webcrypto'
  randomBytes(n: number): Uint8Array;
  x25519Keypair(): Promise<X25519Keypair>;
  /** Rejects with ZksError('ZKS_ERR_HANDSHAKE') for bad lengths or an all-zero result (low-order point). */
  x25519(privateKey: Uint8Array, peerPublic: Uint8Array): Promise<Uint8Array>;
  sha256(data: Uint8Array): Promise<Uint8Array>;
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  createAead(suite: CipherSuite, key: Uint8Array): Promise<Aead>;
}
