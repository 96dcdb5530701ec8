#!/usr/bin/env node
// Entry point of `zks-tui`, the live view of zksd or a zks client: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/tui/main.ts');
