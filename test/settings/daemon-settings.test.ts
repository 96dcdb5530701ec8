// Which settings file a root zksd trusts: its own zksd.json only when it and its directory are root's and writable
// by no one else; a non-root process (zks route as a user) is not asked. Real files and real ownership.
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkTrusted } from '../../src/settings/daemon-settings';
import { ZksError } from '../../src/errors/zks-error';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function settingsFile(mode: number): string {
  dir = mkdtempSync(join(tmpdir(), 'zks-settings-'));
  const file = join(dir, 'zksd.json');
  writeFileSync(file, '{"relay":"ws://127.0.0.1:9"}');
  chmodSync(file, mode);
  return file;
}

function refusal(file: string, uid: number): ZksError | null {
  try {
    checkTrusted(file, uid);
    return null;
  } catch (err) {
    return err as ZksError;
  }
}

const root = process.getuid?.() === 0;

describe('checkTrusted (as root, uid 0)', () => {
  it('a file group or others may write is refused with ZKS_ERR_CONFIG and what to do', () => {
    const file = settingsFile(0o666);
    const err = refusal(file, 0);
    expect(err?.code).toBe('ZKS_ERR_CONFIG');
    expect(err?.message).toMatch(/zksd\.json is not trusted: zksd runs as root .*sudo chown root: .*chmod go-w/);
  });

  it('a directory others may write is refused (the file could be replaced)', () => {
    const file = settingsFile(0o600);
    chmodSync(dir, 0o777);
    expect(refusal(file, 0)?.message).toMatch(/zks-settings-\w+ is not trusted/);
  });

  it('a file owned by another user is refused; root\'s own 0600 file is read', () => {
    const file = settingsFile(0o600);
    if (root) {
      expect(refusal(file, 0)).toBeNull();
      chownSync(file, 65534, 65534);
    }
    expect(refusal(file, 0)?.message).toMatch(/owner uid [1-9]\d*/);
  });

  it('a missing file is fine (nothing to read yet)', () => {
    dir = mkdtempSync(join(tmpdir(), 'zks-settings-'));
    if (!root) chmodSync(dir, 0o755);
    expect(refusal(join(dir, 'zksd.json'), root ? 0 : (process.getuid?.() ?? 1))).toBeNull();
  });

  it('a process that is not root does not check (zks route as a user writes its own file)', () => {
    const file = settingsFile(0o666);
    expect(refusal(file, 1000)).toBeNull();
  });
});
