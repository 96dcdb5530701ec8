#!/usr/bin/env node
// Entry point of the `zks` CLI: loads the TypeScript sources through tsx (no separate build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
