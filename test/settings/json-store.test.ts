// The settings file on disk: absent reads as empty, writes are whole (0600 file in a 0700 directory, no temp file
// left), and a file that is not a JSON object is refused with ZKS_ERR_CONFIG and left as it was.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonStore } from '../../src/settings/json-store';
import { ZksError } from '../../src/errors/zks-error';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'zks-store-'));
  dirs.push(d);
  return d;
}

describe('JsonStore', () => {
  it('reads an absent file as empty, and creates directory and file with owner-only modes', () => {
    const dir = join(tmp(), 'nested', 'cfg');
    const s = new JsonStore(join(dir, 'config.json'));
    expect(s.read()).toEqual({});
    expect(s.get('relay')).toBeUndefined();
    s.set('relay', 'ws://127.0.0.1:8787');
    s.set('bypass', ['10.0.0.0/8']);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(s.path, 'utf8'))).toEqual({ relay: 'ws://127.0.0.1:8787', bypass: ['10.0.0.0/8'] });
    expect(readdirSync(dir)).toEqual(['config.json']); // the temporary file was renamed, not left behind
    s.delete('relay');
    s.delete('absent');
    expect(new JsonStore(s.path).read()).toEqual({ bypass: ['10.0.0.0/8'] });
  });

  it.each([['not json', '{"relay": '], ['an array', '["a"]'], ['null', 'null'], ['a string', '"x"']])(
    'refuses a file holding %s with ZKS_ERR_CONFIG naming it, and does not overwrite it',
    (_what, text) => {
      const path = join(tmp(), 'config.json');
      writeFileSync(path, text);
      const s = new JsonStore(path);
      for (const op of [() => s.read(), () => s.set('relay', 'x')]) {
        let err: unknown;
        try {
          op();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ZksError);
        expect((err as ZksError).code).toBe('ZKS_ERR_CONFIG');
        expect((err as ZksError).message).toContain(path);
      }
      expect(readFileSync(path, 'utf8')).toBe(text);
    },
  );

  it('names the file it cannot use', () => {
    const dir = tmp();
    const blocker = join(dir, 'file');
    writeFileSync(blocker, '');
    const s = new JsonStore(join(blocker, 'config.json')); // its directory would have to be a file
    expect(() => s.set('relay', 'x')).toThrow(/cannot (read|save) .*file\/config\.json/);
  });
});
