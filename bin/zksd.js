#!/usr/bin/env node
// Entry point of `zksd`, the full-system VPN daemon: loads the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/zksd.ts');
