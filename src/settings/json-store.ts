// A small settings file: one JSON object, mode 0600 in a 0700 directory, written whole to a temporary file in the
// same directory and renamed over the old one, so a crash or a full disk never leaves half a file. It replaces
// `conf`, whose dependencies (a JSON-schema validator, atomically → when-exit) cost ≈ 150 ms of start-up in every
// command that reads a setting, and whose exit hook re-raised SIGINT/SIGTERM after its own handlers: `zks start`
// died by the signal instead of closing its stack.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ZksError } from '../errors/zks-error';

export type StoreValue = string | string[];

export class JsonStore {
  constructor(readonly path: string) {}

  /** The whole file; {} when it does not exist. A file that is not a JSON object is ZKS_ERR_CONFIG (never rewritten). */
  read(): Record<string, StoreValue> {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new ZksError('ZKS_ERR_CONFIG', `cannot read ${this.path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ZksError('ZKS_ERR_CONFIG', `${this.path} is not valid JSON (${(err as Error).message}): fix or remove it`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ZksError('ZKS_ERR_CONFIG', `${this.path} must hold a JSON object: fix or remove it`);
    }
    return parsed as Record<string, StoreValue>;
  }

  get(name: string): StoreValue | undefined {
    return this.read()[name];
  }

  set(name: string, value: StoreValue): void {
    this.write({ ...this.read(), [name]: value });
  }

  delete(name: string): void {
    const all = this.read();
    if (!(name in all)) return;
    delete all[name];
    this.write(all);
  }

  private write(all: Record<string, StoreValue>): void {
    const dir = dirname(this.path);
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      rmSync(tmp, { force: true }); // a leftover of a crash: its mode may not be ours
      writeFileSync(tmp, `${JSON.stringify(all, null, '\t')}\n`, { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new ZksError('ZKS_ERR_CONFIG', `cannot save ${this.path}: ${(err as Error).message}`);
    }
  }
}
