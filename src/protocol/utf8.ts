// UTF-8-safe truncation, the one copy for every text with a byte limit: WebSocket close reasons (123 bytes, RFC 6455
// §5.5), frame messages (512 bytes), room control texts. Counts bytes without encoding and never cuts inside a
// character — a peer that decodes strictly treats a broken sequence as a fatal error. Runtime-agnostic (no node:*).

/** WebSocket close reasons are limited to 123 bytes of UTF-8 (RFC 6455 §5.5: control frame ≤ 125 bytes). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * The longest prefix of `text` whose UTF-8 encoding is at most `maxBytes` bytes, never ending inside a character
 * (a surrogate pair stays whole). O(min(text.length, maxBytes)): bytes are counted, nothing is encoded. A lone
 * surrogate counts 3 bytes, as TextEncoder writes it (U+FFFD).
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text; // no UTF-16 unit takes more than 3 bytes
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let units = 1;
    let size = 3;
    if (c < 0x80) size = 1;
    else if (c < 0x800) size = 2;
    else if ((c & 0xfc00) === 0xd800 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      size = 4; // a surrogate pair: one code point above U+FFFF
      units = 2;
    }
    if (bytes + size > maxBytes) break;
    bytes += size;
    i += units;
  }
  return i === text.length ? text : text.slice(0, i);
}
