// docs/PROTOCOL.md cannot drift: every ```hex <name> block must equal its vector in test/vectors/*.json, every
// valid frame vector must appear, and the tables must name every frame type, code and error code the source has.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import frameVectors from '../vectors/frames.json';
import handshakeVectors from '../vectors/handshake.json';
import roomVectors from '../vectors/room.json';
import { CloseCode, ConnectResult, FrameType, ResetCode } from '../../src/protocol/index';
import { RoomCloseCode } from '../../src/protocol/room-wire';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/^```hex ([\w./-]+)\n([\s\S]*?)^```$/gm)].map((m) => ({ name: m[1], hex: m[2].replace(/\s+/g, '') }));

function expectedHex(name: string): string | undefined {
  const [kind, key] = name.split('/');
  if (kind === 'frames') {
    const v = [...frameVectors.valid, ...frameVectors.invalid].find((x) => x.name === key);
    return v?.hex.replace(/\s+/g, '');
  }
  if (kind === 'handshake') {
    const all: Record<string, unknown> = { ...handshakeVectors.inputs, ...handshakeVectors.expected, ...handshakeVectors.pinned, ...handshakeVectors.capabilities,
      ...handshakeVectors.sequenced, ...handshakeVectors.datagram, ...handshakeVectors.tcpPath };
    return typeof all[key] === 'string' ? (all[key] as string) : undefined;
  }
  if (kind === 'room') {
    const all: Record<string, string> = { ...roomVectors.inputs, ...roomVectors.expected };
    return all[key];
  }
  return undefined;
}

describe('docs/PROTOCOL.md test vectors', () => {
  it('has vector blocks, each named once', () => {
    expect(blocks.length).toBeGreaterThan(20);
    expect(new Set(blocks.map((b) => b.name)).size).toBe(blocks.length);
  });

  it.each(blocks.map((b) => [b.name, b] as const))('%s matches test/vectors', (_name, b) => {
    const want = expectedHex(b.name);
    expect(want, `no vector named ${b.name} in test/vectors`).toBeDefined();
    expect(b.hex).toMatch(/^[0-9a-f]*$/);
    expect(b.hex).toBe(want);
  });

  it('shows every valid frame vector and the handshake messages', () => {
    const names = new Set(blocks.map((b) => b.name));
    for (const v of frameVectors.valid) expect(names, v.name).toContain(`frames/${v.name}`);
    for (const k of ['hello', 'reply', 'kC2S', 'kS2C', 'sessionId', 'aesGcmRecord0']) expect(names).toContain(`handshake/${k}`);
    for (const k of ['secretBytes', 'exitPublic', 'roomId', 'psk', 'proofMac']) expect(names).toContain(`room/${k}`);
  });
});

describe('docs/PROTOCOL.md tables', () => {
  const hex2 = (n: number) => `\`0x${n.toString(16).padStart(2, '0')}\``;
  it.each(Object.entries(FrameType))('frame type %s = %i is in the frame table', (name, value) => {
    expect(doc).toMatch(new RegExp(`\\| ${hex2(value)} \\| ${name} \\|`));
  });
  it.each(Object.entries(ConnectResult))('ConnectResult %s = %i is in its table', (name, value) => {
    expect(doc).toMatch(new RegExp(`\\| ${value} \\| ${name} \\|`));
  });
  it.each(Object.entries(ResetCode))('ResetCode %s = %i is in its table', (name, value) => {
    expect(doc).toMatch(new RegExp(`\\| ${value} \\| ${name} \\|`));
  });
  it.each(Object.entries(CloseCode))('CloseCode %s = %i is in its table', (name, value) => {
    expect(doc).toMatch(new RegExp(`\\| ${value} \\| ${name} \\|`));
  });
  it.each(Object.entries(RoomCloseCode))('RoomCloseCode %s = %i is in the room close table', (name, value) => {
    expect(doc).toMatch(new RegExp(`\\| ${value} \\| ${name} \\|`));
  });
  it('every ZksErrorCode in src/errors/zks-error.ts is in the error table', () => {
    const src = readFileSync(new URL('../../src/errors/zks-error.ts', import.meta.url), 'utf8');
    const codes = [...src.matchAll(/\| '(ZKS_ERR_[A-Z_]+)'/g)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(10);
    for (const code of codes) expect(doc, code).toMatch(new RegExp(`^\\| \`${code}\` \\|`, 'm'));
  });
});
