import { defineConfig } from 'vitest/config';

// Integration tests start real workerd processes and move hundreds of MB on a 2-core machine:
// run files one at a time so timings and memory checks are not skewed by each other.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/build-dist.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
